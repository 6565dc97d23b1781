// A violation the live checker finds in its worker thread (src/run/checker-worker.ts) reaches the run
// while it goes: onViolation is called, abortOnViolation stops the run early, and the final verdict (the
// offline check, in a worker too) agrees. The violation is the self-test's: reads sent to a lagging
// member as serializable while they are recorded as linearizable.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LocalEtcdCluster } from '../../src/local/index.ts';
import { executeRun } from '../../src/run/engine.ts';
import { defaultRobustnessRun } from '../../src/run/manifest.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';

describe('a live violation found in the checker thread', { timeout: 180_000 }, () => {
  let cluster: LocalEtcdCluster;
  let workDir: string;

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3, failpoints: true });
    workDir = mkdtempSync(path.join(os.tmpdir(), 'run-engine-violation-'));
  });

  after(async () => {
    await cluster?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('reaches onViolation while the run goes, abortOnViolation stops it, and the final verdict is the violation', async () => {
    const run = defaultRobustnessRun({ name: 'live-violation', defaultMode: 'exclusive' });
    run.spec.durationMs = 60_000;
    run.spec.abortOnViolation = true;
    run.spec.selfTest = { staleReads: {} };
    const violations: { check: string; reason: string }[] = [];
    const result = await executeRun({
      run,
      clusterName: 'test',
      members: cluster.members.map((m) => ({ name: m.name, endpoint: m.endpoint, running: m.running, ...(m.failpointUrl === undefined ? {} : { failpointUrl: m.failpointUrl }) })),
      historyDir: path.join(workDir, 'history'),
      metrics: new RunMetrics(new Registry(), { run: 'live-violation', cluster: 'test' }),
      onViolation: (check, reason) => violations.push({ check, reason }),
    });
    assert.ok(violations.length > 0, 'onViolation was called');
    assert.equal(violations[0]!.check, 'linearizability');
    assert.match(violations[0]!.reason, /cannot be linearized|fits no order/);
    assert.equal(result.stoppedEarly, 'violation found (abortOnViolation)');
    assert.ok(result.durationMs < 60_000, `the run stopped early, after ${result.durationMs} ms`);
    assert.equal(result.live.verdict, 'violation');
    assert.equal(result.live.reason, violations[0]!.reason);
    assert.equal(result.verdict, 'violation');
    assert.ok(result.report, 'the offline check ran');
    assert.equal(result.report.linearizability.verdict, 'violation');
  });
});
