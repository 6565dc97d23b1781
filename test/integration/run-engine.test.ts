// The run engine against a real 3-member etcd cluster: each traffic profile, with a member paused,
// killed and restarted mid-run, must record failures and unknown outcomes, keep going, and still be
// linearizable with every watch guarantee holding.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { ProfileName, RuntimeMember } from '../../src/domain/index.ts';
import { LocalEtcdCluster } from '../../src/local/index.ts';
import { readHistoryDirectory } from '../../src/probes/history-segment-reader.ts';
import { recordingEtcdClient } from '../../src/probes/recording-client.ts';
import { executeRun, type RunResult } from '../../src/run/engine.ts';
import { defaultRobustnessRun } from '../../src/run/manifest.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';

describe('run engine on a real cluster', { timeout: 240_000 }, () => {
  let cluster: LocalEtcdCluster;
  let workDir: string;

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3 });
    workDir = mkdtempSync(path.join(os.tmpdir(), 'run-engine-'));
  });

  after(async () => {
    await cluster?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const runtimeMembers = (): RuntimeMember[] => cluster.members.map((m) => ({ name: m.name, endpoint: m.endpoint, running: m.running }));

  /** Pauses m2 (its in-flight requests time out: unknown outcomes), kills it while paused, restarts it. */
  async function disturb(startDelayMs: number): Promise<void> {
    await sleep(startDelayMs);
    const victim = cluster.member('m2');
    victim.pause();
    await sleep(1500);
    await victim.kill();
    await sleep(500);
    await victim.restart();
  }

  async function runProfile(name: string, profile: ProfileName, weights: Record<string, number>, durationMs: number): Promise<{ result: RunResult; registry: Registry }> {
    const run = defaultRobustnessRun({ name, defaultMode: 'exclusive' });
    run.spec.durationMs = durationMs;
    run.spec.traffic.profile = profile;
    run.spec.traffic.weights = weights;
    run.spec.traffic.keys = profile === 'etcd' ? 10 : 20;
    run.spec.traffic.compaction = { enabled: profile === 'kubernetes', intervalMs: 1500, allowShared: false };
    run.spec.traffic.defragment = { enabled: profile === 'etcd', intervalMs: 1500, allowShared: false };
    run.spec.watch.progressIntervalMs = 250;
    const registry = new Registry();
    const result = await executeRun({
      run,
      clusterName: 'test',
      members: runtimeMembers(),
      historyDir: path.join(workDir, name, 'history'),
      metrics: new RunMetrics(registry, { run: name, cluster: 'test' }),
      progressIntervalMs: 500,
    });
    return { result, registry };
  }

  for (const profile of ['etcd', 'kubernetes'] as const) {
    test(`${profile} profile: a member paused, killed and restarted mid-run; the run continues and passes`, async () => {
      const [{ result, registry }] = await Promise.all([runProfile(`profile-${profile}`, profile, {}, 7000), disturb(2000)]);
      const { operations, report } = result;
      assert.equal(result.verdict, 'linearizable', result.reason);
      assert.equal(result.live.verdict, 'linearizable', result.live.reason);
      assert.ok(report, 'the offline re-check ran');
      assert.ok(report.watch.checked > 0, 'watch streams were checked');
      assert.deepEqual(report.watch.violations, []);
      assert.ok(operations.failed + operations.unknown > 0, `the disturbed member must show up as failures: ${JSON.stringify(operations)}`);
      assert.ok(operations.ok > 500, `traffic kept going: ${operations.ok} ok`);
      assert.ok(result.watch.resumes > 0, 'the watch on the killed member resumed');
      assert.equal(result.watch.liveViolations, 0, 'the live watch checks agree with the offline ones');
      if (profile === 'kubernetes') assert.ok((operations.byType['compact']?.ok ?? 0) > 0, 'compactions ran');
      if (profile === 'etcd') assert.ok((operations.byType['defragment']?.ok ?? 0) > 0, 'defragmentation ran under load');
      // The files hold the same history the engine checked.
      const fromDisk = readHistoryDirectory(path.join(workDir, `profile-${profile}`, 'history'));
      assert.equal(fromDisk.operations.length, operations.ok + operations.failed + operations.unknown);
      assert.equal(fromDisk.watches.length, result.watch.streams);
      const metrics = await registry.metrics();
      assert.match(metrics, /etcd_robustness_operations_total\{run="profile-\w+",cluster="test",type="\w+",outcome="ok"\} [1-9]/);
      assert.match(metrics, /etcd_robustness_verdict\{run="profile-\w+",cluster="test"\} 1/);
      assert.match(metrics, /etcd_robustness_runs_total\{run="profile-\w+",cluster="test",verdict="linearizable"\} 1/);
    });
  }

  test('shared mode beside a foreign client writing to the same cluster: only the run prefix is checked, and the run passes', async () => {
    const run = defaultRobustnessRun({ name: 'shared-run', defaultMode: 'shared' });
    run.spec.durationMs = 4000;
    run.spec.traffic.qps = { target: 200, burst: 200, min: 0 };
    run.spec.watch.progressIntervalMs = 250;
    assert.equal(run.spec.mode, 'shared');
    const foreign = recordingEtcdClient(cluster.endpoints);
    let writing = true;
    let foreignWrites = 0;
    // Another application: its own keys, next to ours and sorting both before and after the run prefix.
    const writer = (async () => {
      while (writing) {
        const key = foreignWrites % 2 === 0 ? `/app/config/${foreignWrites % 7}` : `/etcd-robustness/zzz-other/${foreignWrites % 5}`;
        await foreign.put(key).value(`foreign-${foreignWrites++}`);
      }
    })();
    try {
      const result = await executeRun({
        run,
        clusterName: 'test',
        members: runtimeMembers(),
        historyDir: path.join(workDir, 'shared-run', 'history'),
        metrics: new RunMetrics(new Registry(), { run: 'shared-run', cluster: 'test' }),
      });
      assert.equal(result.verdict, 'linearizable', result.reason);
      assert.equal(result.mode, 'shared');
      assert.equal(result.history?.meta?.mode, 'shared');
      assert.equal(result.history?.meta?.initialRevision, undefined, 'a shared run cannot know the store');
      assert.ok(foreignWrites > 50, `the foreign client wrote ${foreignWrites} times during the run`);
      assert.ok(result.operations.ok > 200);
    } finally {
      writing = false;
      await writer;
      const left = await foreign.getAll().prefix('/etcd-robustness/shared-run/').keys();
      assert.deepEqual(left, [], 'the run deletes its own keys at the end');
      assert.ok((await foreign.getAll().prefix('/app/').keys()).length > 0, 'and leaves everyone else\'s alone');
      foreign.close();
    }
  });

  test('writes in flight on a paused member end with unknown outcomes, which the checker resolves or leaves open, and the run passes', async () => {
    const putsOnly = { get: 0, staleGet: 0, list: 0, keysOnlyList: 0, staleList: 0, delete: 0, multiOpTxn: 0, compareAndSet: 0, putWithLease: 0, leaseRevoke: 0, put: 1 };
    const [{ result }] = await Promise.all([runProfile('unknown-outcomes', 'etcd', putsOnly, 5000), disturb(1500)]);
    assert.equal(result.verdict, 'linearizable', result.reason);
    assert.ok(result.operations.unknown > 0, `puts pinned to the paused member time out with an unknown outcome: ${JSON.stringify(result.operations)}`);
    const open = result.history!.operations.filter((o) => o.return === null && o.request.type === 'put');
    assert.equal(open.length, result.operations.unknown, 'unknown operations stay open (no return) in the history');
  });
});
