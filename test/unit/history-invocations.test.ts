// Invoke lines (an operation recorded when it is sent) and torn last lines: what a history cut by a crash
// looks like, and why the checker must not call it a violation (docs/history-format.md, "Invocations and
// crashes").
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { checkHistory } from '../../src/checker/check.ts';
import { HistoryFormatError } from '../../src/checker/history-lines.ts';
import { HistoryParser, parseHistory } from '../../src/checker/parse.ts';
import { serializeInvokeLine, serializeOperationLine } from '../../src/checker/serialize.ts';
import type { History, HistoryMeta, Invocation, Operation } from '../../src/domain/index.ts';
import { readHistoryDirectory } from '../../src/probes/history-segment-reader.ts';
import { HistoryFileWriter } from '../../src/probes/history-writer.ts';
import { HistoryRecorder } from '../../src/probes/recorder.ts';
import { buildHistory, shapeArbitrary } from '../helpers/random-histories.ts';
import { historyProblem } from '../helpers/histories.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-invocations-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `h${++dirs}`);

const putA: Invocation = { kind: 'invoke', client: 3, call: 10, request: { type: 'put', key: '/k/a', value: 'v1' }, member: 'm1' };
const putADone: Operation = { client: 3, call: 10, return: 20, request: { type: 'put', key: '/k/a', value: 'v1' }, response: { revision: 2 }, member: 'm2' };
const jsonl = (...lines: string[]): string => `${lines.join('\n')}\n`;

describe('invoke lines', () => {
  test('are written kind first, with the member only when there is one', () => {
    assert.equal(serializeInvokeLine(putA), '{"kind":"invoke","client":3,"call":10,"request":{"type":"put","key":"/k/a","value":"v1"},"member":"m1"}');
    const { member, ...unpinned } = putA;
    assert.equal(member, 'm1');
    assert.equal(serializeInvokeLine(unpinned), '{"kind":"invoke","client":3,"call":10,"request":{"type":"put","key":"/k/a","value":"v1"}}');
  });

  test('the line is exactly JSON.stringify of { kind, client, call, request, member } (any numbers and strings)', () => {
    const text = fc.string({ unit: 'binary' });
    const number = fc.oneof(fc.integer(), fc.double(), fc.constant(1.7e15));
    fc.assert(
      fc.property(number, number, text, text, fc.option(text, { nil: undefined }), (client, call, key, value, member) => {
        const request = { type: 'put' as const, key, value };
        const invocation: Invocation = member === undefined ? { kind: 'invoke', client, call, request } : { kind: 'invoke', client, call, request, member };
        const plain = JSON.stringify(member === undefined ? { kind: 'invoke', client, call, request } : { kind: 'invoke', client, call, request, member });
        assert.equal(serializeInvokeLine(invocation), plain);
      }),
    );
  });

  test('an invoke completed by its operation line is one operation: the completion, counted once', () => {
    const parser = new HistoryParser('h.jsonl');
    assert.equal(parser.line(serializeInvokeLine(putA)), undefined);
    assert.deepEqual(parser.openInvocations, [putA]);
    assert.deepEqual(parser.line(serializeOperationLine(putADone)), putADone);
    assert.deepEqual(parser.openInvocations, []);
    assert.deepEqual(parser.finish().operations, [putADone]);
  });

  test('an invoke never completed is an operation with an unknown outcome', () => {
    const history = parseHistory(jsonl(serializeOperationLine({ ...putADone, client: 1 }), serializeInvokeLine(putA)), 'h.jsonl');
    assert.deepEqual(history.operations, [{ ...putADone, client: 1 }, { client: 3, call: 10, return: null, request: putA.request, member: 'm1' }]);
    assert.equal(history.tornTail, undefined);
  });

  test('an operation line with no invoke before it is complete on its own (older and imported histories)', () => {
    assert.deepEqual(parseHistory(jsonl(serializeOperationLine(putADone))).operations, [putADone]);
    // An invoke of another call does not claim it: the client's overlap check judges the pair.
    const later = { ...putA, call: 30 };
    assert.deepEqual(parseHistory(jsonl(serializeOperationLine(putADone), serializeInvokeLine(later))).operations.length, 2);
    assert.match(historyProblem(jsonl(serializeInvokeLine({ ...putA, call: 5 }), serializeOperationLine(putADone))), /^h\.jsonl:2: client 3 starts an operation at 10 while its previous one \(line 1\) never returned/);
  });

  test('a completion whose request differs from its invoke is an error naming both lines', () => {
    const other = { ...putADone, request: { type: 'put' as const, key: '/k/a', value: 'v2' } };
    assert.equal(
      historyProblem(jsonl('{"kind":"meta"}', serializeInvokeLine(putA), serializeOperationLine(other))),
      "h.jsonl:3: client 3's operation called at 10 has a different request from its invocation (line 2)",
    );
  });

  test('a second invoke while the client has one open is an error (clients never overlap)', () => {
    assert.equal(
      historyProblem(jsonl(serializeInvokeLine(putA), serializeInvokeLine({ ...putA, call: 15 }))),
      "h.jsonl:2: client 3 is invoked at 15 while its invocation at 10 (line 1) is still open (a client's operations never overlap)",
    );
  });

  test('malformed invoke lines are rejected as FILE:LINE: problem', () => {
    assert.equal(historyProblem('{"kind":"invoke","client":-1,"call":1,"request":{"type":"defragment"}}'), 'h.jsonl:1: client must be an integer >= 0, got -1');
    assert.equal(historyProblem('{"kind":"invoke","client":1,"request":{"type":"defragment"}}'), 'h.jsonl:1: call must be an integer >= 0, got nothing');
    assert.match(historyProblem('{"kind":"invoke","client":1,"call":1,"request":{"type":"get"}}'), /^h\.jsonl:1: request\.type must be one of range/);
    assert.equal(historyProblem('{"kind":"invoke","client":1,"call":1,"request":{"type":"defragment"},"member":7}'), 'h.jsonl:1: member must be a string');
    assert.equal(historyProblem(jsonl(serializeInvokeLine(putA), '{"kind":"meta"}')), 'h.jsonl:2: the meta line must come before the operations');
  });
});

describe('a torn last line', () => {
  const cut = serializeOperationLine(putADone).slice(0, 30);

  test('is ignored when it ends the history without a newline, and reported as tornTail', () => {
    const history = parseHistory(`${serializeInvokeLine(putA)}\n${cut}`, 'h.jsonl');
    assert.deepEqual(history.tornTail, { file: 'h.jsonl', line: 2 });
    assert.deepEqual(history.operations, [{ client: 3, call: 10, return: null, request: putA.request, member: 'm1' }]);
    const parser = new HistoryParser('p');
    parser.line(cut, { last: true });
    assert.deepEqual(parser.tornTail, { file: 'p', line: 1 });
    // A caller that said "last" and goes on: the torn line was not the last after all.
    assert.throws(() => parser.line(serializeInvokeLine(putA)), /^HistoryFormatError: p:1: not valid JSON, and not the last line/);
  });

  test('is an error anywhere else: with a newline after it, or before other lines', () => {
    assert.match(historyProblem(`${serializeInvokeLine(putA)}\n${cut}\n`), /^h\.jsonl:2: not valid JSON/);
    assert.match(historyProblem(`${cut}\n${serializeInvokeLine(putA)}`), /^h\.jsonl:1: not valid JSON/);
  });

  test('a complete last line without its newline is read as usual', () => {
    const history = parseHistory(serializeOperationLine(putADone));
    assert.deepEqual(history.operations, [putADone]);
    assert.equal(history.tornTail, undefined);
  });
});

describe('the false violation a crash made before invoke lines', () => {
  // A put in flight when the recorder died: the watch delivered it, its completion was never written.
  const meta = '{"kind":"meta","mode":"exclusive","initialRevision":1}';
  const watch = ['{"kind":"watch","id":1,"request":{"key":"/k/","end":"/k0","startRevision":2,"prevKV":true}}'];
  const event = '{"kind":"watch","id":1,"response":{"time":15,"revision":2,"events":[{"type":"put","key":"/k/a","value":"v1","modRevision":2,"createRevision":2,"version":1,"isCreate":true}]}}';
  const invoke = serializeInvokeLine(putA);
  // Another client's read that completed: a history needs an operation to be checked at all.
  const read = '{"client":9,"call":1,"return":2,"request":{"type":"range","key":"/k/b"},"response":{"revision":1,"kvs":[]}}';

  test('without the invoke line the watch event is "not in the history": a violation', () => {
    const report = checkHistory(parseHistory(jsonl(meta, read, ...watch, event)));
    assert.equal(report.verdict, 'violation');
    assert.equal(report.watch.violations[0]?.property, 'reliable');
    assert.match(report.watch.violations[0]?.message ?? '', /not in the history/);
  });

  test('with it, the write is an unknown outcome the watch resolves: linearizable', () => {
    const history = parseHistory(`${jsonl(meta, read, ...watch, invoke, event)}${serializeOperationLine(putADone).slice(0, 25)}`);
    assert.ok(history.tornTail);
    const report = checkHistory(history);
    assert.equal(report.verdict, 'linearizable', JSON.stringify(report.watch.violations));
  });
});

/** A history as a recorder writes it: each operation's invoke at its call, its completion at its return. */
function recording(history: History): string {
  const events: { time: number; line: string }[] = [];
  for (const op of history.operations) {
    events.push({ time: op.call, line: serializeInvokeLine({ kind: 'invoke', client: op.client, call: op.call, request: op.request }) });
    // An unknown outcome is written when the client gives up (a timeout later).
    events.push({ time: op.return ?? op.call + 10_000, line: serializeOperationLine(op) });
  }
  events.sort((a, b) => a.time - b.time);
  return jsonl(JSON.stringify(history.meta), ...events.map((e) => e.line));
}

describe('every byte prefix of a recording', () => {
  test('parses, holds each invoked operation once, and is never a violation (property)', () => {
    fc.assert(
      fc.property(shapeArbitrary, fc.double({ min: 0, max: 1, noNaN: true }), (shape, where) => {
        const text = recording(buildHistory(shape).history);
        const prefix = text.slice(0, Math.floor(where * text.length));
        const parsed = parseHistory(prefix, 'prefix.jsonl');
        const invoked = prefix.split('\n').filter((l) => l.startsWith('{"kind":"invoke"') && l.endsWith('}')).length;
        assert.equal(parsed.operations.length, invoked);
        const report = checkHistory(parsed, { timeoutMs: 10_000 });
        assert.notEqual(report.verdict, 'violation', report.linearizability.violation?.reason);
      }),
      { numRuns: 300, seed: 16 },
    );
  });

  test('without invoke lines (the format before them), some prefix cut at a line end is a false violation', () => {
    const completionsOnly = (text: string): string => text.split('\n').filter((l) => !l.startsWith('{"kind":"invoke"')).join('\n');
    const result = fc.check(
      fc.property(shapeArbitrary, fc.double({ min: 0, max: 1, noNaN: true }), (shape, where) => {
        const text = completionsOnly(recording(buildHistory(shape).history));
        const cut = text.slice(0, Math.floor(where * text.length));
        const prefix = cut.slice(0, cut.lastIndexOf('\n') + 1);
        return checkHistory(parseHistory(prefix), { timeoutMs: 10_000 }).verdict !== 'violation';
      }),
      { numRuns: 300, seed: 16 },
    );
    // A read saw a write whose completion line the crash cut off: no recorded write explains what it read.
    assert.ok(result.failed, 'expected a prefix that today\'s format turns into a violation');
  });
});

describe('segments', () => {
  const meta: HistoryMeta = { kind: 'meta', mode: 'exclusive' };

  /** putA invoked in the first segment, completed in the second (a 1-byte limit rotates before every body line after the first). */
  function split(): HistoryFileWriter {
    const writer = HistoryFileWriter.open(freshDir(), { maxSegmentBytes: 1 });
    writer.writeMeta(meta);
    writer.writeInvoke(putA);
    writer.writeOperation(putADone);
    writer.close();
    return writer;
  }

  test('an invoke and its completion pair across segments; each segment alone is valid', () => {
    const writer = split();
    assert.equal(writer.segments.length, 2);
    assert.deepEqual(readHistoryDirectory(writer.dir).operations, [putADone]);
    const [first, second] = writer.segments.map((file) => parseHistory(readFileSync(file, 'utf8'), file));
    assert.deepEqual(first!.operations, [{ client: 3, call: 10, return: null, request: putA.request, member: 'm1' }]);
    assert.deepEqual(second!.operations, [putADone]);
  });

  test('a suffix left by maxSegments: a completion whose invoke was deleted is complete on its own', () => {
    const writer = HistoryFileWriter.open(freshDir(), { maxSegmentBytes: 1, maxSegments: 2 });
    writer.writeMeta(meta);
    writer.writeInvoke(putA);
    writer.writeOperation(putADone);
    writer.writeInvoke({ ...putA, call: 30 });
    writer.close();
    assert.equal(writer.deletedSegments.length, 1, 'the segment holding the first invoke is gone');
    assert.deepEqual(readHistoryDirectory(writer.dir, { allowSuffix: true }).operations, [putADone, { client: 3, call: 30, return: null, request: putA.request, member: 'm1' }]);
  });

  test('a torn last line of the last segment is ignored and located in its segment', () => {
    const writer = split();
    const last = writer.segments[1]!;
    writeFileSync(last, `${readFileSync(last, 'utf8')}{"kind":"invoke","cli`);
    const history = readHistoryDirectory(writer.dir);
    assert.deepEqual(history.operations, [putADone]);
    assert.deepEqual(history.tornTail, { file: last, line: 3 });
  });

  test('an unterminated broken line at the end of an earlier segment stays an error', () => {
    const writer = split();
    const first = writer.segments[0]!;
    writeFileSync(first, `${readFileSync(first, 'utf8')}{"kind":"invoke","cli`);
    assert.throws(() => readHistoryDirectory(writer.dir), (e: unknown) => e instanceof HistoryFormatError && e.file === first && e.line === 3 && /not valid JSON/.test(e.message));
  });
});

describe('HistoryRecorder', () => {
  test('hands each invocation on when it begins, before the operation can complete', () => {
    let now = 100;
    const recorder = new HistoryRecorder({ clock: () => now++ });
    const seen: string[] = [];
    recorder.onInvocation((invocation) => seen.push(`invoke ${JSON.stringify(invocation)}`));
    recorder.onOperation((op) => seen.push(`complete ${op.call}`));
    const { token, call } = recorder.begin(4, putA.request, 'm3');
    assert.deepEqual(seen, [`invoke ${JSON.stringify({ kind: 'invoke', client: 4, call, request: putA.request, member: 'm3' })}`]);
    assert.equal(recorder.inFlightCount, 1);
    recorder.end(token, { client: 4, call, return: now, request: putA.request, response: {} });
    assert.deepEqual(seen.slice(1), [`complete ${call}`]);
    assert.equal(recorder.inFlightCount, 0);
  });

  test('an invocation that cannot be recorded fails begin and leaves nothing in flight', () => {
    const recorder = new HistoryRecorder();
    recorder.onInvocation(() => {
      throw new Error('disk full');
    });
    assert.throws(() => recorder.begin(1, putA.request), /disk full/);
    assert.equal(recorder.inFlightCount, 0);
  });
});
