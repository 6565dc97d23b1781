// The recorded histories of the replay bench (bench/histories/) and the replay order built from them
// (bench/replay.ts): each fixture is a real run's history that checks offline as linearizable with no
// watch violation, and the replay pushes every operation and watch response once, with watermarks that
// never pass an operation still to come.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { concatenateSegments } from '../../bench/histories/pack.ts';
import { prepareReplay, readRecordedHistory, recordedHistoryFiles, replayOnce, type PreparedReplay } from '../../bench/replay.ts';
import { checkHistory, parseHistory } from '../../src/checker/index.ts';
import type { Operation } from '../../src/domain/index.ts';

/** The fixtures README.md documents; the test fails if one goes missing. */
const expected = ['kill', 'leader', 'partition', 'shared-kill', 'shared-pause-kill', 'shared-quiet', 'two-node-failover'];

/** Asserts the replay order keeps the live checker's contract (src/checker/live.ts). */
function assertReplayOrder(prepared: PreparedReplay): void {
  const seen = new Set<Operation>();
  let watermark = -Infinity;
  let responses = 0;
  for (const e of prepared.events) {
    if (e.kind === 'op') {
      assert.ok(!seen.has(e.op), 'an operation pushed twice');
      seen.add(e.op);
      assert.ok(e.op.call >= watermark, `an operation called at ${e.op.call} pushed after advance(${watermark})`);
    } else if (e.kind === 'advance') {
      assert.ok(e.watermark > watermark, 'the watermark goes back');
      watermark = e.watermark;
    } else {
      responses++;
      assert.ok(e.stream.request.key.length > 0);
    }
  }
  assert.equal(seen.size, prepared.history.operations.length);
  assert.equal(responses, prepared.history.watches.reduce((n, w) => n + w.responses.length, 0));
}

describe('the replay bench fixtures (bench/histories)', () => {
  test('every documented history is there', () => {
    assert.deepEqual(
      recordedHistoryFiles().map((h) => h.name),
      expected,
    );
  });

  for (const { name, file } of recordedHistoryFiles()) {
    test(`${name}: a real run's history, linearizable offline and live on the revision path, no watch violation, a replay order that keeps the live contract`, { timeout: 600_000 }, () => {
      const text = readRecordedHistory(file);
      const history = parseHistory(text, name);
      assert.ok(history.operations.length > 3000, `${history.operations.length} operations`);
      assert.ok(history.watches.some((w) => w.responses.length > 0), 'watch responses recorded');
      assert.equal(history.meta?.mode, name.startsWith('shared') ? 'shared' : 'exclusive');
      if (name !== 'shared-quiet') assert.ok((history.faults ?? []).some((f) => f.phase === 'inject'), 'faults injected');
      const report = checkHistory(history, { timeoutMs: 600_000 });
      assert.equal(report.verdict, 'linearizable', report.linearizability.inconclusive ?? report.linearizability.violation?.reason);
      assert.ok(report.watch.checked > 0);
      assert.deepEqual(report.watch.violations, []);
      const prepared = prepareReplay(name, text);
      assertReplayOrder(prepared);
      // The live checker, fed as the run fed it: decided on the revision path, with no search taking over.
      const live = replayOnce(prepared);
      assert.equal(live.verdict, 'linearizable', live.inconclusiveReason ?? live.stats.searchReason);
      assert.equal(live.stats.method, 'revision', live.stats.searchReason);
      assert.equal(report.linearizability.method, 'revision', JSON.stringify(report.linearizability.searchWindow));
    });
  }
});

describe('pack.ts: segments concatenated into one history', () => {
  test("a later segment's header copies are dropped, a stream first opened at a segment's top is kept", () => {
    const meta = '{"kind":"meta","mode":"exclusive","initialRevision":1}';
    const open1 = '{"kind":"watch","id":1,"request":{"key":"a"}}';
    const open2 = '{"kind":"watch","id":2,"request":{"key":"b"}}';
    const op = '{"client":0,"call":1,"return":2,"request":{"type":"range","key":"a"},"response":{"revision":1,"kvs":[]}}';
    const lines = concatenateSegments([`${meta}\n${open1}\n${op}\n`, `${meta}\n${open1}\n${open2}\n${op.replace('"call":1,"return":2', '"call":3,"return":4')}\n`]);
    assert.deepEqual(lines, [meta, open1, op, open2, op.replace('"call":1,"return":2', '"call":3,"return":4')]);
    assert.equal(parseHistory(`${lines.join('\n')}\n`).operations.length, 2);
  });
});
