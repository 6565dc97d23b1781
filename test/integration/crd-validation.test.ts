// The CRDs of crds/ on a real kube-apiserver: they install with kubectl apply --server-side (so the API
// server compiled every CEL rule against the schema and found each within its cost budget), reject the
// invalid manifests below with the messages users will see, accept the valid ones and the samples, apply
// the defaults, and keep spec and status apart through the status subresource.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { cronMessage } from '../../src/api/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';

const namespace = 'crd-validation';
const repo = new URL('../../', import.meta.url);

function cluster(name: string, spec: string): string {
  return `apiVersion: etcd.robustness.io/v1alpha1\nkind: EtcdCluster\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}\n`;
}

function run(name: string, spec: string): string {
  return `apiVersion: etcd.robustness.io/v1alpha1\nkind: RobustnessRun\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}\n`;
}

/** A run spec with clusterRef, plus `fields` (YAML flow mapping entries). */
const runSpec = (fields: string): string => `{clusterRef: {name: demo}${fields === '' ? '' : `, ${fields}`}}`;

interface Invalid {
  name: string;
  manifest: string;
  /** Fragments of kubectl's error message, all expected. */
  messages: string[];
  /** The whole error message is shorter than this many characters. */
  under?: number;
}

const invalid: Invalid[] = [
  { name: 'replicas 2 without the witness topology', manifest: cluster('c', '{replicas: 2}'), messages: ['replicas 2 and twoNode are for the twoNodeWitness topology'] },
  { name: 'replicas 0', manifest: cluster('c', '{replicas: 0}'), messages: ['spec.replicas: Unsupported value: 0: supported values: "1", "2", "3", "5"'] },
  { name: 'twoNodeWitness without a witness', manifest: cluster('c', '{topology: twoNodeWitness, replicas: 2}'), messages: ['the twoNodeWitness topology needs replicas 2 and twoNode.witness'] },
  {
    name: 'twoNodeWitness with 3 replicas',
    manifest: cluster('c', '{topology: twoNodeWitness, replicas: 3, twoNode: {witness: {kind: lease}}}'),
    messages: ['the twoNodeWitness topology needs replicas 2 and twoNode.witness'],
  },
  { name: 'twoNode on a standard cluster', manifest: cluster('c', '{twoNode: {witness: {kind: lease}}}'), messages: ['replicas 2 and twoNode are for the twoNodeWitness topology'] },
  {
    name: 'an http witness without url',
    manifest: cluster('c', '{topology: twoNodeWitness, replicas: 2, twoNode: {witness: {kind: http}}}'),
    messages: ['spec.twoNode.witness: Invalid value: an http witness needs url'],
  },
  {
    name: 'a lease witness with url',
    manifest: cluster('c', '{topology: twoNodeWitness, replicas: 2, twoNode: {witness: {kind: lease, url: "http://127.0.0.1:1"}}}'),
    messages: ['spec.twoNode.witness: Invalid value: url is for the http witness only'],
  },
  {
    name: 'an unknown witness kind',
    manifest: cluster('c', '{topology: twoNodeWitness, replicas: 2, twoNode: {witness: {kind: s3}}}'),
    messages: ['spec.twoNode.witness.kind: Unsupported value: "s3"'],
  },
  {
    name: 'a failover grace too short',
    manifest: cluster('c', '{topology: twoNodeWitness, replicas: 2, twoNode: {witness: {kind: lease}, failoverGrace: 100ms}}'),
    messages: ['spec.twoNode.failoverGrace: Invalid value: "100ms": must be a duration at least 500ms'],
  },
  { name: 'unknown topology', manifest: cluster('c', '{topology: ring}'), messages: ['spec.topology: Unsupported value: "ring"'] },
  { name: 'bad storage size', manifest: cluster('c', '{storage: {size: 1GB}}'), messages: ['spec.storage.size: Invalid value: "1GB": spec.storage.size in body should match'] },
  { name: 'zero storage size', manifest: cluster('c', '{storage: {size: "0"}}'), messages: ['spec.storage.size: Invalid value: "0": must be larger than 0'] },
  { name: 'version with a v', manifest: cluster('c', '{version: v3.6.16}'), messages: ['spec.version: Invalid value: "v3.6.16"'] },
  { name: 'bad pull policy', manifest: cluster('c', '{image: {pullPolicy: Sometimes}}'), messages: ['spec.image.pullPolicy: Unsupported value: "Sometimes"'] },
  { name: 'tls without secretName', manifest: cluster('c', '{tls: {client: {}}}'), messages: ['spec.tls.client.secretName: Required value'] },
  { name: 'bad grace period', manifest: cluster('c', '{memberGracePeriod: "300"}'), messages: ['spec.memberGracePeriod: Invalid value: "300"'] },
  { name: 'grace period too short', manifest: cluster('c', '{memberGracePeriod: 500ms}'), messages: ['spec.memberGracePeriod: Invalid value: "500ms": must be a duration at least 1s'] },
  { name: 'unknown cluster field', manifest: cluster('c', '{replica: 3}'), messages: ['unknown field "spec.replica"'] },
  { name: 'missing clusterRef', manifest: run('r', '{duration: 30s}'), messages: ['spec.clusterRef: Required value'] },
  { name: 'missing clusterRef.name', manifest: run('r', '{clusterRef: {namespace: default}}'), messages: ['spec.clusterRef.name: Required value'] },
  { name: 'missing spec', manifest: 'apiVersion: etcd.robustness.io/v1alpha1\nkind: RobustnessRun\nmetadata: {name: r, namespace: crd-validation}\n', messages: ['spec: Required value'] },
  // A short message, not the 1.5 KB regular expression of the pattern.
  { name: 'bad cron (out of range)', manifest: run('r', runSpec('schedule: {kind: cron, cron: "61 * * * *"}')), messages: [`spec.schedule.cron: Invalid value: "61 * * * *": ${cronMessage}`], under: 400 },
  { name: 'bad cron (not a cron)', manifest: run('r', runSpec('schedule: {kind: cron, cron: "not a cron"}')), messages: [`spec.schedule.cron: Invalid value: "not a cron": ${cronMessage}`], under: 400 },
  { name: 'bad cron (six fields)', manifest: run('r', runSpec('schedule: {kind: cron, cron: "0 0 3 * * *"}')), messages: [`spec.schedule.cron: Invalid value: "0 0 3 * * *": ${cronMessage}`], under: 400 },
  { name: 'kind cron without cron', manifest: run('r', runSpec('schedule: {kind: cron}')), messages: ['spec.schedule.cron: Required value: cron is required with kind: cron'] },
  { name: 'cron with kind once', manifest: run('r', runSpec('schedule: {cron: "0 3 * * *"}')), messages: ['spec.schedule.cron: Forbidden: cron is only allowed with kind: cron'] },
  { name: 'continuous without window', manifest: run('r', runSpec('schedule: {kind: continuous}')), messages: ['spec.schedule.window: Required value: window is required with kind: continuous'] },
  { name: 'unknown schedule kind', manifest: run('r', runSpec('schedule: {kind: daily}')), messages: ['spec.schedule.kind: Unsupported value: "daily"'] },
  { name: 'historyLimit 0', manifest: run('r', runSpec('schedule: {historyLimit: 0}')), messages: ['spec.schedule.historyLimit: Invalid value: 0: spec.schedule.historyLimit in body should be greater than or equal to 1'] },
  {
    name: 'unknown fault name',
    manifest: run('r', runSpec('faults: {choices: [{fault: kil}]}')),
    messages: ['spec.faults.choices[0].fault: Unsupported value: "kil"'],
  },
  {
    name: 'a bare fault name (the CLI shorthand)',
    manifest: run('r', runSpec('faults: {choices: [kill]}')),
    messages: ['spec.faults.choices[0]: Invalid value: "string": spec.faults.choices[0] in body must be of type object'],
  },
  {
    name: 'a target the fault does not allow',
    manifest: run('r', runSpec('faults: {choices: [{fault: leaderTransfer, target: leader}]}')),
    messages: ['spec.faults.choices[0].target: Invalid value: leaderTransfer cannot target "leader" (allowed for leaderTransfer: follower, member)'],
  },
  {
    name: 'target member without member',
    manifest: run('r', runSpec('faults: {choices: [{fault: kill, target: member}]}')),
    messages: ['spec.faults.choices[0].member: Required value: member is required with target: member'],
  },
  {
    name: 'member without target member',
    manifest: run('r', runSpec('faults: {choices: [{fault: kill, member: m1}]}')),
    messages: ['spec.faults.choices[0].member: Forbidden: member is only allowed with target: member'],
  },
  {
    name: 'a parameter of another fault',
    manifest: run('r', runSpec('faults: {choices: [{fault: kill, params: {delayMs: 5}}]}')),
    messages: ['spec.faults.choices[0].params.delayMs: Invalid value: delayMs is a parameter of delay only'],
  },
  {
    name: 'a parameter out of range',
    manifest: run('r', runSpec('faults: {choices: [{fault: drop, params: {percent: 101}}]}')),
    messages: ['spec.faults.choices[0].params.percent: Invalid value: 101'],
  },
  { name: 'an empty choices list', manifest: run('r', runSpec('faults: {choices: []}')), messages: ['spec.faults.choices: Invalid value: 0: spec.faults.choices in body should have at least 1 items'] },
  { name: 'maxConcurrentFaults 6', manifest: run('r', runSpec('faults: {maxConcurrentFaults: 6}')), messages: ['spec.faults.maxConcurrentFaults: Invalid value: 6'] },
  {
    name: 'interval min above max',
    manifest: run('r', runSpec('faults: {interval: {min: 10s, max: 5s}}')),
    messages: ['spec.faults.interval.max: Invalid value: max must not be shorter than min'],
  },
  { name: 'interval shorthand', manifest: run('r', runSpec('faults: {interval: 3s}')), messages: ['spec.faults.interval: Invalid value: "string"'] },
  { name: 'negative QPS', manifest: run('r', runSpec('traffic: {qps: {target: -5}}')), messages: ['spec.traffic.qps.target: Invalid value: -5: spec.traffic.qps.target in body should be greater than 0'] },
  { name: 'zero QPS', manifest: run('r', runSpec('traffic: {qps: {target: 0}}')), messages: ['spec.traffic.qps.target: Invalid value: 0: spec.traffic.qps.target in body should be greater than 0'] },
  { name: 'qps.min above qps.target', manifest: run('r', runSpec('traffic: {qps: {target: 10, min: 20}}')), messages: ['spec.traffic.qps.min: Invalid value: qps.min must not exceed qps.target'] },
  {
    name: 'no clients',
    manifest: run('r', runSpec('traffic: {clients: {perMember: 0, spread: 0}}')),
    messages: ['spec.traffic.clients: Invalid value: perMember + spread must be at least 1'],
  },
  { name: 'clients 65', manifest: run('r', runSpec('traffic: {clients: {perMember: 65}}')), messages: ['spec.traffic.clients.perMember: Invalid value: 65'] },
  { name: 'keys 0', manifest: run('r', runSpec('traffic: {keys: 0}')), messages: ['spec.traffic.keys: Invalid value: 0'] },
  { name: 'valueSize 4', manifest: run('r', runSpec('traffic: {valueSize: 4}')), messages: ['spec.traffic.valueSize: Invalid value: 4'] },
  {
    name: 'a weight of the other profile',
    manifest: run('r', runSpec('traffic: {profile: kubernetes, weights: {put: 1}}')),
    messages: ['spec.traffic.weights: Invalid value: the kubernetes profile only has the operation kinds create, update, delete, get, list, listWatch'],
  },
  { name: 'unknown operation kind', manifest: run('r', runSpec('traffic: {weights: {gett: 1}}')), messages: ['unknown field "spec.traffic.weights.gett"'] },
  { name: 'bad duration "30"', manifest: run('r', runSpec('duration: "30"')), messages: ['spec.duration: Invalid value: "30": spec.duration in body should match'] },
  { name: 'a bare number duration', manifest: run('r', runSpec('duration: 30')), messages: ['spec.duration: Invalid value: "integer": spec.duration in body must be of type string'] },
  { name: 'a fraction of a millisecond', manifest: run('r', runSpec('duration: 0.5ms')), messages: ['spec.duration: Invalid value: "0.5ms"'] },
  { name: 'zero duration', manifest: run('r', runSpec('duration: 0s')), messages: ['spec.duration: Invalid value: "0s": must be a duration at least 1ms'] },
  { name: 'requestTimeout above 1m', manifest: run('r', runSpec('traffic: {requestTimeout: 2m}')), messages: ['spec.traffic.requestTimeout: Invalid value: "2m": must be a duration between 10ms and 1m'] },
  { name: 'timeout not after duration', manifest: run('r', runSpec('duration: 2m, timeout: 1m')), messages: ['spec.timeout: Invalid value: timeout must be longer than duration'] },
  { name: 'timeout not after the default duration', manifest: run('r', runSpec('timeout: 30s')), messages: ['spec.timeout: Invalid value: timeout must be longer than duration'] },
  { name: 'seed -1', manifest: run('r', runSpec('seed: -1')), messages: ['spec.seed: Invalid value: -1: spec.seed in body should be greater than or equal to 0'] },
  { name: 'seed 2^31', manifest: run('r', runSpec('seed: 2147483648')), messages: ['spec.seed: Invalid value: 2147483648'] },
  { name: 'bad prefix', manifest: run('r', runSpec('prefix: /')), messages: ['spec.prefix: Invalid value: "/"'] },
  {
    name: 'nothing checked',
    manifest: run('r', runSpec('checks: {linearizability: false, watch: false}')),
    messages: ['spec.checks: Invalid value: at least one of linearizability and watch must be true'],
  },
  {
    name: 'faults in shared mode without consent',
    manifest: run('r', runSpec('mode: shared, faults: {}')),
    messages: ['spec.faults: Invalid value: fault injection disrupts every client of a shared cluster; set allowShared: true to allow it'],
  },
  {
    name: 'compaction in shared mode without consent',
    manifest: run('r', runSpec('mode: shared, traffic: {compaction: {enabled: true}}')),
    messages: ['spec.traffic.compaction: Invalid value: compaction rewrites history for every client of a shared cluster'],
  },
  { name: 'unknown run field', manifest: run('r', runSpec('trafic: {}')), messages: ['unknown field "spec.trafic"'] },
  {
    name: 'an upgrade gate with both a template and a reference',
    manifest: cluster('gate-both', '{upgradeGate: {runRef: {name: nightly}, runTemplate: {spec: {}}}}'),
    messages: ['spec.upgradeGate: Invalid value: exactly one of runTemplate and runRef is required'],
  },
  { name: 'an upgrade gate with neither', manifest: cluster('gate-none', '{upgradeGate: {minDuration: 1m}}'), messages: ['exactly one of runTemplate and runRef is required'] },
  {
    name: 'an upgrade gate availability above 1',
    manifest: cluster('gate-ratio', '{upgradeGate: {runRef: {name: n}, criteria: {minAvailability: 1.5}}}'),
    messages: ['spec.upgradeGate.criteria.minAvailability: Invalid value: 1.5: spec.upgradeGate.criteria.minAvailability in body should be less than or equal to 1'],
  },
  {
    name: 'an upgrade gate template naming a cluster',
    manifest: cluster('gate-cluster', '{upgradeGate: {runTemplate: {spec: {clusterRef: {name: other}}}}}'),
    messages: ['unknown field "spec.upgradeGate.runTemplate.spec.clusterRef"'],
  },
  {
    name: 'an upgrade gate template with faults in shared mode without consent',
    manifest: cluster('gate-shared', '{upgradeGate: {runTemplate: {spec: {mode: shared, faults: {}}}}}'),
    messages: ['spec.upgradeGate.runTemplate.spec.faults: Invalid value: fault injection disrupts every client of a shared cluster'],
  },
];

const valid: { name: string; manifest: string }[] = [
  { name: 'an EtcdCluster with every field', manifest: cluster('full', `{version: 3.5.4, replicas: 5, topology: standard, storage: {size: 10Gi, storageClassName: fast}, resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {memory: 1Gi}}, image: {repository: quay.io/coreos/etcd, tag: v3.5.4, failpoints: true, pullPolicy: Always}, agent: {enabled: false, image: example.com/agent:1}, tls: {client: {secretName: client-tls}, peer: {secretName: peer-tls}}, memberGracePeriod: 90s,
        upgradeGate: {runTemplate: {spec: {duration: 45s, traffic: {qps: {target: 50}}, faults: {choices: [{fault: kill}]}}}, minDuration: 40s, before: false, afterEachMember: true, atEnd: true, criteria: {watchChecks: false, minAvailability: 0.9, maxUnknownRate: 0.1}}}`) },
  { name: 'an upgrade gate on a RobustnessRun reference, defaults filled', manifest: cluster('gate-ref', '{upgradeGate: {runRef: {name: nightly}}}') },
  { name: 'a one-member cluster', manifest: cluster('one', '{replicas: 1}') },
  {
    name: 'a two-node-plus-witness cluster (lease)',
    manifest: cluster('pair', '{topology: twoNodeWitness, replicas: 2, twoNode: {witness: {kind: lease, namespace: witnesses, name: pair-witness}, failoverGrace: 2s}}'),
  },
  { name: 'a two-node-plus-witness cluster (http)', manifest: cluster('pair-http', '{topology: twoNodeWitness, replicas: 2, twoNode: {witness: {kind: http, url: "http://127.0.0.1:7000"}}}') },
  {
    name: 'a RobustnessRun with every field',
    manifest: run(
      'full',
      `{clusterRef: {name: demo, namespace: other}, schedule: {kind: cron, cron: "0 3 * * MON-FRI", historyLimit: 5, suspend: true}, duration: 1m30s, timeout: 20m, mode: shared, prefix: /robustness/full/, seed: 2147483647,
        traffic: {profile: kubernetes, weights: {create: 3, listWatch: 0.5}, keys: 100000, valueSize: 1048576, qps: {target: 25.5, burst: 40, min: 0}, clients: {perMember: 0, spread: 64}, requestTimeout: 1.5s,
          compaction: {enabled: true, interval: 1m, allowShared: true}, defragment: {enabled: false, interval: 5m, allowShared: true}},
        watch: {enabled: true, progressNotify: false, progressInterval: 250ms, perMember: false}, checks: {linearizability: true, watch: false, hashKV: false}, abortOnViolation: true,
        selfTest: {staleReads: {member: etcd-2}},
        faults: {enabled: true, allowShared: true, maxConcurrentFaults: 5, interval: {min: 2s, max: 5s}, duration: {min: 500ms, max: 1h}, recoveryTimeout: 1m,
          choices: [{fault: kill, weight: 2, target: follower}, {fault: delay, weight: 0.5, target: member, member: etcd-1, params: {delayMs: 100, jitterMs: 0}}, {fault: drop, params: {percent: 12.5}}, {fault: partition, params: {mode: asymmetric}}, {fault: diskPressure, params: {bytes: 1048576}}]}}`,
    ),
  },
  { name: 'a continuous schedule', manifest: run('continuous', runSpec('schedule: {kind: continuous, window: 10m}')) },
  { name: 'a timeout after the default duration', manifest: run('timeout', runSpec('timeout: 61s')) },
  { name: 'faults in shared mode with consent', manifest: run('consent', runSpec('mode: shared, faults: {allowShared: true}')) },
  { name: 'faults disabled in shared mode', manifest: run('disabled', runSpec('mode: shared, faults: {enabled: false}')) },
  { name: 'durations with fractions', manifest: run('fractions', runSpec('duration: 1.5m, timeout: 0.25h, traffic: {requestTimeout: 0.015s}')) },
];

/** The manifests of config/samples/ that are custom resources of ours. */
function samples(): { file: string; manifest: string }[] {
  const dir = new URL('config/samples/', repo);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) => {
      const text = readFileSync(new URL(file, dir), 'utf8');
      return parseAllDocuments(text)
        .map((doc) => doc.toJS() as { kind?: unknown } | null)
        .filter((object) => object?.kind === 'EtcdCluster' || object?.kind === 'RobustnessRun')
        .map((object) => ({ file, manifest: JSON.stringify(object) }));
    });
}

describe('the CRDs on a real kube-apiserver', { timeout: 300_000 }, () => {
  let apiserver: TestApiserver;

  async function kubectl(args: string[], stdin?: string): Promise<string> {
    const result = await apiserver.kubectl(args, stdin);
    assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout;
  }

  /** The object as the API server would store it (defaults applied), without storing it. */
  async function dryRun(manifest: string): Promise<{ spec: Record<string, unknown> }> {
    return JSON.parse(await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], manifest)) as { spec: Record<string, unknown> };
  }

  before(async () => {
    apiserver = await TestApiserver.start();
    await kubectl(['apply', '--server-side', '-f', new URL('crds/', repo).pathname]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/etcdclusters.etcd.robustness.io', 'crd/robustnessruns.etcd.robustness.io']);
    await kubectl(['create', 'namespace', namespace]);
  });

  after(async () => {
    await apiserver?.close();
  });

  test('both CRDs install server-side and are served under their short names and category', async () => {
    const crds = JSON.parse(await kubectl(['get', 'crd', '-o', 'json'])) as { items: { metadata: { name: string }; status: { conditions: { type: string; status: string }[] } }[] };
    const names = crds.items.map((crd) => crd.metadata.name).sort();
    assert.deepEqual(names, ['etcdclusters.etcd.robustness.io', 'robustnessruns.etcd.robustness.io']);
    for (const crd of crds.items) {
      assert.ok(crd.status.conditions.some((c) => c.type === 'NamesAccepted' && c.status === 'True'), crd.metadata.name);
    }
    const resources = await kubectl(['api-resources', '--api-group=etcd.robustness.io', '-o', 'wide']);
    assert.match(resources, /etcdclusters\s+etcdc\s+etcd.robustness.io\/v1alpha1\s+true\s+EtcdCluster/);
    assert.match(resources, /robustnessruns\s+rrun\s+etcd.robustness.io\/v1alpha1\s+true\s+RobustnessRun/);
    assert.match(resources, /etcd-robustness/);
    // Applying the same files again is a no-op (server-side apply owns every field).
    await kubectl(['apply', '--server-side', '-f', new URL('crds/', repo).pathname]);
  });

  for (const { name, manifest, messages, under } of invalid) {
    test(`rejected: ${name}`, async () => {
      const result = await apiserver.kubectl(['create', '--dry-run=server', '-f', '-'], manifest);
      assert.notEqual(result.code, 0, `accepted:\n${manifest}`);
      for (const message of messages) assert.ok(result.stderr.includes(message), `expected "${message}" in:\n${result.stderr}`);
      if (under !== undefined) assert.ok(result.stderr.length < under, `${result.stderr.length} characters: ${result.stderr}`);
    });
  }

  for (const { name, manifest } of valid) {
    test(`accepted: ${name}`, async () => {
      await dryRun(manifest);
    });
  }

  test('every EtcdCluster and RobustnessRun of config/samples/ is accepted', async () => {
    const found = samples();
    assert.ok(found.some((s) => s.manifest.includes('"EtcdCluster"')) && found.some((s) => s.manifest.includes('"RobustnessRun"')));
    const namespaces = new Set(found.map((s) => (JSON.parse(s.manifest) as { metadata: { namespace?: string } }).metadata.namespace ?? 'default'));
    for (const ns of namespaces) {
      if (ns !== 'default' && ns !== namespace) await kubectl(['create', 'namespace', ns]);
    }
    const problems: string[] = [];
    for (const { file, manifest } of found) {
      const result = await apiserver.kubectl(['create', '--dry-run=server', '-f', '-'], manifest);
      if (result.code !== 0) problems.push(`${file}: ${result.stderr.trim()}`);
    }
    assert.deepEqual(problems, []);
  });

  test('defaults: an EtcdCluster with spec: {} (or no spec) gets every default', async () => {
    const expected = {
      version: '3.6.16',
      replicas: 3,
      topology: 'standard',
      storage: { size: '1Gi' },
      image: { repository: 'gcr.io/etcd-development/etcd', failpoints: false, pullPolicy: 'IfNotPresent' },
      agent: { enabled: true },
      memberGracePeriod: '5m',
    };
    assert.deepEqual((await dryRun(cluster('minimal', '{}'))).spec, expected);
    const noSpec = `apiVersion: etcd.robustness.io/v1alpha1\nkind: EtcdCluster\nmetadata: {name: nospec, namespace: ${namespace}}\n`;
    assert.deepEqual((await dryRun(noSpec)).spec, expected);
    // Sections that are given keep what they say and get the rest.
    const partial = await dryRun(cluster('partial', '{storage: {storageClassName: fast}, image: {failpoints: true}}'));
    assert.deepEqual(partial.spec.storage, { size: '1Gi', storageClassName: 'fast' });
    assert.deepEqual(partial.spec.image, { repository: 'gcr.io/etcd-development/etcd', failpoints: true, pullPolicy: 'IfNotPresent' });
  });

  test('defaults: a minimal RobustnessRun gets a once schedule, and only mode-independent defaults', async () => {
    const minimal = await dryRun(run('minimal', runSpec('')));
    assert.deepEqual(minimal.spec, {
      clusterRef: { name: 'demo' },
      schedule: { kind: 'once', historyLimit: 10, suspend: false },
      duration: '60s',
      abortOnViolation: false,
    });
    const sections = await dryRun(run('sections', runSpec('traffic: {qps: {}, clients: {}, compaction: {}}, watch: {}, checks: {}, faults: {choices: [{fault: kill}]}')));
    assert.deepEqual(sections.spec.traffic, {
      profile: 'etcd',
      valueSize: 32,
      requestTimeout: '500ms',
      // No qps default: the target depends on the mode (200 exclusive, 10 shared), burst and min on the target.
      qps: {},
      clients: { perMember: 2, spread: 2 },
      // No compaction.enabled default: it depends on the profile and the mode.
      compaction: { interval: '10s', allowShared: false },
    });
    assert.deepEqual(sections.spec.watch, { enabled: true, progressNotify: true, progressInterval: '1s', perMember: true });
    assert.deepEqual(sections.spec.checks, { linearizability: true, watch: true, hashKV: true });
    // No target default: it depends on the fault.
    assert.deepEqual(sections.spec.faults, {
      enabled: true,
      allowShared: false,
      maxConcurrentFaults: 1,
      recoveryTimeout: '30s',
      tolerateFailures: false,
      choices: [{ fault: 'kill', weight: 1 }],
    });
  });

  test('status subresource: status goes through /status only, and spec changes there are ignored', async () => {
    await kubectl(['create', '-f', '-'], cluster('status', '{}'));
    const status = { phase: 'Running', readyMembers: 3, leader: 'status-0', observedGeneration: 1, conditions: [{ type: 'Available', status: 'True', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'MembersHealthy', message: '3 of 3 members healthy' }] };
    await kubectl(['patch', 'etcdcluster', 'status', '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status, spec: { replicas: 5 } })]);
    // Through the main resource, status is ignored.
    await kubectl(['patch', 'etcdcluster', 'status', '-n', namespace, '--type=merge', '-p', JSON.stringify({ status: { phase: 'Failed' } })]);
    const stored = JSON.parse(await kubectl(['get', 'etcdcluster', 'status', '-n', namespace, '-o', 'json'])) as { spec: { replicas: number }; status: typeof status; metadata: { generation: number } };
    assert.equal(stored.spec.replicas, 3);
    assert.deepEqual(stored.status, status);
    assert.equal(stored.metadata.generation, 1);
    // The status schema is enforced too.
    const bad = await apiserver.kubectl(['patch', 'etcdcluster', 'status', '-n', namespace, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Exploded"}}']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /status.phase: Unsupported value: "Exploded"/);
    // Printer columns read the fields they name.
    const table = await kubectl(['get', 'etcdc', 'status', '-n', namespace]);
    assert.match(table, /^NAME\s+VERSION\s+REPLICAS\s+READY\s+PHASE\s+LEADER\s+AGE\n/);
    assert.match(table, /\nstatus\s+3\.6\.16\s+3\s+3\s+Running\s+status-0\s+/);
    // Scale subresource: kubectl scale goes through the enum too.
    await kubectl(['scale', 'etcdcluster', 'status', '-n', namespace, '--replicas=5']);
    const scaled = await apiserver.kubectl(['scale', 'etcdcluster', 'status', '-n', namespace, '--replicas=4']);
    assert.notEqual(scaled.code, 0);
  });

  test('RobustnessRun status and printer columns', async () => {
    await kubectl(['create', '-f', '-'], run('columns', runSpec('')));
    const status = {
      phase: 'Passed',
      runNumber: 1,
      verdict: 'linearizable',
      operations: { ok: 1200, failed: 3, unknown: 1 },
      faults: { injected: 4, failed: 0, active: 0 },
      violations: [],
      lastRun: { number: 1, phase: 'Passed', verdict: 'linearizable', startTime: '2026-01-01T00:00:00Z', endTime: '2026-01-01T00:01:00Z', report: { kind: 'configMap', name: 'columns-report-1', size: 2048 } },
    };
    await kubectl(['patch', 'robustnessrun', 'columns', '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    const table = await kubectl(['get', 'rrun', 'columns', '-n', namespace]);
    assert.match(table, /^NAME\s+CLUSTER\s+SCHEDULE\s+PHASE\s+VERDICT\s+OPS\s+FAULTS\s+AGE\n/);
    assert.match(table, /\ncolumns\s+demo\s+once\s+Passed\s+linearizable\s+1200\s+4\s+/);
    const tooMany = { violations: Array.from({ length: 11 }, (_, i) => ({ check: 'linearizability', summary: `#${i}` })) };
    const bad = await apiserver.kubectl(['patch', 'robustnessrun', 'columns', '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: tooMany })]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /status.violations: Too many: 11: must have at most 10 items/);
  });
});
