/**
 * The EtcdCluster custom resource (group etcd.robustness.io, version v1alpha1): an etcd cluster the
 * operator creates, scales and heals. The CRD schema in crds/ is generated from
 * src/api (run-schema.ts, cluster-schema.ts), which the compiler checks against these types.
 */
import type { Verdict } from './history.ts';
import type { Condition, ObjectMeta } from './kube.ts';
import type { RobustnessRunSpecInput } from './run-resource.ts';
import type { robustnessApiVersion } from './run-spec.ts';

export const etcdClusterKind = 'EtcdCluster';
export const etcdClusterPlural = 'etcdclusters';

/** 2 only with the twoNodeWitness topology (and it needs exactly 2). */
export const clusterReplicaCounts = [1, 2, 3, 5] as const;
export type ClusterReplicas = (typeof clusterReplicaCounts)[number];

/**
 * standard: an odd number of voters; twoNodeWitness: two voters and a witness outside the pair that
 * arbitrates which survivor may continue (docs/two-node-witness.md).
 */
export const clusterTopologies = ['standard', 'twoNodeWitness'] as const;
export type ClusterTopology = (typeof clusterTopologies)[number];

export const clusterPhases = ['Pending', 'Creating', 'Running', 'Scaling', 'Degraded', 'Deleting', 'Failed'] as const;
export type ClusterPhase = (typeof clusterPhases)[number];

export const memberRoles = ['leader', 'follower', 'learner', 'unknown'] as const;
export type MemberRole = (typeof memberRoles)[number];

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export const witnessKinds = ['lease', 'configMap', 'http'] as const;
export type WitnessKind = (typeof witnessKinds)[number];

/** Where the witness record of a twoNodeWitness cluster lives. */
export interface WitnessSpec {
  /**
   * lease: a coordination.k8s.io Lease; configMap: a ConfigMap (both with resourceVersion preconditions,
   * for etcd clusters that are not the API server's own store); http: the HTTP witness process
   * (`etcd-robustness witness`), for the local runtime.
   */
  kind: WitnessKind;
  /** lease, configMap: the namespace (default: the EtcdCluster's). */
  namespace?: string;
  /** lease, configMap: the object's name (default: `<cluster>-witness`). */
  name?: string;
  /** http: the witness's URL. */
  url?: string;
}

export interface TwoNodeSpec {
  witness: WitnessSpec;
  /** How long the pair may be without quorum before the operator fails over (a duration, e.g. `3s`). */
  failoverGrace: string;
}

export interface EtcdClusterSpec {
  /** etcd version without the leading v, e.g. `3.6.16`. */
  version: string;
  replicas: ClusterReplicas;
  topology: ClusterTopology;
  /** Required with topology twoNodeWitness. */
  twoNode?: TwoNodeSpec;
  storage: {
    /** A Kubernetes quantity, e.g. `1Gi`. */
    size: string;
    /** Absent: the cluster's default StorageClass. */
    storageClassName?: string;
  };
  resources?: ResourceRequirements;
  image: {
    repository: string;
    /** Absent: `v<version>`. */
    tag?: string;
    /** Use the gofail-enabled build (`<repository>-failpoints`), needed by failpoint faults. */
    failpoints: boolean;
    pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  };
  agent: {
    /** Run the fault agent beside each member (a sidecar sharing the pod's process namespace). */
    enabled: boolean;
    image?: string;
  };
  tls?: {
    /** A kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) for the client listener. */
    client?: { secretName: string };
    /** A kubernetes.io/tls Secret for the peer listener. */
    peer?: { secretName: string };
  };
  /** How long a member may be unreachable or failing before it is replaced (a duration, e.g. `5m`). */
  memberGracePeriod: string;
  /** The checks a rolling upgrade (a change of `version`) must pass before, between and after members. */
  upgradeGate?: UpgradeGateSpec;
}

/** What a gate run must show to pass (src/controller/gates/criteria.ts judges a run by it). */
export interface GateCriteria {
  /** No watch guarantee may be violated (the verdict must be linearizable in any case). */
  watchChecks: boolean;
  /** The least fraction of probe operations that succeeded (0 to 1). */
  minAvailability: number;
  /** The largest fraction of probe operations whose outcome stayed unknown (0 to 1). */
  maxUnknownRate: number;
}

/** The spec of a gate run: a RobustnessRun spec without its cluster (the gate names the cluster). */
export type GateRunSpec = Omit<RobustnessRunSpecInput, 'clusterRef' | 'schedule'>;

export interface UpgradeGateSpec {
  /** The RobustnessRun each gate runs (its clusterRef is this cluster); exclusive with runRef. */
  runTemplate?: { spec: GateRunSpec };
  /** A RobustnessRun in the cluster's namespace whose spec each gate run copies; exclusive with runTemplate. */
  runRef?: { name: string };
  /** A gate run drives traffic at least this long (a duration; a shorter template duration is raised). */
  minDuration: string;
  /** Run a gate before the first member is upgraded. */
  before: boolean;
  /** Run a gate after each member is upgraded (after the last one: see atEnd). */
  afterEachMember: boolean;
  /** Run a gate once every member runs the new version. */
  atEnd: boolean;
  criteria: GateCriteria;
}

export const upgradePhases = ['Progressing', 'Blocked', 'RollingBack', 'Succeeded', 'RolledBack', 'Refused'] as const;
export type UpgradePhase = (typeof upgradePhases)[number];

/** One gate of an upgrade: which run judged it and how it went. */
export interface GateResult {
  /** `before`, `after-<member>`, `end`. */
  step: string;
  /** The gate run (a RobustnessRun owned by the EtcdCluster). */
  run: string;
  phase: 'Running' | 'Passed' | 'Failed';
  verdict?: Verdict;
  /** Fraction of probe operations that succeeded. */
  availability?: number;
  /** Fraction of probe operations whose outcome stayed unknown. */
  unknownRate?: number;
  /** Why it failed (or what it passed on). */
  reason?: string;
  startedAt: string;
  finishedAt?: string;
}

/** The rolling upgrade in progress, or the last one. */
export interface UpgradeStatus {
  /** 1 for the cluster's first upgrade; names its gate runs. */
  number: number;
  /** The version every member ran when the upgrade started. */
  from: string;
  to: string;
  phase: UpgradePhase;
  /** Members in upgrade order, fixed at the start: followers first, the leader of that moment last. */
  order: string[];
  /** The step in progress: `gate:<step>`, `member:<name>` or `rollback:<name>`. */
  step?: string;
  /** Why the upgrade is blocked or was refused. */
  reason?: string;
  startedAt: string;
  finishedAt?: string;
  /** The value of the resume annotation this upgrade last acted on. */
  resumed?: string;
  /** Every gate of this upgrade, in order (retries included), at most 32. */
  gates: GateResult[];
}

export interface MemberStatus {
  name: string;
  /** etcd's member id in hex; absent before the member joined. */
  id?: string;
  role: MemberRole;
  version?: string;
  healthy: boolean;
  revision?: number;
  clientUrl?: string;
  peerUrl?: string;
}

/** One failover, as the status and Events record it. */
export interface FailoverStatus {
  epoch: number;
  survivor: string;
  fenced: string;
  /** RFC 3339: when the operator first saw the pair without quorum. */
  quorumLostAt: string;
  /** RFC 3339: when the witness record for the failover was won. */
  startedAt: string;
  /** RFC 3339: when the survivor served writes alone. */
  writableAt?: string;
}

export interface WitnessStatus {
  /** Where the record lives. */
  witness: string;
  epoch?: number;
  phase?: string;
  members?: string[];
  fenced?: string[];
  lastFailover?: FailoverStatus;
}

export interface EtcdClusterStatus {
  phase?: ClusterPhase;
  observedGeneration?: number;
  members?: MemberStatus[];
  readyMembers?: number;
  /** etcd's cluster id in hex. */
  clusterId?: string;
  leader?: string;
  endpoints?: string[];
  /** twoNodeWitness: the witness record as last read, and the last failover. */
  witness?: WitnessStatus;
  /** The rolling upgrade in progress, or the last one. */
  upgrade?: UpgradeStatus;
  conditions?: Condition[];
}

export interface EtcdCluster {
  apiVersion: typeof robustnessApiVersion;
  kind: typeof etcdClusterKind;
  metadata: ObjectMeta;
  spec: EtcdClusterSpec;
  status?: EtcdClusterStatus;
}

export const clusterConditionTypes = ['Available', 'Progressing', 'Degraded', 'Upgrading', 'UpgradeBlocked'] as const;
export type ClusterConditionType = (typeof clusterConditionTypes)[number];
