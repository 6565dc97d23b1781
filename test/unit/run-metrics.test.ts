import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import type { MemberRuntime, PlannedFault } from '../../src/domain/index.ts';
import { FaultExecutor } from '../../src/faults/executor.ts';
import { checkNames, forgetRun, RunMetrics, verdicts } from '../../src/run/metrics.ts';

async function values(registry: Registry, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  assert.ok(metric, `${name} is registered`);
  return metric.values.map((v) => ({ labels: { ...v.labels } as Record<string, string | number>, value: v.value }));
}

describe('RunMetrics', () => {
  test('a new run has every violation check, every verdict and faults_past_ttl at 0', async () => {
    const registry = new Registry();
    new RunMetrics(registry, { run: 'ns/r', cluster: 'ns/c' });
    const violations = await values(registry, 'etcd_robustness_violations_total');
    assert.deepEqual(violations.map((v) => v.labels.check).sort(), [...checkNames].sort());
    assert.ok(violations.every((v) => v.value === 0 && v.labels.run === 'ns/r' && v.labels.cluster === 'ns/c'));
    assert.ok(checkNames.includes('watch_reliable') && checkNames.includes('hash_kv') && checkNames.length === 12);
    const runs = await values(registry, 'etcd_robustness_runs_total');
    assert.deepEqual(runs.map((v) => `${v.labels.verdict}=${v.value}`).sort(), ['inconclusive=0', 'linearizable=0', 'violation=0']);
    assert.deepEqual(verdicts.slice().sort(), ['inconclusive', 'linearizable', 'violation']);
    assert.deepEqual((await values(registry, 'etcd_robustness_faults_past_ttl')).map((v) => v.value), [0]);
  });

  test('forgetRun removes every series of one run, histograms and quantile gauges included, and keeps the others', async () => {
    const registry = new Registry();
    for (const run of ['ns/gone', 'ns/kept']) {
      const metrics = new RunMetrics(registry, { run, cluster: 'ns/c' });
      metrics.operation('put', 'ok', 0.002);
      metrics.operation('range', 'unknown', undefined);
      metrics.checker(5, 50, 3, 1);
      metrics.faultWritable('kill', 1.5);
      metrics.finished('linearizable');
    }
    await forgetRun(registry, 'ns/gone');
    const series = (await registry.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => ({ name: m.name, run: v.labels['run'] })));
    assert.deepEqual(series.filter((s) => s.run === 'ns/gone'), []);
    const kept = new Set(series.filter((s) => s.run === 'ns/kept').map((s) => s.name));
    for (const name of ['etcd_robustness_operations_total', 'etcd_robustness_operation_duration_seconds', 'etcd_robustness_checker_lag_seconds', 'etcd_robustness_fault_to_writable_seconds', 'etcd_robustness_runs_total']) {
      assert.ok(kept.has(name), `${name} of the other run is kept`);
    }
    assert.match(await registry.metrics(), /etcd_robustness_operation_duration_seconds_bucket\{le="0.0025",run="ns\/kept",cluster="ns\/c",type="put"\} 1/);
  });

  test('the first violation and verdict count from the pre-created 0', async () => {
    const registry = new Registry();
    const metrics = new RunMetrics(registry, { run: 'r', cluster: 'c' });
    metrics.violation('linearizability');
    metrics.finished('violation');
    metrics.faultsPastTtl(2);
    const text = await registry.metrics();
    assert.match(text, /etcd_robustness_violations_total\{run="r",cluster="c",check="linearizability"\} 1\n/);
    assert.match(text, /etcd_robustness_violations_total\{run="r",cluster="c",check="stale_read"\} 0\n/);
    assert.match(text, /etcd_robustness_runs_total\{run="r",cluster="c",verdict="violation"\} 1\n/);
    assert.match(text, /etcd_robustness_faults_past_ttl\{run="r",cluster="c"\} 2\n/);
  });
});

describe('FaultExecutor.faultsPastTtl', () => {
  test('a held fault counts once its duration plus slack has passed, and not after it is healed', async () => {
    // One member on a closed port: the cluster view finds no leader quickly, and `compact` needs no agent.
    const runtime = {
      clusterName: 'c',
      created: false,
      members: () => [{ name: 'm0', endpoint: 'http://127.0.0.1:9', running: true }],
    } as unknown as MemberRuntime;
    const executor = new FaultExecutor({
      runtime,
      agentToken: undefined,
      triggers: { write: () => Promise.resolve(), defragment: () => Promise.resolve(), compact: () => Promise.resolve() },
      clock: () => 0,
      onEvent: () => undefined,
      recoveryTimeoutMs: 1000,
      ttlSlackMs: 5000,
    });
    try {
      const planned: PlannedFault = { round: 0, atMs: 0, fault: 'compact', target: 'random', params: {}, durationMs: 2000, pick: 0 };
      const before = performance.now();
      const active = await executor.inject(planned);
      const after = performance.now();
      assert.ok(active, 'the compact fault is held');
      assert.equal(executor.faultsPastTtl(), 0);
      assert.equal(executor.faultsPastTtl(before + 6900), 0, 'within duration + slack');
      assert.equal(executor.faultsPastTtl(after + 7001), 1, 'past duration + slack');
      await executor.heal(active);
      assert.equal(executor.faultsPastTtl(after + 7001), 0, 'a healed fault is no longer held');
    } finally {
      executor.close();
    }
  });
});
