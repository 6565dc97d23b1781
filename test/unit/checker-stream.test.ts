/**
 * The streaming check (src/checker/stream.ts) against the in-memory one (checkHistory): the same input
 * must give the same verdict, the same reasons and the same watch violations, over random histories with
 * unknown outcomes, stale reads, watches (faithful and damaged), shared mode, files and segment
 * directories. Plus what only the streaming path does: bounded line reading.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { checkHistory, checkLinearizability } from '../../src/checker/check.ts';
import { HistoryFormatError } from '../../src/checker/history-lines.ts';
import { HistoryParser, parseHistory } from '../../src/checker/parse.ts';
import { serializeHistory } from '../../src/checker/serialize.ts';
import { checkHistoryStream, type HistorySource, type StreamCheckOptions } from '../../src/checker/stream.ts';
import type { CheckReport } from '../../src/checker/result.ts';
import type { History, Operation, WatchResponse, WatchStream } from '../../src/domain/index.ts';
import { readLines } from '../../src/probes/history-line-reader.ts';
import { historySource } from '../../src/probes/history-source.ts';
import { writeSegments } from '../helpers/histories.ts';
import { buildHistory, corrupt, shapeArbitrary } from '../helpers/random-histories.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-stream-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const seed = process.env['FC_SEED'] === undefined ? 20_261_206 : Number(process.env['FC_SEED']);

/** A history held as JSON Lines text, read by the streaming check as it reads a file. */
function textSource(text: string): HistorySource {
  const lines = text.split('\n');
  return {
    name: 'text',
    pass(onOperation, options = {}) {
      // As historySource: kvs elided where a pass asks (the first pass, the observation pass), left as text in the last.
      const parser = new HistoryParser('text', { retainOperations: false, ...(options.onElidedKvs ? { onElidedKvs: options.onElidedKvs } : {}), ...(options.keepKvValues ? { keepKvValues: options.keepKvValues } : {}), lazyKvs: options.lazyKvs === true });
      let index = 0;
      for (const line of lines) {
        const op = parser.line(line);
        if (op !== undefined) onOperation(op, index++);
      }
      return { history: parser.finish(), inCallOrder: parser.inCallOrder };
    },
    load: () => parseHistory(text, 'text'),
  };
}

/** As a recorder writes them: each operation when it completes (an unknown outcome at its call). */
function recorderOrder(history: History): History {
  const operations = history.operations.map((op, i) => ({ op, i })).sort((a, b) => (a.op.return ?? a.op.call) - (b.op.return ?? b.op.call) || a.i - b.i);
  return { ...history, operations: operations.map((o) => o.op) };
}

/** A watch over every key from the start, delivering what the in-memory check commits, damaged by `damage`. */
function withWatch(history: History, damage: number): History | undefined {
  const lin = checkLinearizability(history, { timeoutMs: 20_000 });
  if (lin.committed === undefined || lin.committed.length === 0) return undefined;
  const end = Math.max(...history.operations.map((op) => op.return ?? op.call));
  // Events at revisions the linearization could not name (an unknown-outcome delete) are left out.
  const responses: WatchResponse[] = lin.committed
    .map((c) => ({ revision: c.revision, events: structuredClone(c.events).filter((e) => e.modRevision > 0 && (e.createRevision ?? 0) >= 0 && (e.prevKV?.modRevision ?? 0) >= 0 && (e.prevKV?.createRevision ?? 0) >= 0) }))
    .filter((r) => r.events.length > 0 && r.revision > 0)
    .map((r, i) => ({ time: end + 10 * (i + 1), ...r }));
  if (responses.length === 0) return undefined;
  const k = damage % responses.length;
  switch (damage % 5) {
    case 1:
      responses.splice(k, 1); // a gap: reliable
      break;
    case 2:
      responses.push(structuredClone(responses[k]!)); // again: unique, ordered
      break;
    case 3:
      for (const e of responses[k]!.events) if (e.type === 'put') e.value = 'never-written'; // wrong contents
      break;
    default:
      break; // faithful
  }
  const stream: WatchStream = { id: 1, client: 999, request: { key: '/k/', end: '/k0', startRevision: 1, prevKV: true }, responses };
  return { ...history, watches: [stream] };
}

/** Some reads made serializable: validated against states, not linearized. Corrupting one may make a stale-read violation. */
function withStaleReads(history: History, pick: number): History {
  const operations = history.operations.map((op, i): Operation => {
    if (op.request.type !== 'range' || op.response === undefined || (i + pick) % 3 !== 0) return op;
    return { ...op, request: { ...op.request, serializable: true } };
  });
  return { ...history, operations };
}

/** What must agree: verdict, reasons, stale reads, patching, watch violations. */
function essence(report: CheckReport): unknown {
  const lin = report.linearizability;
  return {
    verdict: report.verdict,
    linearizability: lin.verdict,
    operations: lin.operations,
    violation: lin.violation === undefined ? undefined : { reason: lin.violation.reason, unplaceable: lin.violation.unplaceable, states: lin.violation.states },
    inconclusive: lin.inconclusive,
    stale: lin.staleReadViolations,
    patched: lin.patched,
    watch: report.watch,
  };
}

function agree(text: string, options: StreamCheckOptions = {}): { stream: ReturnType<typeof checkHistoryStream>; whole: CheckReport } {
  const whole = checkHistory(parseHistory(text, 'text'), { timeoutMs: 20_000 });
  const stream = checkHistoryStream(textSource(text), { timeoutMs: 20_000, ...options });
  assert.deepEqual(essence(stream), essence(whole), text);
  // Keeping the linearization (for a report) gives checkHistory's, and a violation's whole prefix.
  const kept = checkHistoryStream(textSource(text), { timeoutMs: 20_000, ...options, keepLinearization: true }).linearizability;
  assert.deepEqual(kept.linearization, whole.linearizability.linearization);
  assert.deepEqual(kept.violation?.prefix, whole.linearizability.violation?.prefix);
  return { stream, whole };
}

const variant = fc.record({
  pick: fc.nat(),
  corrupted: fc.boolean(),
  watch: fc.nat(9),
  stale: fc.boolean(),
  shared: fc.boolean(),
  chunk: fc.integer({ min: 1, max: 8 }),
  lag: fc.nat(3),
});

describe('the streaming check agrees with checkHistory', () => {
  test('on random histories: unknown outcomes, stale reads, watches, shared mode, small chunks', () => {
    let streamed = 0;
    let watched = 0;
    let violations = 0;
    fc.assert(
      fc.property(shapeArbitrary, variant, (shape, v) => {
        const { history: built, corruptible } = buildHistory(shape);
        let history = v.corrupted && corruptible.length > 0 ? (corrupt(built, corruptible[v.pick % corruptible.length]!, v.pick) ?? built) : built;
        if (v.stale) history = withStaleReads(history, v.pick);
        if (v.shared) history = { ...history, meta: { kind: 'meta', mode: 'shared', prefix: '/k/' } };
        if (shape.withRevisions && v.watch > 0) history = withWatch(history, v.watch) ?? history;
        const { stream } = agree(serializeHistory(recorderOrder(history)), { chunkOperations: v.chunk, lagChunks: v.lag });
        if (stream.mode === 'stream') streamed++;
        if (history.watches.length > 0) watched++;
        if (stream.verdict === 'violation') violations++;
      }),
      { numRuns: 400, seed },
    );
    // The draw covers what it claims to: streamed (not handed to checkHistory), watches, violations.
    assert.ok(streamed > 200 && watched > 50 && violations > 50, `streamed ${streamed}, watched ${watched}, violations ${violations}`);
  });

  test('on files and segment directories, through historySource', () => {
    let files = 0;
    fc.assert(
      fc.property(shapeArbitrary, variant, (shape, v) => {
        let history = buildHistory(shape).history;
        if (v.stale) history = withStaleReads(history, v.pick);
        if (shape.withRevisions) history = withWatch(history, v.watch) ?? history;
        history = recorderOrder(history);
        const name = `h${++files}`;
        const file = path.join(dir, `${name}.jsonl`);
        writeFileSync(file, serializeHistory(history));
        const writer = writeSegments(path.join(dir, name), history, { maxSegmentBytes: 400 });
        const whole = essence(checkHistory(parseHistory(serializeHistory(history)), { timeoutMs: 20_000 }));
        assert.deepEqual(essence(checkHistoryStream(historySource(file), { chunkOperations: v.chunk })), whole);
        assert.deepEqual(essence(checkHistoryStream(historySource(writer.dir), { chunkOperations: v.chunk })), whole);
      }),
      { numRuns: 40, seed },
    );
  });

  test('clients out of call order in the file: the history is read whole, same verdict', () => {
    const put = (client: number, call: number, ret: number, value: string, revision: number): string =>
      JSON.stringify({ client, call, return: ret, request: { type: 'put', key: 'x', value }, response: { revision } });
    const text = [put(1, 100, 110, 'b', 3), put(1, 0, 10, 'a', 2), put(2, 200, 210, 'c', 4)].join('\n');
    const { stream } = agree(text);
    assert.equal(stream.mode, 'whole');
    assert.equal(stream.verdict, 'linearizable');
    // ... and an overlap is still found, as the whole-history parser finds it.
    const overlap = [put(1, 100, 110, 'b', 3), put(1, 0, 105, 'a', 2)].join('\n');
    assert.throws(() => checkHistoryStream(textSource(overlap)), /client 1 starts an operation at 100 while its previous one \(line 2\) returned only at 105/);
  });

  test('a stale read older than the states kept is inconclusive, never a false violation', () => {
    const lines = [{ client: 0, call: 0, return: 5, request: { type: 'put', key: 'x', value: 'v0' }, response: { revision: 2 } }];
    for (let i = 1; i <= 50; i++) lines.push({ client: i, call: i * 10, return: i * 10 + 5, request: { type: 'put', key: 'x', value: `v${i}` }, response: { revision: i + 2 } });
    // A serializable read without a revision may read any state visible before it returned.
    const read = { client: 99, call: 1, return: 6, request: { type: 'range', key: 'x', serializable: true }, response: { kvs: [{ key: 'x', value: 'v0' }] } };
    const text = [...lines.slice(0, 1), read, ...lines.slice(1)].map((l) => JSON.stringify(l)).join('\n');
    agree(text); // a generous window: the same verdict
    // Read at the end, the first value: still valid, but its state is long out of a 4-state window.
    const late = [...lines, { ...read, call: 600, return: 605 }].map((l) => JSON.stringify(l)).join('\n');
    assert.equal(checkHistory(parseHistory(late)).verdict, 'linearizable');
    const small = checkHistoryStream(textSource(late), { staleStates: 4, chunkOperations: 2 });
    assert.equal(small.verdict, 'inconclusive');
    assert.match(small.linearizability.inconclusive ?? '', /stale read \(operation 51\) may have read a state older than the 4 kept/);
    // A read that matches no state at all is still a violation when the window holds the state it names.
    const wrong = [...lines, { ...read, call: 600, return: 605, response: { kvs: [{ key: 'x', value: 'never' }] } }].map((l) => JSON.stringify(l)).join('\n');
    assert.equal(checkHistory(parseHistory(wrong)).verdict, 'violation');
  });

  test('memory follows the window: settled paths are replayed and their operations dropped as the check goes', () => {
    // A long history of sequential writes and reads, with a watch (so the linearization is replayed).
    const lines: unknown[] = [{ kind: 'meta', mode: 'exclusive' }, { kind: 'watch', id: 1, request: { key: 'k', end: 'l', startRevision: 1 } }];
    for (let i = 0; i < 5000; i++) {
      lines.push({ client: i % 4, call: i * 10, return: i * 10 + 5, request: { type: 'put', key: `k${i % 7}`, value: `v${i}` }, response: { revision: i + 2 } });
    }
    const { stream } = agree(lines.map((l) => JSON.stringify(l)).join('\n'), { chunkOperations: 64, lagChunks: 2 });
    assert.equal(stream.mode, 'stream');
    assert.equal(stream.verdict, 'linearizable');
    assert.equal(stream.watch.checked, 1);
    // Held at once: the chunks read ahead of the watermark and the one being read, not the 5,000.
    assert.ok(stream.peakWindow <= 4 * 64, `peak window ${stream.peakWindow}`);
  });

});

describe('reading lines', () => {
  test('lines come out as text.split("\\n") gives them, across chunk boundaries', () => {
    const text = `${'a'.repeat(10)}\n\n${'é'.repeat(7)}\nlast`;
    const file = path.join(dir, 'lines.txt');
    writeFileSync(file, text);
    for (const chunkBytes of [1, 2, 3, 7, 64]) assert.deepEqual([...readLines(file, { chunkBytes })], text.split('\n'));
    writeFileSync(file, `${text}\n`);
    assert.deepEqual([...readLines(file, { chunkBytes: 5 })], `${text}\n`.split('\n'));
  });

  test('a line over the limit is a HistoryFormatError naming it, whether it ends in the chunk or not', () => {
    const file = path.join(dir, 'long.jsonl');
    writeFileSync(file, `{"a":1}\n${'x'.repeat(100)}\n{"b":2}\n`);
    for (const chunkBytes of [16, 1024]) {
      assert.throws(
        () => [...readLines(file, { maxLineBytes: 50, chunkBytes })],
        (error: unknown) => error instanceof HistoryFormatError && error.line === 2 && /longer than 50 bytes/.test(error.message),
      );
    }
    assert.equal([...readLines(file, { maxLineBytes: 100 })].length, 4);
  });
});
