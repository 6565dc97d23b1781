// The checkers in a worker thread (src/run/checker-worker.ts): the same verdicts and evidence as in
// process, a violation reported before the stream ends, and a main thread that keeps running while the
// worker grinds through a large frontier.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { checkHistory, LiveChecker, modelOptionsFor, type LiveCheckerOptions } from '../../src/checker/index.ts';
import { serializeOperationLine, serializeWatchResponseLine } from '../../src/checker/serialize.ts';
import type { History, Operation, WatchResponse } from '../../src/domain/index.ts';
import { HistoryFileWriter } from '../../src/probes/history-writer.ts';
import { checkHistoryInWorker, decodeLiveBatch, encodeLiveBatch, HistoryReadBackError, liveBatchFromTexts, liveCallKind, LiveCheckerWorker } from '../../src/run/checker-worker.ts';
import { get, history, kvs, op, put, rev } from '../helpers/histories.ts';
import { buildHistory, corrupt, shapeArbitrary } from '../helpers/random-histories.ts';

const seed = process.env['FC_SEED'] === undefined ? 20_261_207 : Number(process.env['FC_SEED']);

/** The calls a recorder makes: each operation as it completes, then advance(watermark). */
function recorderCalls(h: History): { op: Operation; watermark: number }[] {
  const order = h.operations.map((o, i) => ({ op: o, i, done: o.return ?? o.call })).sort((a, b) => a.done - b.done || a.i - b.i);
  return order.map((o, k) => {
    let watermark = Infinity;
    for (let j = k + 1; j < order.length; j++) watermark = Math.min(watermark, order[j]!.op.call);
    return { op: o.op, watermark: Math.min(watermark, o.done) };
  });
}

function liveOptions(h: History): LiveCheckerOptions {
  const opts = modelOptionsFor(h);
  return { mode: opts.mode, trackRevision: opts.trackRevision, trackVersion: opts.trackVersion, initialRevision: opts.initialRevision };
}

/** Resolves when `check` holds, checked after every update of the worker. */
function updated(check: () => boolean): { onUpdate: () => void; reached: Promise<void> } {
  let resolve!: () => void;
  const reached = new Promise<void>((r) => (resolve = r));
  return {
    onUpdate: () => {
      if (check()) resolve();
    },
    reached,
  };
}

/**
 * Unknown-outcome writes to distinct keys that nothing observes, then acknowledged writes to another key
 * (no revisions): every subset of the unknown writes may have taken effect before each acknowledged
 * one, so the frontier holds 2^unknown states and every return explores all of them.
 */
function grindingHistory(unknown: number, known: number): Operation[] {
  const ms = 1e6;
  const ops: Operation[] = [];
  for (let i = 0; i < unknown; i++) ops.push(op(1000 + i, i * ms, null, put(`/k/${i}`, `maybe-${i}`)));
  for (let r = 0; r < known; r++) {
    const t = (unknown + 10 + 2 * r) * ms;
    ops.push(op(1, t, t + ms, put('/other', `sure-${r}`), {}));
  }
  return ops;
}

describe('live checker in a worker thread', () => {
  test('reaches the in-process verdict, evidence and stats on generated histories, corrupted or not', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArbitrary, fc.nat(), fc.boolean(), async (shape, pick, corrupted) => {
        const { history: h, corruptible } = buildHistory(shape);
        const subject = corrupted && corruptible.length > 0 ? (corrupt(h, corruptible[pick % corruptible.length]!, pick) ?? h) : h;
        const inProcess = new LiveChecker(liveOptions(subject));
        // A tiny batch, so that the calls cross in several messages.
        const worker = new LiveCheckerWorker({ ...liveOptions(subject), maxBatch: 3 });
        try {
          for (const { op: o, watermark } of recorderCalls(subject)) {
            inProcess.push(o);
            inProcess.advance(watermark);
            worker.push(o);
            worker.advance(watermark);
          }
          const expected = inProcess.finish();
          assert.equal(await worker.finish(), expected);
          assert.equal(worker.verdict, expected);
          assert.deepEqual(worker.violation, inProcess.violation);
          assert.equal(worker.inconclusiveReason, inProcess.inconclusiveReason);
          const [a, b] = [worker.stats(), inProcess.stats()];
          assert.deepEqual([a.received, a.processed, a.pendingOperations, a.resolved, a.frontier], [b.received, b.processed, b.pendingOperations, b.resolved, b.frontier]);
        } finally {
          await worker.close();
        }
      }),
      { numRuns: 40, seed },
    );
  });

  test('watch responses go through in order with the operations and resolve unknown outcomes', async () => {
    const worker = new LiveCheckerWorker();
    try {
      worker.push(op(1, 0, null, put('x', 'seen')));
      worker.push(op(2, 5, null, put('z', 'unseen')));
      worker.pushWatchResponse({ time: 50, revision: 2, events: [{ type: 'put', key: 'x', value: 'seen', modRevision: 2 }] });
      worker.push(op(3, 60, 70, get('x'), kvs([{ key: 'x', value: 'seen', modRevision: 2 }], 2)));
      assert.equal(await worker.finish(), 'linearizable');
      assert.equal(worker.stats().resolved, 1);
    } finally {
      await worker.close();
    }
  });

  test("given the history writer's lines instead of objects, the same verdict and stats as in process", async () => {
    const stream = { id: 4, request: { key: '', end: '\u0000', prevKV: true } };
    const calls: ({ o: Operation } | { r: WatchResponse })[] = [
      { o: op(1, 0, null, put('x', 'seen')) },
      { o: op(2, 5, null, put('z', 'unseen')) },
      { r: { time: 50, revision: 2, events: [{ type: 'put', key: 'x', value: 'seen', modRevision: 2 }] } },
      { r: { time: 55, revision: 3, events: [{ type: 'put', key: 'y', value: 'other', modRevision: 3 }] } },
      { o: op(3, 60, 70, get('x'), kvs([{ key: 'x', value: 'seen', modRevision: 2 }], 3)) },
      { o: op(4, 80, 90, get('x'), kvs([], 3)) },
    ];
    const inProcess = new LiveChecker();
    const worker = new LiveCheckerWorker();
    try {
      for (const call of calls) {
        if ('o' in call) {
          inProcess.push(call.o);
          worker.push(call.o, serializeOperationLine(call.o));
        } else {
          inProcess.pushWatchResponse(call.r, stream);
          worker.pushWatchResponse(call.r, stream, serializeWatchResponseLine(stream.id, call.r));
        }
      }
      const expected = inProcess.finish();
      assert.equal(expected, 'violation'); // x, seen at revision 2 and never deleted, read back as absent at 3
      assert.equal(await worker.finish(), expected);
      assert.deepEqual(worker.violation, inProcess.violation);
      assert.equal(worker.stats().resolved, inProcess.stats().resolved);
    } finally {
      await worker.close();
    }
  });

  test('a violation found in the worker is reported (onUpdate) while the stream goes on, and is the final verdict with the in-process evidence', async () => {
    const ops = [op(1, 0, 10, put('x', '1'), rev(2)), op(2, 20, 30, get('x'), kvs([], 2)), op(3, 40, 50, put('y', '2'), rev(3))];
    const inProcess = new LiveChecker();
    const holder: { worker?: LiveCheckerWorker } = {};
    const violation = updated(() => holder.worker?.verdict === 'violation');
    const worker = (holder.worker = new LiveCheckerWorker({ onUpdate: violation.onUpdate }));
    try {
      for (const o of ops.slice(0, 2)) {
        worker.push(o);
        worker.advance(o.return! + 5);
        inProcess.push(o);
        inProcess.advance(o.return! + 5);
      }
      // No finish(): the batch timer sends the calls, the worker reports the violation by itself.
      await violation.reached;
      assert.equal(worker.verdict, 'violation');
      assert.deepEqual(worker.violation?.unplaceable, [1]);
      worker.push(ops[2]!);
      inProcess.push(ops[2]!);
      assert.equal(await worker.finish(), 'violation');
      assert.equal(inProcess.finish(), 'violation');
      assert.deepEqual(worker.violation, inProcess.violation);
    } finally {
      await worker.close();
    }
  });

  test('a checker that throws leaves an inconclusive live verdict with the reason, and finish() still resolves', async () => {
    const worker = new LiveCheckerWorker();
    try {
      worker.push(op(1, 100, 110, put('x', '1'), rev(2)));
      worker.advance(200);
      // Called before the watermark the engine was given: the engine refuses it.
      worker.push(op(2, 50, 120, get('x'), kvs([], 1)));
      assert.equal(await worker.finish(), 'inconclusive');
      assert.match(worker.inconclusiveReason ?? '', /the live checker failed: operation 1 was added after the watermark/);
    } finally {
      await worker.close();
    }
  });

  test('the main thread keeps ticking while the worker settles a 1,024-state frontier', async () => {
    const ops = grindingHistory(10, 60);
    const options: LiveCheckerOptions = { trackRevision: false, trackVersion: false, resolveWindowMs: 5 };
    const worker = new LiveCheckerWorker(options);
    const delay = monitorEventLoopDelay({ resolution: 5 });
    let ticks = 0;
    let ticksWhileBusy = 0;
    const ticker = setInterval(() => {
      ticks++;
      // The worker has not caught up yet: the main thread runs while the search does.
      if (worker.stats().pendingOperations > 0) ticksWhileBusy++;
    }, 5);
    delay.enable();
    try {
      for (const o of ops) {
        worker.push(o);
        worker.advance(o.return ?? o.call);
      }
      const verdict = await worker.finish();
      delay.disable();
      clearInterval(ticker);
      // The same history in process (which would hold this thread all along), for the verdict.
      const inProcess = new LiveChecker(options);
      for (const o of ops) {
        inProcess.push(o);
        inProcess.advance(o.return ?? o.call);
      }
      assert.equal(inProcess.finish(), verdict);
      assert.equal(verdict, 'linearizable');
      assert.equal(worker.stats().frontier, 1024, 'every subset of the 10 unknown writes stays a candidate');
      // Every settle explores ~10,000 configurations: the search takes many tick intervals, and this
      // thread ticked through them.
      assert.ok(ticksWhileBusy >= 20, `the main thread ticked ${ticksWhileBusy} times while the worker searched (${ticks} in all)`);
      console.log(`ticks while the worker searched: ${ticksWhileBusy}; event loop delay max ${(delay.max / 1e6).toFixed(1)} ms`);
    } finally {
      clearInterval(ticker);
      await worker.close();
    }
  });
});

describe('live checker batches', () => {
  test('decode gives back the calls in order: operations and responses as JSON gives them, numbers exact (Infinity included)', () => {
    const a = op(1, 10, 20, put('x', '1'), rev(2));
    const b = op(2, 15, null, put('y', '2'));
    const response = { time: 30, revision: 2, events: [{ type: 'put' as const, key: 'x', value: '1', modRevision: 2 }] };
    const { op: o, watch, advance } = liveCallKind;
    const stream = { id: 3, request: { key: '/p/', end: '/p0' } };
    const batch = encodeLiveBatch(`${o}${advance}${watch}${o}${advance}${watch}`, [1.5, 12, 0, 2.25, Infinity, 0], [a, { response, stream }, b, { response }]);
    assert.deepEqual(
      [...decodeLiveBatch(batch)],
      [
        { kind: 'op', op: a, at: 1.5 },
        { kind: 'advance', watermark: 12 },
        { kind: 'watch', response, stream },
        { kind: 'op', op: b, at: 2.25 },
        { kind: 'advance', watermark: Infinity },
        { kind: 'watch', response },
      ],
    );
  });

  test("the history file's lines decode to the same calls: an operation's line, a watch response's line naming its stream", () => {
    const a = op(1, 10, 20, put('x', '1'), rev(2));
    const response = { time: 30, revision: 2, events: [{ type: 'put' as const, key: 'x', value: '1', modRevision: 2 }] };
    const { op: o, watch } = liveCallKind;
    const texts = [serializeOperationLine(a), serializeWatchResponseLine(3, response)];
    assert.deepEqual(
      [...decodeLiveBatch(liveBatchFromTexts(`${o}${watch}`, [1.5, 0], texts))],
      [
        { kind: 'op', op: a, at: 1.5 },
        { kind: 'watch', response, stream: { id: 3 } },
      ],
    );
  });

  test('what JSON cannot hold is refused when the batch is made', () => {
    const bad = { ...op(1, 10, 20, put('x', '1')), extra: 1n } as unknown as Operation;
    assert.throws(() => encodeLiveBatch(liveCallKind.op, [0], [bad]), TypeError);
  });
});

describe('offline check in a worker thread', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'checker-worker-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  let runs = 0;
  /** Writes the history the way the engine does, into a fresh directory. */
  function writeHistory(h: History): string {
    const historyDir = path.join(dir, `h${runs++}`);
    const writer = HistoryFileWriter.open(historyDir, { maxSegmentBytes: 2048 });
    if (h.meta) writer.writeMeta(h.meta);
    for (const o of h.operations) writer.writeOperation(o);
    for (const w of h.watches) {
      writer.openWatch({ ...w, responses: [] });
      for (const r of w.responses) writer.writeWatchResponse(w.id, r);
    }
    writer.close();
    return historyDir;
  }

  const withoutTime = <T extends { elapsedMs: number }>(report: T): T => ({ ...report, elapsedMs: 0 });

  test('reads the history files and reaches the in-process report, evidence and linearization included', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArbitrary, fc.nat(), fc.boolean(), async (shape, pick, corrupted) => {
        const { history: h, corruptible } = buildHistory(shape);
        const subject = corrupted && corruptible.length > 0 ? (corrupt(h, corruptible[pick % corruptible.length]!, pick) ?? h) : h;
        const report = await checkHistoryInWorker({ dir: writeHistory(subject) }, { timeoutMs: 20_000 });
        assert.deepEqual(withoutTime(report), withoutTime(checkHistory(subject, { timeoutMs: 20_000 })));
      }),
      { numRuns: 25, seed },
    );
  });

  test('a directory it cannot read is a HistoryReadBackError; a history in memory is checked instead', async () => {
    const h = history([op(1, 0, 10, put('x', '1'), rev(2)), op(2, 20, 30, get('x'), kvs([], 2))], { mode: 'exclusive', initialRevision: 1 });
    await assert.rejects(checkHistoryInWorker({ dir: path.join(dir, 'missing') }), (error: unknown) => error instanceof HistoryReadBackError && /missing/.test(error.message));
    const report = await checkHistoryInWorker({ history: h });
    assert.equal(report.verdict, 'violation');
    assert.deepEqual(withoutTime(report), withoutTime(checkHistory(h)));
  });
});
