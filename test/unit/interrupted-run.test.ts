// An interrupted run's recording (src/controller/robustnessrun/interrupted.ts): the replica that finds a
// run "Running" that nobody drives checks what was recorded, if it can reach it, and writes verdict.json
// beside the history; otherwise it says where the history was.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { recoverInterruptedRun } from '../../src/controller/robustnessrun/interrupted.ts';
import type { Operation, RobustnessRunStatus } from '../../src/domain/index.ts';
import { HistoryFileWriter } from '../../src/probes/history-writer.ts';
import type { RunAbort } from '../../src/run/outcome.ts';
import { get, kvs, op, put, rev } from '../helpers/histories.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'interrupted-run-'));
after(() => rmSync(root, { recursive: true, force: true }));

const abort: RunAbort = { reason: 'OperatorRestarted', message: 'the operator replica op-a running it stopped during the run' };
const options = { timeoutMs: 30_000, tolerateFailures: false, minQps: 0, checks: { linearizability: true, watch: true }, run: 'r' };
const kv = (value: string, modRevision: number): { key: string; value: string; createRevision: number; modRevision: number; version: number } => ({ key: '/k', value, createRevision: 2, modRevision, version: modRevision - 1 });

/** A recording folder holding `operations` (one segment), as the run engine leaves it when its process dies. */
function recording(name: string, operations: Operation[], fault?: 'failed'): { dir: string; status: RobustnessRunStatus } {
  const dir = path.join(root, name);
  const writer = HistoryFileWriter.open(path.join(dir, 'history'));
  writer.writeMeta({ kind: 'meta', seed: 7, cluster: 'demo', profile: 'etcd', startTime: '2026-01-01T00:00:00Z', prefix: '/', mode: 'exclusive', initialRevision: 1 });
  for (const o of operations) writer.writeOperation(o);
  if (fault) {
    writer.writeFault({ kind: 'fault', id: 1, phase: 'inject', fault: 'kill', targets: ['m1'], time: 5 });
    writer.writeFault({ kind: 'fault', id: 1, phase: 'failed', fault: 'kill', targets: ['m1'], time: 6, detail: 'no such member' });
  }
  writer.close();
  return { dir, status: { phase: 'Running', runNumber: 1, startTime: '2026-01-01T00:00:00Z', recording: { replica: 'op-a', path: dir } } };
}

const linearizable = [op(1, 1e9, 2e9, put('/k', 'a'), rev(2)), op(2, 3e9, 4e9, get('/k'), kvs([kv('a', 2)], 2))];
const stale = [op(1, 1e9, 2e9, put('/k', 'a'), rev(2)), op(1, 3e9, 4e9, put('/k', 'b'), rev(3)), op(2, 5e9, 6e9, get('/k'), kvs([kv('a', 2)], 3))];

describe('recoverInterruptedRun', () => {
  test('a reachable recording is checked: Aborted (OperatorRestarted), verdict.json beside the history', async () => {
    const { dir, status } = recording('clean', linearizable);
    const found = await recoverInterruptedRun(status, 'op-b', abort, options);
    assert.equal(found.kind, 'checked');
    if (found.kind !== 'checked') return;
    assert.equal(found.verdict, 'linearizable');
    assert.deepEqual([found.outcome.phase, found.outcome.reason], ['Aborted', 'OperatorRestarted']);
    assert.equal(found.problem, undefined);
    const verdict = JSON.parse(readFileSync(path.join(dir, 'verdict.json'), 'utf8')) as { outcome: { phase: string }; operations: { recorded: number; ok: number }; interrupted: string };
    assert.equal(verdict.outcome.phase, 'Aborted');
    assert.deepEqual(verdict.operations, { recorded: 2, ok: 2 });
    assert.equal(verdict.interrupted, abort.message);
    assert.match(readFileSync(path.join(dir, 'report.html'), 'utf8'), /r \(interrupted\)/);
  });

  test('a violation in what was recorded is a finding: Failed', async () => {
    const { status } = recording('violation', stale);
    const found = await recoverInterruptedRun(status, 'op-b', abort, options);
    assert.equal(found.kind === 'checked' && found.outcome.phase, 'Failed');
  });

  test('a failed fault in the recording counts, as in a finished run', async () => {
    const { status } = recording('fault', linearizable, 'failed');
    const found = await recoverInterruptedRun(status, 'op-b', abort, options);
    assert.ok(found.kind === 'checked');
    assert.match(found.outcome.message, /1 of 1 faults failed to apply/);
  });

  test('a history cut mid-line by the crash is still stored, and the message says whether it was checked', async () => {
    const { dir, status } = recording('cut', linearizable);
    const segment = readdirSync(path.join(dir, 'history'))[0]!;
    appendFileSync(path.join(dir, 'history', segment), '{"kind":"op","client":3,"call":5000');
    const found = await recoverInterruptedRun(status, 'op-b', abort, options);
    assert.equal(found.kind, 'checked');
    if (found.kind !== 'checked') return;
    assert.equal(found.outcome.phase, 'Aborted');
    if (found.problem !== undefined) assert.match(found.problem, /^the recorded history could not be checked: /);
    assert.ok(readFileSync(path.join(dir, 'verdict.json'), 'utf8').includes('"OperatorRestarted"'));
  });

  test('a recording on a disk this replica cannot reach: no report, and the message says where it was', async () => {
    const status: RobustnessRunStatus = { phase: 'Running', runNumber: 2, recording: { replica: 'op-a', path: path.join(root, 'elsewhere') } };
    const found = await recoverInterruptedRun(status, 'op-b', abort, options);
    assert.deepEqual(found, { kind: 'unreachable', message: `its history was recorded by replica op-a in ${path.join(root, 'elsewhere')}, which replica op-b cannot reach: no report` });
    const unnoted = await recoverInterruptedRun({ phase: 'Running' }, 'op-b', abort, options);
    assert.equal(unnoted.kind, 'unreachable');
  });
});
