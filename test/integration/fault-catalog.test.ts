// Every catalog fault against a real 3-member cluster under traffic, through the run engine exactly as
// run --local drives it: the fault is injected, its effect verified, it is healed, the cluster recovers
// (all members' HashKV agree) and the recorded history stays linearizable. And the same seed gives the
// same fault log.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FaultChoice, FaultEvent, FaultName, TargetRule } from '../../src/domain/index.ts';
import { faultNames } from '../../src/domain/index.ts';
import { faultDefinition, validateFaultParams } from '../../src/faults/catalog.ts';
import { LocalMemberRuntime } from '../../src/local/index.ts';
import { executeRun, type RunResult } from '../../src/run/engine.ts';
import { defaultRobustnessRun } from '../../src/run/manifest.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';

describe('fault catalog on a real cluster', { timeout: 600_000 }, () => {
  let runtime: LocalMemberRuntime;
  let workDir: string;
  let runs = 0;

  before(async () => {
    runtime = new LocalMemberRuntime({ size: 3, failpoints: true, agents: {} });
    await runtime.create();
    workDir = mkdtempSync(path.join(os.tmpdir(), 'fault-catalog-'));
  });

  after(async () => {
    await runtime?.close();
    if (workDir && process.env['KEEP_FAULT_HISTORIES'] === undefined) rmSync(workDir, { recursive: true, force: true });
  });

  async function runWith(fault: FaultName, options: { target?: TargetRule; seed?: number; durationMs?: number; intervalMs?: number; params?: Record<string, number | string> } = {}): Promise<RunResult> {
    const name = `fault-${fault.toLowerCase()}-${++runs}`;
    const run = defaultRobustnessRun({ name, defaultMode: 'exclusive' });
    run.spec.seed = options.seed ?? 42;
    run.spec.durationMs = options.durationMs ?? 5000;
    run.spec.traffic.qps = { target: 150, burst: 150, min: 0 };
    run.spec.watch.progressIntervalMs = 250;
    const validated = validateFaultParams(fault, options.params ?? {});
    assert.ok('params' in validated, JSON.stringify(validated));
    run.spec.faults = {
      choices: [{ fault, weight: 1, target: options.target ?? faultDefinition(fault).defaultTarget, params: validated.params }],
      maxConcurrentFaults: 1,
      intervalMs: { min: options.intervalMs ?? 300, max: options.intervalMs ?? 300 },
      durationMs: { min: 1200, max: 1200 },
      recoveryTimeoutMs: 30_000,
    };
    return executeOnCatalog(run);
  }

  /** Executes a run against the catalog cluster, its history under the run's name in workDir. */
  function executeOnCatalog(run: ReturnType<typeof defaultRobustnessRun>): Promise<RunResult> {
    const name = run.metadata.name;
    return executeRun({
      run,
      clusterName: 'catalog',
      members: runtime.members(),
      runtime,
      agentToken: runtime.agentToken!,
      historyDir: path.join(workDir, name, 'history'),
      metrics: new RunMetrics(new Registry(), { run: name, cluster: 'catalog' }),
    });
  }

  const phases = (events: FaultEvent[]): string[] => events.map((e) => e.phase);

  function assertFaultCycle(result: RunResult, fault: FaultName): void {
    const events = result.faults.events;
    const failed = events.filter((e) => e.phase === 'failed');
    assert.deepEqual(failed, [], `${fault}: ${failed.map((e) => e.detail).join('; ')}`);
    assert.ok(result.faults.injected >= 1, `${fault} was not injected: ${JSON.stringify(result.faults)}`);
    const first = events.filter((e) => e.id === events[0]!.id);
    assert.deepEqual(phases(first), ['inject', 'verified', 'heal'], `${fault}: ${JSON.stringify(first)}`);
    assert.ok(first.every((e) => e.fault === fault));
    assert.ok(result.hashKv?.equal, `${fault}: members disagree after the heal: ${result.hashKv?.detail}`);
    assert.equal(result.verdict, 'linearizable', `${fault}: ${result.reason}`);
    // The fault lines are in the recorded history too, for the report's timeline.
    assert.deepEqual(result.history?.faults, events);
  }

  // Every catalog entry (a new fault is tested as soon as it is added), except the snapshot-apply panic,
  // tested on a fresh cluster below.
  const catalog = faultNames.filter((name) => name !== 'raftBeforeApplySnapPanic');


  for (const fault of catalog) {
    test(`${fault}: injected under traffic, verified, healed; the cluster converges and stays linearizable`, async () => {
      // A 64 MiB ballast keeps the test within a small CI disk (the default is 1 GiB).
      const options = fault === 'rollingRestart' ? { durationMs: 9000 } : fault === 'diskPressure' ? { params: { bytes: 64 * 1024 ** 2 } } : {};
      const result = await runWith(fault, options);
      assertFaultCycle(result, fault);
      const verified = result.faults.events.find((e) => e.phase === 'verified')!;
      if (fault === 'kill' || fault.endsWith('Panic')) assert.match(verified.detail ?? '', /exited/);
      if (fault === 'pause') assert.match(verified.detail ?? '', /stopped answering/);
      if (fault === 'blackhole' || fault === 'partition') assert.match(verified.detail ?? '', /leader m\d outside the isolated/);
      if (fault === 'leaderTransfer') assert.match(verified.detail ?? '', /leadership moved|already leads/);
      if (fault === 'memberReplace') assert.match(verified.detail ?? '', /removed .* wiped, re-added as learner .* and promoted/);
    });
  }

  // On a cluster that has been through a memberReplace, the leader did not send the cut-off member a
  // snapshot in 3 tries (not understood yet: see docs/faults.md). Tested on a fresh cluster, one round.
  test('raftBeforeApplySnapPanic (fresh cluster): the member is sent a snapshot and panics applying it', async () => {
    const fresh = new LocalMemberRuntime({ size: 3, failpoints: true, agents: {} });
    await fresh.create();
    const previous = runtime;
    runtime = fresh;
    try {
      assertFaultCycle(await runWith('raftBeforeApplySnapPanic', { intervalMs: 3000, durationMs: 8000 }), 'raftBeforeApplySnapPanic');
    } finally {
      runtime = previous;
      await fresh.close();
    }
  });

  // Faults of a round start together: default 1,000 ops/s runs drew a kill, or a pause, and a failpoint
  // on the same member; the failpoint (or the kill) failed to apply and the run ended Inconclusive.
  for (const other of ['kill', 'pause'] as const) {
    test(`a ${other} and a failpoint on one member in one round: each waits for the member the other took down`, async () => {
      const name = `fault-stacked-${++runs}`;
      const run = defaultRobustnessRun({ name, defaultMode: 'exclusive' });
      run.spec.seed = 7;
      run.spec.durationMs = 9000;
      run.spec.traffic.qps = { target: 150, burst: 150, min: 0 };
      const onM1 = (fault: FaultName): FaultChoice => ({ fault, weight: 1, target: 'member', member: 'm1', params: {} });
      run.spec.faults = {
        choices: [onM1(other), onM1('raftBeforeSavePanic')],
        maxConcurrentFaults: 2,
        intervalMs: { min: 300, max: 300 },
        durationMs: { min: 1200, max: 1200 },
        recoveryTimeoutMs: 30_000,
      };
      const result = await executeOnCatalog(run);
      const events = result.faults.events;
      const injects = events.filter((e) => e.phase === 'inject');
      const together = injects.some((a) => a.fault === other && injects.some((b) => b.fault === 'raftBeforeSavePanic' && Math.abs(b.time - a.time) < 100e6));
      assert.ok(together, `no round injected both at once: ${injects.map((e) => e.fault).join(', ')}`);
      assert.deepEqual(events.filter((e) => e.phase === 'failed').map((e) => e.detail), []);
      assert.ok(events.some((e) => e.phase === 'verified' && e.fault === 'raftBeforeSavePanic' && /panicked/.test(e.detail ?? '')));
      assert.equal(result.verdict, 'linearizable', result.reason);
    });
  }

  test('the same seed and spec give the same fault log', async () => {
    const faultLog = (r: RunResult): string[] =>
      r.faults.events.filter((e) => e.phase === 'inject').map((e) => `${e.fault}@${e.targets.join('+')}:${JSON.stringify(e.params ?? {})}`);
    const spec = { durationMs: 7000, seed: 1234, target: 'random' as const };
    const a = await runWith('delay', spec);
    const b = await runWith('delay', spec);
    assert.ok(faultLog(a).length >= 2, `too few injections to compare: ${faultLog(a).join(', ')}`);
    assert.deepEqual(faultLog(a), faultLog(b));
    const c = await runWith('delay', { ...spec, seed: 99 });
    assert.notDeepEqual(faultLog(c).map((l) => l.split(':')[0]), [], 'another seed still injects');
  });
});
