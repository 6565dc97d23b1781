/**
 * The OpenAPI v3 structural schema of the EtcdCluster CRD, typed against src/domain/cluster-spec.ts with
 * the builder of ./openapi.ts: a field added to, removed from or retyped in a domain interface without the
 * same change here does not compile. Rules across fields are CEL (`x-kubernetes-validations`).
 */
import {
  clusterPhases,
  clusterReplicaCounts,
  clusterTopologies,
  witnessKinds,
  memberRoles,
  upgradePhases,
} from '../domain/cluster-spec.ts';
import type { EtcdClusterSpec, EtcdClusterStatus, GateResult, GateRunSpec, MemberStatus, UpgradeGateSpec, UpgradeStatus } from '../domain/cluster-spec.ts';
import { enumOf } from './openapi.ts';
import type { JSONSchemaProps, NumberSchema, ObjectSchema } from './openapi.ts';
import { robustnessRunSpecSchema } from './run-schema.ts';
import {
  boolean,
  conditionsSchema,
  duration,
  name,
  namespaceName,
  quantity,
  resourceRequirements,
  resourceSchema,
  text,
  time,
  verdictSchema,
} from './schema-kit.ts';

/** The etcd version built in this repository (test/bin/etcd-v3.6/go.mod; a unit test keeps them equal). */
export const defaultEtcdVersion = '3.6.16';

// ---------------------------------------------------------------------------------------------------
// EtcdCluster

const secretRef = (description: string): ObjectSchema<{ secretName: string }> => ({
  type: 'object',
  description,
  properties: { secretName: name('A kubernetes.io/tls Secret in the cluster\'s namespace (tls.crt, tls.key, ca.crt).') },
  required: ['secretName'],
});

const memberStatusSchema: ObjectSchema<MemberStatus> = {
  type: 'object',
  properties: {
    name: text('The member name.', 253),
    id: text('etcd\'s member id in hex; absent before the member joined.', 32),
    role: enumOf(memberRoles),
    version: text('The etcd version the member runs.', 64),
    healthy: boolean('Whether the member answers its health check.'),
    revision: { type: 'integer', format: 'int64', minimum: 0, description: 'The member\'s store revision.' },
    clientUrl: text('The member\'s client URL.', 512),
    peerUrl: text('The member\'s peer URL.', 512),
  },
  required: ['name', 'role', 'healthy'],
};

const gateResultSchema: ObjectSchema<GateResult> = {
  type: 'object',
  properties: {
    step: text('before, after-<member> or end.', 300),
    run: text('The gate run (a RobustnessRun owned by the cluster).', 253),
    phase: enumOf(['Running', 'Passed', 'Failed']),
    verdict: verdictSchema,
    availability: { type: 'number', minimum: 0, maximum: 1, description: 'Fraction of probe operations that succeeded.' },
    unknownRate: { type: 'number', minimum: 0, maximum: 1, description: 'Fraction of probe operations whose outcome stayed unknown.' },
    reason: text('Why it failed, or what it passed on.', 4096),
    startedAt: time('When the gate run was created.'),
    finishedAt: time('When the gate was judged.'),
  },
  required: ['step', 'run', 'phase', 'startedAt'],
};

const upgradeStatusSchema: ObjectSchema<UpgradeStatus> = {
  type: 'object',
  description: 'The rolling upgrade in progress, or the last one.',
  properties: {
    number: { type: 'integer', format: 'int64', minimum: 1, description: "1 for the cluster's first upgrade; names its gate runs." },
    from: text('The version every member ran when the upgrade started.', 64),
    to: text('The version upgraded to.', 64),
    phase: enumOf(upgradePhases),
    order: { type: 'array', items: text('A member name.', 253), maxItems: 16, 'x-kubernetes-list-type': 'atomic' },
    step: text('The step in progress: gate:<step>, member:<name> or rollback:<name>.', 300),
    reason: text('Why the upgrade is blocked or was refused.', 4096),
    startedAt: time('When the upgrade started.'),
    finishedAt: time('When it succeeded, was rolled back or refused.'),
    resumed: text('The value of the resume annotation this upgrade last acted on.', 253),
    gates: { type: 'array', items: gateResultSchema, maxItems: 32, 'x-kubernetes-list-type': 'atomic' },
  },
  required: ['number', 'from', 'to', 'phase', 'order', 'startedAt', 'gates'],
};

export const etcdClusterStatusSchema: ObjectSchema<EtcdClusterStatus> = {
  type: 'object',
  description: 'The cluster as the operator last observed it (from etcd\'s member list and status calls).',
  properties: {
    phase: enumOf(clusterPhases),
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0, description: 'The metadata.generation this status describes.' },
    members: {
      type: 'array',
      items: memberStatusSchema,
      maxItems: 16,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    },
    readyMembers: { type: 'integer', format: 'int32', minimum: 0, description: 'Members that are healthy.' },
    clusterId: text('etcd\'s cluster id in hex.', 32),
    leader: text('The name of the leader.', 253),
    endpoints: { type: 'array', items: text('A client URL.', 512), maxItems: 16, 'x-kubernetes-list-type': 'atomic' },
    witness: {
      type: 'object',
      description: 'twoNodeWitness: the witness record as last read, and the last failover.',
      properties: {
        witness: text('Where the record lives.', 512),
        epoch: { type: 'integer', format: 'int64', minimum: 0, description: 'The record\'s epoch.' },
        phase: text('paired, single or failingOver.', 32),
        members: { type: 'array', items: text('A member name.', 253), maxItems: 4, 'x-kubernetes-list-type': 'atomic' },
        fenced: { type: 'array', items: text('A member name.', 253), maxItems: 1024, 'x-kubernetes-list-type': 'atomic' },
        lastFailover: {
          type: 'object',
          description: 'The last failover.',
          properties: {
            epoch: { type: 'integer', format: 'int64', minimum: 0, description: 'The epoch the failover won.' },
            survivor: text('The member brought back alone.', 253),
            fenced: text('The member fenced.', 253),
            quorumLostAt: time('When the operator first saw the pair without quorum.'),
            startedAt: time('When the witness record for the failover was won.'),
            writableAt: time('When the survivor served writes alone.'),
          },
          required: ['epoch', 'survivor', 'fenced', 'quorumLostAt', 'startedAt'],
        },
      },
      required: ['witness'],
    },
    upgrade: upgradeStatusSchema,
    conditions: conditionsSchema,
  },
};

// ---------------------------------------------------------------------------------------------------
// EtcdCluster spec (after the RobustnessRun spec: an upgrade gate holds a run's spec)

const { clusterRef: _clusterRef, schedule: _schedule, ...gateRunProperties } = robustnessRunSpecSchema.properties;

const gateRunSpecSchema: ObjectSchema<GateRunSpec> = {
  type: 'object',
  description: 'A RobustnessRun spec without clusterRef and schedule: each gate runs it once against this cluster.',
  properties: gateRunProperties,
  'x-kubernetes-validations': robustnessRunSpecSchema['x-kubernetes-validations'] ?? [],
};

const ratioSchema = (description: string, defaultValue: number): NumberSchema => ({ type: 'number', description, minimum: 0, maximum: 1, default: defaultValue });

const upgradeGateSchema: ObjectSchema<UpgradeGateSpec> = {
  type: 'object',
  description:
    'The checks a rolling upgrade (a change of version) must pass: a RobustnessRun against the cluster before the first member, after each member and at the end. A failed gate stops the upgrade (condition UpgradeBlocked) until the etcd.robustness.io/upgrade-resume annotation changes or version goes back.',
  properties: {
    runTemplate: {
      type: 'object',
      description: 'The RobustnessRun each gate runs; exclusive with runRef.',
      properties: { spec: gateRunSpecSchema },
      required: ['spec'],
    },
    runRef: {
      type: 'object',
      description: "A RobustnessRun in the cluster's namespace whose spec each gate run copies; exclusive with runTemplate.",
      properties: { name: name('Its name.') },
      required: ['name'],
    },
    minDuration: duration({ min: 1000, description: 'Each gate run drives traffic at least this long (a shorter duration of the run is raised).', default: '30s' }),
    before: boolean('Run a gate before the first member is upgraded.', true),
    afterEachMember: boolean('Run a gate after each member is upgraded (after the last one only when atEnd is false).', true),
    atEnd: boolean('Run a gate once every member runs the new version.', true),
    criteria: {
      type: 'object',
      description: 'What a gate run must show to pass; its verdict must be linearizable in any case.',
      default: {},
      properties: {
        watchChecks: boolean('No watch guarantee may be violated.', true),
        minAvailability: ratioSchema('The least fraction of probe operations that succeeded.', 0.95),
        maxUnknownRate: ratioSchema('The largest fraction of probe operations whose outcome stayed unknown.', 0.05),
      },
    },
  },
  'x-kubernetes-validations': [{ rule: 'has(self.runTemplate) != has(self.runRef)', message: 'exactly one of runTemplate and runRef is required' }],
};

export const etcdClusterSpecSchema: ObjectSchema<EtcdClusterSpec> = {
  type: 'object',
  description: 'The etcd cluster the operator creates, scales and heals.',
  default: {},
  'x-kubernetes-validations': [
    // has(): the rules are also checked against the schema's own default ({}), before nested defaults apply.
    {
      rule: "!has(self.topology) || self.topology != 'twoNodeWitness' || (has(self.replicas) && self.replicas == 2 && has(self.twoNode))",
      message: 'the twoNodeWitness topology needs replicas 2 and twoNode.witness',
    },
    {
      rule: "(has(self.topology) && self.topology == 'twoNodeWitness') || ((!has(self.replicas) || self.replicas != 2) && !has(self.twoNode))",
      message: 'replicas 2 and twoNode are for the twoNodeWitness topology',
    },
    { rule: '!has(oldSelf.topology) || (has(self.topology) && self.topology == oldSelf.topology)', message: 'topology cannot be changed' },
  ],
  properties: {
    version: {
      type: 'string',
      description: 'etcd version without the leading v.',
      pattern: '^[0-9]+[.][0-9]+[.][0-9]+(-[0-9A-Za-z.-]+)?$',
      maxLength: 64,
      default: defaultEtcdVersion,
    },
    replicas: enumOf(clusterReplicaCounts, { description: 'Members: 1, 3 or 5 (2 with the twoNodeWitness topology). Scaled one member at a time.', default: 3 }),
    topology: enumOf(clusterTopologies, {
      description: 'standard: every member a full voter. twoNodeWitness: two voters and a witness that arbitrates failovers (needs replicas 2 and twoNode).',
      default: 'standard',
    }),
    twoNode: {
      type: 'object',
      description: 'The witness and failover settings of the twoNodeWitness topology.',
      properties: {
        witness: {
          type: 'object',
          description: 'Where the witness record lives.',
          properties: {
            kind: enumOf(witnessKinds, { description: 'lease or configMap: a Kubernetes object with resourceVersion preconditions; http: the HTTP witness process (local runtime).' }),
            namespace: namespaceName('lease, configMap: its namespace; absent: the cluster\'s.'),
            name: name('lease, configMap: its name; absent: <cluster>-witness.'),
            url: { type: 'string', description: 'http: the witness URL.', pattern: '^https?://[^\\s]+$', maxLength: 512 },
          },
          required: ['kind'],
          'x-kubernetes-validations': [
            { rule: "self.kind != 'http' || has(self.url)", message: 'an http witness needs url' },
            { rule: "self.kind == 'http' || !has(self.url)", message: 'url is for the http witness only' },
          ],
        },
        failoverGrace: duration({ min: 500, description: 'How long the pair may be without quorum before the operator fails over.', default: '3s' }),
      },
      required: ['witness'],
    },
    storage: {
      type: 'object',
      description: 'The PersistentVolumeClaim of each member.',
      default: {},
      properties: {
        size: {
          ...quantity('The size of each member\'s volume.', '1Gi'),
          'x-kubernetes-validations': [{ rule: "!isQuantity(self) || quantity(self).isGreaterThan(quantity('0'))", message: 'must be larger than 0' }],
        },
        storageClassName: name('The StorageClass; absent: the cluster\'s default.'),
      },
    },
    resources: resourceRequirements('Compute resources of the etcd container.'),
    image: {
      type: 'object',
      description: 'The etcd image.',
      default: {},
      properties: {
        repository: { type: 'string', description: 'The image repository.', pattern: '^[^\\s]+$', maxLength: 512, default: 'gcr.io/etcd-development/etcd' },
        tag: { type: 'string', description: 'The image tag; absent: v<version>.', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' },
        failpoints: boolean('Use the gofail-enabled build (<repository>-failpoints), needed by failpoint faults.', false),
        pullPolicy: enumOf(['Always', 'IfNotPresent', 'Never'], { description: 'The image pull policy.', default: 'IfNotPresent' }),
      },
    },
    agent: {
      type: 'object',
      description: 'The fault agent beside each member.',
      default: {},
      properties: {
        enabled: boolean('Run the fault agent as a sidecar sharing the member pod\'s process namespace.', true),
        image: { type: 'string', description: 'The agent image; absent: the operator\'s own.', pattern: '^[^\\s]+$', maxLength: 512 },
      },
    },
    tls: {
      type: 'object',
      description: 'Client and peer TLS from Secrets.',
      properties: { client: secretRef('TLS for the client listener.'), peer: secretRef('TLS for the peer listener.') },
    },
    memberGracePeriod: duration({
      min: 1000,
      description: 'How long a member may be unreachable or failing before it is replaced.',
      default: '5m',
    }),
    upgradeGate: upgradeGateSchema,
  },
};

export const etcdClusterSchema: JSONSchemaProps = resourceSchema(
  'An etcd cluster the operator creates, scales and heals.',
  etcdClusterSpecSchema,
  etcdClusterStatusSchema,
  false,
);

