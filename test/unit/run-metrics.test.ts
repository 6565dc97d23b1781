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

  test('deferred operation, latency and watch-event updates are all there when the registry is read', async () => {
    const registry = new Registry();
    const metrics = new RunMetrics(registry, { run: 'ns/r', cluster: 'ns/c' });
    for (let i = 0; i < 5; i++) metrics.operation('put', 'ok', 0.002);
    metrics.operation('put', 'unknown', undefined);
    metrics.operation('range', 'failed', 0.3);
    metrics.watchEvents(3);
    metrics.watchEvents(0);
    const operations = await values(registry, 'etcd_robustness_operations_total');
    assert.deepEqual(operations.map((v) => `${v.labels.type} ${v.labels.outcome}=${v.value}`).sort(), ['put ok=5', 'put unknown=1', 'range failed=1']);
    assert.deepEqual((await values(registry, 'etcd_robustness_unknown_outcome_operations_total')).map((v) => v.value), [1]);
    assert.deepEqual((await values(registry, 'etcd_robustness_watch_events_total')).map((v) => v.value), [3]);
    const latency = await values(registry, 'etcd_robustness_operation_duration_seconds');
    const count = (type: string): number | undefined => latency.find((v) => v.labels.type === type && v.labels.le === undefined && v.value > 0 && Number.isInteger(v.value))?.value;
    assert.equal(count('put'), 5, 'the unknown put has no latency');
    assert.equal(count('range'), 1);
    // A second read adds nothing: the first one took the deferred updates.
    assert.deepEqual((await values(registry, 'etcd_robustness_watch_events_total')).map((v) => v.value), [3]);
    metrics.watchEvents(0);
    assert.deepEqual((await values(registry, 'etcd_robustness_watch_events_total')).map((v) => v.value), [3]);
  });

  test('a watch response without events makes the watch-events series, at 0', async () => {
    const registry = new Registry();
    new RunMetrics(registry, { run: 'ns/r', cluster: 'ns/c' }).watchEvents(0);
    assert.deepEqual((await values(registry, 'etcd_robustness_watch_events_total')).map((v) => v.value), [0]);
  });

  test('deferred updates reach prom-client without a reader once 4,096 are held', () => {
    const registry = new Registry();
    const metrics = new RunMetrics(registry, { run: 'ns/r', cluster: 'ns/c' });
    for (let i = 0; i < 4096; i++) metrics.operation('put', 'ok', 0.001);
    // Read the metric's own state, without collect(): what a flush already gave it.
    const hashMap = (metrics.metrics.operations as unknown as { hashMap: Record<string, { value: number }> }).hashMap;
    assert.deepEqual(Object.values(hashMap).map((v) => v.value), [4096]);
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
