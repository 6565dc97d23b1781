/**
 * What the later passes of the streaming check (src/checker/stream.ts) read less of: lines that are not
 * operations skipped unparsed, operations the observation pass cannot keep skipped unparsed (PassOptions.skip),
 * and what still makes a later pass fail clearly (a corrupt line, a history that changed), plus the parser's
 * fast path for list reads' key-values.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { checkHistory } from '../../src/checker/check.ts';
import { HistoryFormatError } from '../../src/checker/history-lines.ts';
import { type ElidedKvsFields, elideKvs } from '../../src/checker/kvs-elision.ts';
import { HistoryParser, parseHistory } from '../../src/checker/parse.ts';
import { serializeHistory } from '../../src/checker/serialize.ts';
import { checkHistoryStream, HistoryChangedError, type HistorySource } from '../../src/checker/stream.ts';
import { mayMention } from '../../src/checker/stream-mentions.ts';
import { step } from '../../src/checker/model.ts';
import { initialState, type ModelOptions, type ModelState } from '../../src/checker/model-state.ts';
import { writtenKvsText } from '../../src/checker/written-kvs.ts';
import type { EtcdRequest, EtcdResponse, History, Operation } from '../../src/domain/index.ts';
import { historySource } from '../../src/probes/history-source.ts';
import { get, kvs, op, put, rev, writeSegments } from '../helpers/histories.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-passes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A history with a meta, invoke lines, a watch, a fault and an invocation never completed (the last operation). */
function recorded(): string {
  return [
    JSON.stringify({ kind: 'meta', mode: 'exclusive', initialRevision: 1 }),
    JSON.stringify({ kind: 'invoke', client: 1, call: 10, request: put('/k/a', 'v1') }),
    JSON.stringify({ kind: 'watch', id: 1, client: 9, request: { key: '/k/', end: '/k0', startRevision: 2 } }),
    JSON.stringify(op(1, 10, 20, put('/k/a', 'v1'), rev(2))),
    JSON.stringify({ kind: 'watch', id: 1, response: { time: 21, events: [{ type: 'put', key: '/k/a', value: 'v1', modRevision: 2 }] } }),
    JSON.stringify({ kind: 'fault', id: 1, time: 22, phase: 'inject', fault: 'kill', targets: ['m1'] }),
    JSON.stringify(op(2, 30, 40, get('/k/a'), kvs([{ key: '/k/a', value: 'v1', modRevision: 2, createRevision: 2, version: 1 }], 2))),
    JSON.stringify(op(3, 50, 60, put('/k/b', 'v2'), rev(3))),
    JSON.stringify({ kind: 'invoke', client: 4, call: 70, request: put('/k/c', 'v3') }),
    '',
  ].join('\n');
}

/** Every operation a pass hands out, with its index. */
function collect(source: HistorySource, options?: Parameters<HistorySource['pass']>[1]): { ops: [number, Operation][]; operations: number | undefined } {
  const ops: [number, Operation][] = [];
  const { operations } = source.pass((o, index) => ops.push([index, o]), options);
  return { ops, operations };
}

describe('later passes of historySource', () => {
  test('give the operations of the first pass, at the same indices, the never-completed invocation last', () => {
    const file = path.join(dir, 'recorded.jsonl');
    writeFileSync(file, recorded());
    const source = historySource(file);
    const first = collect(source);
    assert.equal(first.ops.length, 4);
    assert.deepEqual(first.ops.map(([i]) => i), [0, 1, 2, 3]);
    assert.equal(first.ops[3]![1].return, null, 'the invocation never completed is the last operation');
    assert.deepEqual(collect(source, { operationsOnly: true }), first);
    // Skipped operations are not handed out, and still count: the others keep their indices.
    const odd = collect(source, { operationsOnly: true, skip: (index) => index % 2 === 0 });
    assert.deepEqual(odd, { ops: first.ops.filter(([i]) => i % 2 === 1), operations: 4 });
    // The hint sees each operation's own line.
    const seen: string[] = [];
    collect(source, { operationsOnly: true, skip: (_index, text) => seen.push(text) > 0 });
    assert.deepEqual(seen.map((t) => (JSON.parse(t) as Operation).client), [1, 2, 3]);
  });

  test('the same over a segment directory, whose later segments repeat the header', () => {
    const history = parseHistory(recorded());
    const writer = writeSegments(path.join(dir, 'segments'), history, { maxSegmentBytes: 200 });
    const source = historySource(writer.dir);
    const first = collect(source);
    assert.equal(first.ops.length, 4);
    assert.deepEqual(collect(source, { operationsOnly: true }), first);
    assert.deepEqual(collect(source, { operationsOnly: true, skip: (index) => index !== 2 }), { ops: [first.ops[2]!], operations: 4 });
  });

  test('a history whose lines do not all start with their kind: the skip hint is not taken, every operation is parsed', () => {
    // The meta line's kind is not its first field: operation lines cannot be told by their first bytes.
    const text = [JSON.stringify({ mode: 'exclusive', kind: 'meta' }), JSON.stringify(op(1, 10, 20, put('/k/a', 'v1'), rev(2))), ''].join('\n');
    const file = path.join(dir, 'foreign.jsonl');
    writeFileSync(file, text);
    const source = historySource(file);
    const first = collect(source);
    assert.deepEqual(collect(source, { operationsOnly: true, skip: () => true }), first);
  });
});

describe('HistoryParser for later passes', () => {
  test('kindMarked: false once a line that is not an operation does not start with its kind, or a torn last line', () => {
    const marked = new HistoryParser('h', { retainOperations: false });
    for (const line of recorded().split('\n')) marked.line(line);
    assert.equal(marked.kindMarked, true);
    const foreign = new HistoryParser('h');
    foreign.line(JSON.stringify({ seed: 1, kind: 'meta' }));
    assert.equal(foreign.kindMarked, false);
    const torn = new HistoryParser('h');
    torn.line(JSON.stringify(op(1, 10, 20, put('/k/a', 'v1'), rev(2))));
    assert.equal(torn.kindMarked, true);
    torn.line('{"client":2,"ca', { last: true });
    assert.equal(torn.kindMarked, false);
  });

  test('operationsOnly: lines of every kind are skipped unparsed, even broken ones; operation lines are still validated', () => {
    const parser = new HistoryParser('h', { retainOperations: false, operationsOnly: true });
    assert.equal(parser.line('{"kind":"watch","id":1,"response":{not json'), undefined);
    assert.ok(parser.line(JSON.stringify(op(1, 10, 20, put('/k/a', 'v1'), rev(2)))));
    assert.throws(
      () => parser.line(JSON.stringify({ client: 2, call: 30, return: 40, request: put('/k/a', 'v1'), response: { revision: -1 } })),
      (error: unknown) => error instanceof HistoryFormatError && error.message === 'h:3: response.revision must be an integer >= 0, got -1',
    );
  });
});

/** A source over a file that is rewritten after the first pass (a history changed between passes). */
function rewrittenAfterFirstPass(file: string, before: string, afterwards: string): HistorySource {
  writeFileSync(file, before);
  const inner = historySource(file);
  let passes = 0;
  return {
    name: inner.name,
    load: () => inner.load(),
    pass(onOperation, options) {
      const result = inner.pass(onOperation, options);
      if (++passes === 1) writeFileSync(file, afterwards);
      return result;
    },
  };
}

describe('a later pass of the streaming check still fails clearly', () => {
  const unknownWrite: History = {
    meta: { kind: 'meta', mode: 'exclusive', initialRevision: 1 },
    operations: [
      op(1, 10, null, put('/k/a', 'v1')),
      op(2, 30, 40, get('/k/a'), kvs([{ key: '/k/a', value: 'v1', modRevision: 2, createRevision: 2, version: 1 }], 2)),
      op(3, 50, 60, put('/k/b', 'v2'), rev(3)),
    ],
    watches: [],
  };
  const text = serializeHistory(unknownWrite);

  test('the verdict of the unchanged history (its observation pass runs)', () => {
    const file = path.join(dir, 'unknown.jsonl');
    writeFileSync(file, text);
    const report = checkHistoryStream(historySource(file));
    assert.equal(report.verdict, 'linearizable');
    assert.equal(report.passMs.length, 3, 'scan, observations, check');
    assert.deepEqual(report.linearizability.patched, { observed: 1, neverApplied: 0 });
  });

  test('a line corrupted after the first pass: HistoryFormatError naming the file and line', () => {
    const file = path.join(dir, 'corrupted.jsonl');
    const lines = text.split('\n');
    lines[3] = lines[3]!.replace('"revision":3', '"revision":"three"');
    const source = rewrittenAfterFirstPass(file, text, lines.join('\n'));
    assert.throws(
      () => checkHistoryStream(source),
      (error: unknown) => error instanceof HistoryFormatError && error.message === `${file}:4: response.revision must be an integer >= 0, got "three"`,
    );
  });

  test('operations gone after the first pass: HistoryChangedError', () => {
    const file = path.join(dir, 'shrunk.jsonl');
    const source = rewrittenAfterFirstPass(file, text, text.split('\n').slice(0, 3).join('\n'));
    assert.throws(() => checkHistoryStream(source), HistoryChangedError);
  });
});

describe('mayMention: may an operation line mention one of the values', () => {
  const values = new Set(['v1', 'v 2']);
  const line = (o: Operation): string => JSON.stringify(o);

  test('true for a put, a txn compare or a value a read shows; false for none of them', () => {
    assert.equal(mayMention(line(op(1, 1, 2, put('/k/a', 'v1'), rev(2))), values), true);
    assert.equal(mayMention(line(op(1, 1, 2, get('/k/a'), kvs([{ key: '/k/a', value: 'v 2' }], 2))), values), true);
    const txn = op(1, 1, 2, { type: 'txn', compare: [{ key: '/k/a', target: 'value', result: '=', value: 'v1' }], success: [], failure: [] }, { revision: 2, succeeded: false });
    assert.equal(mayMention(line(txn), values), true);
    assert.equal(mayMention(line(op(1, 1, 2, get('/k/a'), kvs([{ key: '/k/a', value: 'v3' }], 2))), values), false);
    assert.equal(mayMention(line(op(1, 1, 2, put('/k/a', 'v1'), rev(2))), new Set()), false);
  });

  test('a key or a compare target spelled "value" is not a value; whitespace around the colon is', () => {
    const compareTarget = op(1, 1, 2, { type: 'txn', compare: [{ key: 'value', target: 'value', result: '=', value: 'v9' }], success: [], failure: [] }, { revision: 2, succeeded: false });
    assert.equal(mayMention(line(compareTarget), new Set(['value', 'v1'])), false);
    assert.equal(mayMention('{"client":1,"call":1,"return":2,"request":{"type":"put","key":"/k/a","value" :\t"v1"}}', values), true);
    assert.equal(mayMention('{"client":1,"call":1,"return":2,"request":{"type":"put","key":"/k/a","value" : 7}}', values), false);
  });

  test('a line with an escape is always parsed (an escape could spell a field name or a value)', () => {
    assert.equal(mayMention('{"client":1,"call":1,"return":2,"request":{"type":"put","key":"/k/a","\\u0076alue":"v1"}}', values), true);
    assert.equal(mayMention(line(op(1, 1, 2, put('/k/"a"', 'v3'), rev(2))), values), true);
  });
});

describe('list reads: key-values parsed without building messages', () => {
  const read = (entries: unknown[]): string => JSON.stringify({ client: 1, call: 1, return: 2, request: { type: 'range', key: '/k/', end: '/k0' }, response: { revision: 5, kvs: entries } });

  test('the same key-values, fields in the same order, as the validating path gives', () => {
    const text = read([
      { key: '/k/a', modRevision: 2, createRevision: 2, version: 1, value: 'v1' },
      { key: '/k/b', value: 'v2', lease: 7, version: 3, modRevision: null },
      { key: '/k/c', lease: '0' },
      { key: '/k/d', lease: 0, value: '' },
      { key: '/k/e', lease: '12345678901234567890' },
    ]);
    const response = parseHistory(text).operations[0]!.response as { kvs: object[] };
    assert.deepEqual(response.kvs, [
      { key: '/k/a', value: 'v1', modRevision: 2, createRevision: 2, version: 1 },
      { key: '/k/b', value: 'v2', version: 3, lease: '7' },
      { key: '/k/c' },
      { key: '/k/d', value: '' },
      { key: '/k/e', lease: '12345678901234567890' },
    ]);
    assert.deepEqual(response.kvs.map((kv) => Object.keys(kv)), [['key', 'value', 'modRevision', 'createRevision', 'version'], ['key', 'value', 'version', 'lease'], ['key'], ['key', 'value'], ['key', 'lease']]);
  });

  test('a key-value that is wrong still gets its message, naming where', () => {
    const cases: [unknown, string][] = [
      [{ key: '/k/a', modRevision: -1 }, 'response.kvs[1].modRevision must be an integer >= 0, got -1'],
      [{ key: '/k/a', value: null }, 'response.kvs[1].value must be a string'],
      [{ key: '/k/a', lease: -3 }, 'response.kvs[1].lease must be a lease id (a non-negative integer or decimal string)'],
      [{ key: '/k/a', lease: '7x' }, 'response.kvs[1].lease must be a lease id (a non-negative integer or decimal string)'],
      [{ key: 3 }, 'response.kvs[1].key must be a string'],
      [{ key: '/k/a', colour: 'red' }, 'unknown field "colour" in response.kvs[1]'],
      ['/k/a', 'response.kvs[1] must be an object'],
    ];
    for (const [kv, problem] of cases) {
      assert.throws(
        () => parseHistory(read([{ key: '/k/0' }, kv]), 'h'),
        (error: unknown) => error instanceof HistoryFormatError && error.message === `h:1: ${problem}`,
        problem,
      );
    }
  });
});

describe('the first pass: kvs arrays validated without being built (onElidedKvs)', () => {
  const writtenRead = (entries: unknown[], extra = ''): string =>
    `{"client":1,"call":1,"return":2,"request":{"type":"range","key":"/k/","end":"/k0"},"response":{"revision":5,"kvs":${JSON.stringify(entries)}${extra}}}`;
  const written = [
    { key: '/k/a', modRevision: 2, createRevision: 2, version: 1, value: 'v1' },
    { key: '/k/b', modRevision: 3, createRevision: 3, version: 1, value: 'v2', lease: '918502541868935703' },
  ];
  const txnRead = JSON.stringify({
    client: 2,
    call: 3,
    return: 4,
    request: { type: 'txn', compare: [], success: [get('/k/a'), put('/k/b', 'v9'), get('/k/b')], failure: [] },
    response: { revision: 6, succeeded: true, results: [{ revision: 6, kvs: [{ key: '/k/a', version: 1, value: 'v1' }] }, { revision: 6 }, { revision: 6, kvs: [] }] },
  });

  /**
   * Each line through a parser with elision and one without: the operation or the error message, and the
   * fields reported. `plain` has its kvs emptied on the lines whose kvs were elided (those it reported).
   */
  function both(lines: string[], last = false): { plain: unknown[]; elided: unknown[]; fields: ElidedKvsFields[] } {
    const fields: ElidedKvsFields[] = [];
    const reported: boolean[] = [];
    const run = (parser: HistoryParser): unknown[] =>
      lines.map((text, i) => {
        const before = fields.length;
        try {
          return parser.line(text, { last: last && i === lines.length - 1 }) ?? null;
        } catch (error) {
          return error instanceof HistoryFormatError ? error.message : error;
        } finally {
          reported[i] = fields.length > before;
        }
      });
    const plain = run(new HistoryParser('h', { retainOperations: false }));
    const elided = run(new HistoryParser('h', { retainOperations: false, onElidedKvs: (f) => fields.push(f) }));
    const empty = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (k, v: unknown) => (k === 'kvs' ? [] : v)));
    return { plain: plain.map((value, i) => (reported[i] === true ? empty(value) : value)), elided, fields };
  }

  test("our writer's list reads and txn results: the same operations with empty kvs, and whether the kvs showed revisions and versions", () => {
    const lines = [writtenRead(written), writtenRead([]), txnRead.replace('"client":2', '"client":3'), writtenRead([{ key: '/k/c', value: 'v3' }]).replace('"client":1', '"client":4')];
    const { plain, elided, fields } = both(lines);
    assert.deepEqual(elided, plain);
    assert.deepEqual((elided[0] as Operation).response, { revision: 5, kvs: [] });
    assert.deepEqual(fields, [
      { revision: true, version: true },
      { revision: false, version: false },
      { revision: false, version: true },
      { revision: false, version: false },
    ]);
  });

  test('other forms are parsed whole: the same operations, nothing elided', () => {
    const lines = [
      writtenRead([{ value: 'v1', key: '/k/a' }]), // another field order
      writtenRead([{ key: '/k/a', modRevision: null }]),
      writtenRead([{ key: '/k/a', modRevision: 1 }]).replace('"modRevision":1', '"modRevision":12345678901234567'), // 17 digits: parsed whole (and refused there)
      writtenRead([{ key: '/k/"a"' }]), // an escape
      JSON.stringify(op(2, 3, 4, put('/k/a', '"kvs":[{"key":"x"}]'), rev(6))), // inside a string
    ];
    const { plain, elided, fields } = both(lines.map((l, i) => l.replace('"client":1', `"client":${i + 10}`)));
    assert.deepEqual(elided, plain);
    assert.deepEqual(fields, []);
    assert.equal(elideKvs(lines[4]!), undefined);
  });

  test('a broken line gives the error it gives parsed whole, naming the line', () => {
    const broken = [
      writtenRead(written, ',"count":-1'),
      writtenRead(written, ',"colour":1'),
      writtenRead(written).slice(0, -1), // torn after the kvs
      writtenRead(written).replace('"revision":5', '"revision":5,'),
      writtenRead(written).replace('"type":"range"', '"type":"put","value":"v"'), // kvs on a put response
      writtenRead(written).replace('"request"', '"kvs":[],"request"'), // kvs at the top
      `{"client":1,"call":1,"return":2,"request":{"type":"range","key":"/k/"},"response":{"kvs":[${JSON.stringify(written[0])},]}}`,
    ];
    for (const line of broken) {
      const { plain, elided, fields } = both([line]);
      assert.equal(typeof plain[0], 'string', line);
      assert.deepEqual(elided, plain, line);
      assert.deepEqual(fields, [], line);
    }
  });

  test('a torn last line is a torn tail as without elision; an invocation and its completion still pair', () => {
    const torn = both([writtenRead(written), writtenRead(written).slice(0, 60)], true);
    assert.deepEqual(torn.elided, torn.plain);
    const invoke = JSON.stringify({ kind: 'invoke', client: 1, call: 1, request: { type: 'range', key: '/k/', end: '/k0' } });
    const paired = both([invoke, writtenRead(written), writtenRead(written).replace('"end":"/k0"', '"end":"/k1"').replace('"call":1,"return":2', '"call":3,"return":4')]);
    assert.deepEqual(paired.elided, paired.plain);
    assert.equal(paired.fields.length, 2);
  });

  test('keepKvValues: the key-values showing those values stay, in their order; the rest of the line is unchanged', () => {
    const entries = [
      { key: '/k/a', modRevision: 2, createRevision: 2, version: 1, value: 'v1' },
      { key: '/k/b', modRevision: 3, createRevision: 3, version: 1, value: 'v2', lease: '7' },
      { key: '/k/c', value: 'v3' },
      { key: '/k/d', modRevision: 5, value: 'v4', lease: null },
    ];
    const text = writtenRead(entries, ',"count":4');
    const parse = (keep: ReadonlySet<string>): unknown => new HistoryParser('h', { onElidedKvs: () => undefined, keepKvValues: keep }).line(text);
    const whole = new HistoryParser('h').line(text)!;
    const expected = (kept: number[]): unknown => ({ ...whole, response: { ...whole.response, kvs: kept.map((i) => (whole.response as { kvs: unknown[] }).kvs[i]) } });
    assert.deepEqual(parse(new Set(['v2', 'v4', 'v9'])), expected([1, 3]));
    assert.deepEqual(parse(new Set(['v1', 'v3'])), expected([0, 2]));
    assert.deepEqual(parse(new Set(['/k/a', 'x'])), expected([])); // a key is not a value
    assert.deepEqual(parse(new Set()), expected([]));
  });

  test('the streaming check gives the same report with the first pass eliding kvs', () => {
    const file = path.join(dir, 'elided.jsonl');
    writeFileSync(file, recorded());
    const report = checkHistoryStream(historySource(file), { keepLinearization: true });
    const whole = checkHistory(parseHistory(recorded()));
    assert.equal(report.mode, 'stream');
    assert.equal(report.verdict, 'linearizable');
    assert.deepEqual(report.linearizability, whole.linearizability);
  });
});

describe('the last pass: list reads keep their key-values as text (lazyKvs), which the model compares', () => {
  const read = (entries: unknown[], request: Record<string, unknown> = { type: 'range', key: '/k/', end: '/k0' }, extra = ''): string =>
    `{"client":1,"call":1,"return":2,"request":${JSON.stringify(request)},"response":{"revision":4,"kvs":${JSON.stringify(entries)}${extra}}}`;
  const a = { key: '/k/a', modRevision: 2, createRevision: 2, version: 1, value: 'v1' };
  const b = { key: '/k/b', modRevision: 4, createRevision: 3, version: 2, value: 'v3', lease: '918502541868935703' };
  const opts: ModelOptions = { mode: 'exclusive', prefix: '', trackRevision: true, trackVersion: true };
  /** The state after put a=v1 (rev 2), grant the lease, put b=v2 (rev 3), put b=v3 with the lease (rev 4). */
  function state(): ModelState {
    let s: ModelState | null = initialState(opts, 1);
    const steps: [EtcdRequest, EtcdResponse][] = [
      [put('/k/a', 'v1'), rev(2)],
      [{ type: 'leaseGrant', id: '918502541868935703', ttl: 60 }, {}],
      [put('/k/b', 'v2'), rev(3)],
      [{ type: 'put', key: '/k/b', value: 'v3', lease: '918502541868935703' }, rev(4)],
    ];
    for (const [request, response] of steps) s = step(s!, request, response, opts);
    assert.ok(s !== null);
    return s;
  }
  const parse = (text: string, lazyKvs: boolean): Operation => new HistoryParser('h', { retainOperations: false, lazyKvs }).line(text)!;
  /** The step of both parses of a line against the state: the same outcome and reason, and whether the text path was taken. */
  function stepBoth(text: string): { ok: boolean; reason: string | undefined; lazyText: boolean } {
    const outcome = (o: Operation): { ok: boolean; reason: string | undefined } => {
      const why = { reason: '' };
      const next = step(state(), o.request, o.response, opts, why);
      return { ok: next !== null, reason: next === null ? why.reason : undefined };
    };
    const lazy = parse(text, true);
    const lazyText = writtenKvsText(lazy.response!) !== undefined;
    const eager = outcome(parse(text, false));
    assert.deepEqual(outcome(lazy), eager, text);
    return { ...eager, lazyText };
  }

  test('the operation is the one parsed whole: same fields, order and JSON, the kvs parsed on first access', () => {
    const lines = [
      read([a, b], undefined, ',"count":2'),
      read([{ key: '/k/a', modRevision: 2, createRevision: 2, version: 1 }], { type: 'range', key: '/k/', end: '/k0', keysOnly: true }),
      read([a], { type: 'range', key: '/k/a' }).replace('"revision":4,', ''),
      // Not the response last: a `]` after the array (the array found by elideKvs instead).
      read([a, b]).replace('"client":1,', '').replace(/\}$/, ',"client":1,"member":"m]"}'),
      read([{ ...a, value: 'v]1' }, b], undefined, ',"count":2'),
      read([{ value: 'v1', key: '/k/a' }]), // another field order: kept as text too (the model then compares it parsed)
      // The recorder's lines: the count and revision after the array, the member before or after the response.
      `{"client":1,"call":1,"return":2,"request":{"type":"range","key":"/k/","end":"/k0"},"member":"m3","response":{"kvs":${JSON.stringify([a, b])},"count":2,"revision":4}}`,
      `{"client":1,"call":1,"return":2,"request":{"type":"range","key":"/k/","end":"/k0"},"response":{"kvs":${JSON.stringify([a, b])},"count":2,"revision":4},"member":"m3"}`,
    ];
    for (const text of lines) {
      const lazy = parse(text, true);
      assert.ok(writtenKvsText(lazy.response!) !== undefined, text);
      const whole = parse(text, false);
      assert.equal(JSON.stringify(lazy), JSON.stringify(whole));
      assert.deepEqual(lazy, whole);
      assert.deepEqual(JSON.parse(`[${writtenKvsText(lazy.response!)!}]`), (JSON.parse(text) as { response: { kvs: unknown } }).response.kvs);
    }
  });

  test('other lines are parsed whole: txn results, escapes, empty arrays, a second kvs field', () => {
    const txn = JSON.stringify({
      client: 1,
      call: 1,
      return: 2,
      request: { type: 'txn', compare: [], success: [get('/k/a')], failure: [] },
      response: { revision: 4, succeeded: true, results: [{ revision: 4, kvs: [a] }] },
    });
    const lines = [txn, read([{ ...a, value: 'v"1' }]), read([]), read([a]).replace('"request":{', '"request":{"kvs":[],')];
    for (const text of lines) {
      const parser = new HistoryParser('h', { retainOperations: false, lazyKvs: true });
      let parsed: unknown;
      try {
        parsed = parser.line(text);
      } catch (error) {
        parsed = (error as Error).message;
      }
      let whole: unknown;
      try {
        whole = new HistoryParser('h', { retainOperations: false }).line(text);
      } catch (error) {
        whole = (error as Error).message;
      }
      assert.deepEqual(parsed, whole, text);
      if (typeof parsed === 'object') assert.equal(writtenKvsText((parsed as Operation).response!), undefined, text);
    }
  });

  test('the model: the text path where the text is the state, and every difference the verdict and reason of the whole comparison', () => {
    assert.deepEqual(stepBoth(read([a, b])), { ok: true, reason: undefined, lazyText: true });
    assert.deepEqual(stepBoth(read([a, b], undefined, ',"count":2')), { ok: true, reason: undefined, lazyText: true });
    assert.equal(stepBoth(read([{ key: '/k/a', modRevision: 2, createRevision: 2, version: 1 }, { key: '/k/b', modRevision: 4, createRevision: 3, version: 2, lease: b.lease }], { type: 'range', key: '/k/', end: '/k0', keysOnly: true })).ok, true);
    // Each one differs from the state: the whole comparison refuses it, with its reason.
    const changed = [
      read([{ ...a, value: 'v0' }, b]),
      read([{ ...a, modRevision: 3 }, b]),
      read([a, { ...b, createRevision: 4 }]),
      read([a, { ...b, version: 3 }]),
      read([a, { ...b, lease: '7' }]),
      read([a]),
      read([b, a]),
      read([a, b, { ...a, key: '/k/c' }]),
      read([a, b], undefined, ',"count":3'),
    ];
    for (const text of changed) {
      const { ok, reason, lazyText } = stepBoth(text);
      assert.equal(lazyText, true, text);
      assert.equal(ok, false, text);
      assert.ok(reason !== undefined && reason.length > 0, text);
    }
    // Text other than the state's rendering that the whole comparison accepts (fields left out are not
    // compared; a keys-only read's values are not): accepted, by the whole comparison.
    const accepted = [
      read([a, { key: b.key, modRevision: 4, createRevision: 3, version: 2, value: 'v3' }]),
      read([{ key: '/k/a', value: 'v1' }, { key: '/k/b', value: 'v3', lease: b.lease }]),
      read([a, b], { type: 'range', key: '/k/', end: '/k0', keysOnly: true }),
    ];
    for (const text of accepted) assert.deepEqual(stepBoth(text), { ok: true, reason: undefined, lazyText: true }, text);
  });

  test('key-values that no longer parse (a line the first pass did not read) are an error naming the line, never a match', () => {
    const text = read([a, b]).replace('"version":1,', '"version":1,,');
    const lazy = new HistoryParser('h', { retainOperations: false, lazyKvs: true }).line(text)!;
    assert.ok(writtenKvsText(lazy.response!) !== undefined);
    assert.throws(() => step(state(), lazy.request, lazy.response, opts), (error: unknown) => error instanceof HistoryFormatError && /h:1: .*the history changed/.test(error.message));
  });

  test("a key state's rendering is cached out of sight: no spread, clone or JSON of the state carries it to another", () => {
    const s = state();
    const before = { ...s.keys.get('/k/a')! };
    const o = parse(read([a, b]), true);
    assert.ok(step(s, o.request, o.response, opts) !== null);
    const k = s.keys.get('/k/a')!;
    assert.ok((k as { rendered?: unknown }).rendered !== undefined, 'the text path rendered the key');
    assert.deepEqual({ ...k }, before);
    assert.deepEqual(structuredClone(k), before);
    assert.equal(JSON.stringify(k), JSON.stringify(before));
  });
});
