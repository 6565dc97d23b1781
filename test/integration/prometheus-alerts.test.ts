// The alerts of config/prometheus/ on a real Prometheus (Debian's package) scraping the real operator:
// the operator (local runtime, against a real kube-apiserver) runs a RobustnessRun whose self-test makes
// reads stale, and Prometheus, evaluating the rule file every second, fires
// EtcdRobustnessLinearizabilityViolation with the run's labels while the alerts that must not fire
// (a fault past its TTL) stay silent on series that are there.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Operator } from '../../src/controller/operator.ts';
import { packageRoot } from '../../src/local/index.ts';
import type { RobustnessRunResource } from '../../src/domain/index.ts';
import type { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, kubectlJson, kubectlOk, LocalOperatorEnvironment } from '../helpers/operator.ts';
import { TestPrometheus, type PrometheusAlert } from '../helpers/prometheus.ts';

const namespace = 'prom-e2e';
const rulesFile = path.join(packageRoot, 'config', 'prometheus', 'etcd-robustness.rules.yaml');

// Three members (the self-test needs a follower with gofail failpoints), no fault agents.
const clusterManifest = `
apiVersion: etcd.robustness.io/v1alpha1
kind: EtcdCluster
metadata: { name: demo }
spec:
  version: "3.6.16"
  replicas: 3
  image: { failpoints: true }
  agent: { enabled: false }
`;

// Stops at the first violation the live checker finds.
const runManifest = `
apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata: { name: stale }
spec:
  clusterRef: { name: demo }
  mode: exclusive
  duration: 60s
  abortOnViolation: true
  selfTest: { staleReads: {} }
`;

let env: LocalOperatorEnvironment | undefined;
let apiserver: TestApiserver | undefined;
let operator: Operator | undefined;
let prometheus: TestPrometheus | undefined;

before(async () => {
  env = await LocalOperatorEnvironment.start(namespace, 'prometheus-e2e');
  ({ apiserver, operator } = env);
  const metrics = new URL(operator.metricsUrl);
  prometheus = await TestPrometheus.start({ target: metrics.host, metricsPath: metrics.pathname, ruleFiles: [rulesFile] });
});

after(async () => {
  await prometheus?.close();
  await env?.close();
});

const describeState = async (): Promise<string> => {
  const run = apiserver ? await kubectlJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'stale']) : undefined;
  const alerts = (await prometheus?.alerts().catch((error: unknown) => String(error))) ?? [];
  return `run status ${JSON.stringify(run?.status ?? null)}; alerts ${JSON.stringify(alerts)}`;
};

test('a forced linearizability violation fires EtcdRobustnessLinearizabilityViolation on a real Prometheus', { timeout: 300_000 }, async () => {
  assert.ok(apiserver && prometheus);
  await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], clusterManifest);
  await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], runManifest);

  const firing = await eventually(
    'EtcdRobustnessLinearizabilityViolation firing',
    240_000,
    async () => {
      const alerts = await prometheus!.alerts();
      return alerts.find((a) => a.labels['alertname'] === 'EtcdRobustnessLinearizabilityViolation' && a.state === 'firing');
    },
    describeState,
    1000,
  );
  assert.equal(firing.labels['severity'], 'critical');
  assert.equal(firing.labels['run'], `${namespace}/stale`);
  assert.equal(firing.labels['cluster'], `${namespace}/demo`);
  assert.match(firing.labels['check'] ?? '', /^(linearizability|stale_read)$/);
  assert.equal(firing.labels['job'], 'etcd-robustness-operator');
  assert.match(firing.annotations['description'] ?? '', new RegExp(`RobustnessRun ${namespace}/stale against EtcdCluster ${namespace}/demo found a`));
  assert.match(firing.annotations['runbook_url'] ?? '', /docs\/runbooks\.md#etcdrobustnesslinearizabilityviolation$/);

  // The series the silent alerts read are there, so their silence means something.
  const pastTtl = await prometheus.query(`etcd_robustness_faults_past_ttl{run="${namespace}/stale"}`);
  assert.deepEqual(
    pastTtl.map((s) => s.value[1]),
    ['0'],
    'etcd_robustness_faults_past_ttl of the run is scraped at 0',
  );
  const watchViolations = await prometheus.query(`sum(etcd_robustness_violations_total{run="${namespace}/stale",check=~"watch_.+"})`);
  assert.equal(watchViolations[0]?.value[1], '0', 'the self-test breaks no watch guarantee');
  const quorum = await eventually(
    'etcd_robustness_cluster_quorum of the cluster at 1',
    60_000,
    async () => {
      const found = await prometheus!.query(`etcd_robustness_cluster_quorum{cluster="${namespace}/demo"} == 1`);
      return found.length === 1 ? found : undefined;
    },
    describeState,
  );
  assert.equal(quorum[0]?.metric['job'], 'etcd-robustness-operator');
  // The recording rules are evaluated too.
  const objective = await prometheus.query('etcd_robustness:availability_objective:ratio');
  assert.deepEqual(objective.map((s) => s.value[1]), ['0.99']);
  const active = await prometheus.alerts();
  const unexpected = (name: string): PrometheusAlert[] => active.filter((a) => a.labels['alertname'] === name);
  for (const name of ['EtcdRobustnessFaultPastTTL', 'EtcdRobustnessWatchGuaranteeViolated', 'EtcdClusterNoQuorum', 'EtcdClusterNoLeader']) {
    assert.deepEqual(unexpected(name), [], `${name} is not active`);
  }

  // The run itself ended on the violation.
  const done = await eventually(
    'RobustnessRun stale finished',
    120_000,
    async () => {
      const run = await kubectlJson<RobustnessRunResource>(apiserver!, ['-n', namespace, 'get', 'robustnessrun', 'stale']);
      const phase = run?.status?.phase;
      return phase !== undefined && phase !== 'Pending' && phase !== 'Running' ? run : undefined;
    },
    describeState,
  );
  assert.equal(done.status?.verdict, 'violation', JSON.stringify(done.status));
});
