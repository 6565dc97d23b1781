// The Grafana dashboard's queries on real data: the operator (local runtime, against a real
// kube-apiserver) runs the sample EtcdCluster and a RobustnessRun with faults, a real Prometheus (Debian's
// package) scrapes it every second, and every panel, variable and annotation query of
// config/grafana/etcd-robustness.json — with $cluster and $run set to the cluster and the run the way
// Grafana substitutes them — returns data over the run's time range. Only the queries of things this run
// cannot produce (an upgrade, its gates, a fault that could not be applied) may come back empty, and
// those are listed below with the reason.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Operator } from '../../src/controller/operator.ts';
import type { RobustnessRunResource } from '../../src/domain/index.ts';
import { packageRoot } from '../../src/local/index.ts';
import type { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, kubectlJson, kubectlOk, LocalOperatorEnvironment } from '../helpers/operator.ts';
import { TestPrometheus } from '../helpers/prometheus.ts';

const namespace = 'grafana-e2e';
const cluster = `${namespace}/demo`;
const run = `${namespace}/dash`;
const dashboardPath = path.join(packageRoot, 'config', 'grafana', 'etcd-robustness.json');

const runManifest = `
apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata: { name: dash }
spec:
  clusterRef: { name: demo }
  mode: exclusive
  duration: 30s
  traffic: { qps: { target: 100 } }
  faults:
    maxConcurrentFaults: 1
    interval: { min: 2s, max: 3s }
    duration: { min: 1s, max: 2s }
    choices:
      - fault: kill
        target: follower
      - fault: pause
        target: leader
`;

/**
 * Queries (by panel title, or annotation name) that this run cannot fill, with the reason. A query
 * not listed here must return data.
 */
const mayBeEmpty: Record<string, string> = {
  'Gate passing/A': 'the cluster has no spec.upgradeGate',
  'Upgrade blocked': 'no upgrade is blocked (the annotation shows only blocked upgrades)',
  'Fault injections by fault and target/B': 'no fault fails to apply or heal (the counter appears with the first failure)',
  'Watch events and resumes/B': 'a watch may never need reopening (the counter appears with the first resume)',
};

interface Dashboard {
  panels: { title: string; type: string; targets?: { refId: string; expr: string }[]; panels?: Dashboard['panels'] }[];
  templating: { list: { name: string; type: string; query: string; regex?: string }[] };
  annotations: { list: { name: string; expr?: string; step?: string }[] };
}

let env: LocalOperatorEnvironment | undefined;
let apiserver: TestApiserver | undefined;
let operator: Operator | undefined;
let prometheus: TestPrometheus | undefined;

before(async () => {
  env = await LocalOperatorEnvironment.start(namespace, 'grafana-e2e');
  ({ apiserver, operator } = env);
  const metrics = new URL(operator.metricsUrl);
  prometheus = await TestPrometheus.start({ target: metrics.host, metricsPath: metrics.pathname });
});

after(async () => {
  await prometheus?.close();
  await env?.close();
});

/**
 * Grafana's substitution with one cluster and one run picked (its regex escaping leaves these alone);
 * `$__interval` is the query's step.
 */
function substitute(expr: string, rangeSeconds: number, step = '1s'): string {
  return expr
    .replaceAll('$__rate_interval', '4s')
    .replaceAll('$__interval', step)
    .replaceAll('$__range', `${rangeSeconds}s`)
    .replaceAll('$cluster', cluster)
    .replaceAll('$run', run);
}

interface MatrixSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

async function queryRange(expr: string, start: number, end: number, step = '1s'): Promise<MatrixSeries[]> {
  const params = new URLSearchParams({ query: expr, start: String(start), end: String(end), step });
  const response = await fetch(`${prometheus!.url}/api/v1/query_range?${params.toString()}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { status: string; data: { result: MatrixSeries[] }; error?: string };
  assert.equal(body.status, 'success', `${expr}: ${body.error}`);
  return body.data.result;
}

const hasNumbers = (series: MatrixSeries[]): boolean => series.some((s) => s.values.some(([, v]) => !Number.isNaN(Number(v))));

test('every dashboard query returns data for a run with faults, with $cluster and $run picked', { timeout: 360_000 }, async () => {
  assert.ok(apiserver && prometheus);
  const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as Dashboard;
  await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', 'config/samples/etcdcluster.yaml']);
  await eventually('EtcdCluster demo Running', 120_000, async () => {
    const c = await kubectlJson<{ status?: { phase?: string; readyMembers?: number } }>(apiserver!, ['-n', namespace, 'get', 'etcdcluster', 'demo']);
    return c?.status?.phase === 'Running' && c.status.readyMembers === 3 ? true : undefined;
  });
  const start = Date.now() / 1000 - 5;
  await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], runManifest);
  const done = await eventually(
    'RobustnessRun dash finished',
    240_000,
    async () => {
      const r = await kubectlJson<RobustnessRunResource>(apiserver!, ['-n', namespace, 'get', 'robustnessrun', 'dash']);
      const phase = r?.status?.phase;
      return phase !== undefined && phase !== 'Pending' && phase !== 'Running' ? r : undefined;
    },
    async () => JSON.stringify((await kubectlJson<RobustnessRunResource>(apiserver!, ['-n', namespace, 'get', 'robustnessrun', 'dash']))?.status ?? null),
    1000,
  );
  assert.ok((done.status?.faults?.injected ?? 0) >= 1, `the run injected faults: ${JSON.stringify(done.status)}`);
  // A few scrapes after the end.
  await sleep(4000);
  const end = Date.now() / 1000;
  const rangeSeconds = Math.ceil(end - start);

  const empty: string[] = [];
  const filled: string[] = [];
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      const where = `${panel.title}/${target.refId}`;
      const result = await queryRange(substitute(target.expr, rangeSeconds), start, end);
      if (hasNumbers(result)) filled.push(where);
      else if (!(panel.title in mayBeEmpty) && !(where in mayBeEmpty)) empty.push(`panel "${panel.title}" target ${target.refId}: ${target.expr}`);
    }
  }
  for (const annotation of dashboard.annotations.list) {
    if (annotation.expr === undefined) continue;
    const step = annotation.step ?? '1s';
    const result = await queryRange(substitute(annotation.expr, rangeSeconds, step), start, end, step);
    if (hasNumbers(result)) filled.push(annotation.name);
    else if (!(annotation.name in mayBeEmpty)) empty.push(`annotation "${annotation.name}": ${annotation.expr}`);
  }
  assert.deepEqual(empty, [], `queries without data (filled: ${filled.join(', ')})`);

  // The variables offer the cluster and the run.
  const variable = (name: string) => dashboard.templating.list.find((v) => v.name === name)!;
  const clusterQuery = /^query_result\((.*)\)$/s.exec(variable('cluster').query)?.[1];
  assert.ok(clusterQuery, variable('cluster').query);
  const clusterRegex = new RegExp(/^\/(.*)\/$/.exec(variable('cluster').regex ?? '')![1]!);
  const clusterSeries = await prometheus.query(clusterQuery);
  // Grafana matches the regex against each series as text: {cluster="..."} value timestamp.
  const offered = clusterSeries.map((s) => clusterRegex.exec(`{${Object.entries(s.metric).map(([k, v]) => `${k}="${v}"`).join(', ')}} ${s.value[1]} ${s.value[0]}`)?.[1]);
  assert.ok(offered.includes(cluster), `cluster variable offers ${JSON.stringify(offered)}`);
  const runQuery = /^label_values\((.*),\s*run\)$/s.exec(variable('run').query)?.[1];
  assert.ok(runQuery, variable('run').query);
  const runSeries = await prometheus.query(substitute(runQuery, rangeSeconds));
  assert.ok(runSeries.some((s) => s.metric['run'] === run), `run variable offers ${JSON.stringify(runSeries.map((s) => s.metric['run']))}`);
});
