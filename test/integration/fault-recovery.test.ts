// Time from a fault to writable again, through the run engine on a real 3-member cluster with agents:
// a crash of a majority keeps the cluster unwritable for the fault's duration, a crash of a follower
// does not. The figure is in the result, reported live (callback and histogram), in verdict.json and
// in report.html.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TargetRule } from '../../src/domain/index.ts';
import { LocalMemberRuntime } from '../../src/local/index.ts';
import { executeRun, type RunResult } from '../../src/run/engine.ts';
import { defaultRobustnessRun } from '../../src/run/manifest.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';
import type { FaultRecovery } from '../../src/run/recovery.ts';
import { writeRunReport, type RunSummary } from '../../src/run/report.ts';

describe('fault to writable through the run engine', { timeout: 180_000 }, () => {
  let runtime: LocalMemberRuntime;
  let workDir: string;

  before(async () => {
    runtime = new LocalMemberRuntime({ size: 3, failpoints: false, agents: {} });
    await runtime.create();
    workDir = mkdtempSync(path.join(os.tmpdir(), 'fault-recovery-'));
  });

  after(async () => {
    await runtime?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** One round: a crash of `target` for 2 s, 2 s into a 7 s run. */
  async function crashRun(name: string, target: TargetRule): Promise<{ result: RunResult; live: FaultRecovery[]; metrics: string; summary: RunSummary; html: string }> {
    const run = defaultRobustnessRun({ name, defaultMode: 'exclusive' });
    run.spec.seed = 7;
    run.spec.durationMs = 7000;
    run.spec.traffic.qps = { target: 200, burst: 200, min: 0 };
    run.spec.watch.progressIntervalMs = 250;
    run.spec.faults = {
      choices: [{ fault: 'crash', weight: 1, target, params: {} }],
      maxConcurrentFaults: 1,
      intervalMs: { min: 1000, max: 1000 },
      durationMs: { min: 2000, max: 2000 },
      recoveryTimeoutMs: 30_000,
    };
    const registry = new Registry();
    const live: FaultRecovery[] = [];
    const dir = path.join(workDir, name);
    const result = await executeRun({
      run,
      clusterName: 'recovery',
      members: runtime.members(),
      runtime,
      agentToken: runtime.agentToken!,
      historyDir: path.join(dir, 'history'),
      metrics: new RunMetrics(registry, { run: name, cluster: 'recovery' }),
      onFaultRecovery: (r) => live.push(r),
    });
    const summary = writeRunReport(dir, run, 'recovery', result, path.join(dir, 'history'));
    const written = JSON.parse(readFileSync(path.join(dir, 'verdict.json'), 'utf8')) as RunSummary;
    assert.deepEqual(written.faults.recovery, summary.faults.recovery);
    return { result, live, metrics: await registry.metrics(), summary, html: readFileSync(path.join(dir, 'report.html'), 'utf8') };
  }

  function assertOneMeasuredCrash(result: RunResult, live: FaultRecovery[], metrics: string, name: string): FaultRecovery {
    const failed = result.faults.events.filter((e) => e.phase === 'failed');
    assert.deepEqual(failed, [], failed.map((e) => e.detail).join('; '));
    assert.equal(result.faults.injected, 1);
    const recovery = result.faults.recovery;
    assert.ok(recovery);
    assert.equal(recovery.faults.length, 1);
    const [crash] = recovery.faults;
    assert.equal(crash!.fault, 'crash');
    assert.equal(crash!.id, result.faults.events[0]!.id);
    assert.ok(crash!.writableAfterMs !== undefined, 'a write succeeded after the fault');
    assert.deepEqual(recovery.summary, { faults: 1, recovered: 1, medianMs: crash!.writableAfterMs, maxMs: crash!.writableAfterMs });
    // The fault was in place between its inject and verified lines, on the history's clock.
    const phase = (p: string): number => result.faults.events.find((e) => e.phase === p)!.time;
    assert.ok(crash!.injectedAt >= phase('inject') && crash!.injectedAt <= phase('verified'));
    assert.ok(crash!.atMs > 1000 && crash!.atMs < 7000, `at ${crash!.atMs} ms`);
    // Reported live, once, with the final figure; and observed in the histogram.
    assert.deepEqual(live, [crash]);
    assert.match(metrics, new RegExp(`etcd_robustness_fault_to_writable_seconds_count\\{run="${name}",cluster="recovery",fault="crash"\\} 1`));
    assert.equal(result.verdict, 'linearizable', result.reason);
    return crash!;
  }

  test('a majority crashed for 2 s: writable again only after the heal', async (t) => {
    const { result, live, metrics, summary, html } = await crashRun('crash-majority', 'majority');
    const crash = assertOneMeasuredCrash(result, live, metrics, 'crash-majority');
    t.diagnostic(`crash of ${crash.targets.join('+')} at ${crash.atMs.toFixed(0)} ms: writable after ${crash.writableAfterMs?.toFixed(1)} ms`);
    assert.equal(crash.targets.length, 2);
    assert.ok(crash.writableAfterMs! >= 2000, `writable ${crash.writableAfterMs} ms after a 2 s crash of a majority`);
    assert.ok(crash.writableAfterMs! < 20_000, `writable only ${crash.writableAfterMs} ms after`);
    assert.equal(summary.faults.recovery?.faults[0]?.writableAfterMs, crash.writableAfterMs);
    assert.match(html, /id="fault-recovery"/);
  });

  test('a follower crashed for 2 s: the others stay writable', async (t) => {
    const { result, live, metrics } = await crashRun('crash-follower', 'follower');
    const crash = assertOneMeasuredCrash(result, live, metrics, 'crash-follower');
    t.diagnostic(`crash of ${crash.targets.join('+')} at ${crash.atMs.toFixed(0)} ms: writable after ${crash.writableAfterMs?.toFixed(1)} ms`);
    assert.equal(crash.targets.length, 1);
    assert.ok(crash.writableAfterMs! < 1000, `writable ${crash.writableAfterMs} ms after a follower crash`);
  });
});
