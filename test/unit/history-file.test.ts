import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { HistoryFormatError } from '../../src/checker/history-lines.ts';
import { parseHistory } from '../../src/checker/parse.ts';
import { serializeHistory, serializeWatchResponseLine } from '../../src/checker/serialize.ts';
import type { FaultEvent, History, HistoryMeta, Operation, WatchResponse, WatchStream } from '../../src/domain/index.ts';
import { readHistoryDirectory } from '../../src/probes/history-segment-reader.ts';
import { HistoryDirectoryError } from '../../src/probes/history-segments.ts';
import { HistoryFileWriter, HistoryWriteError, type HistoryFileWriterOptions } from '../../src/probes/history-writer.ts';
import { seededRandom } from '../../src/random.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-history-file-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `h${++dirs}`);

/** Seeded, so failures reproduce. */
const random = seededRandom;

const meta: HistoryMeta = { kind: 'meta', seed: 7, cluster: 'default/main', mode: 'exclusive', prefix: '/k/' };

/** Operations on 8 clients (multi-byte values, so sizes are counted in bytes), some with unknown outcomes. */
function operations(count: number, rand: () => number): Operation[] {
  const ops: Operation[] = [];
  let nextClient = 8;
  const clients = [0, 1, 2, 3, 4, 5, 6, 7];
  for (let i = 0; i < count; i++) {
    const slot = i % clients.length;
    const client = clients[slot]!;
    const call = i * 100;
    const key = `/k/${Math.floor(rand() * 5)}`;
    if (rand() < 0.1) {
      ops.push({ client, call, return: null, request: { type: 'put', key, value: `värde-${i}` } });
      clients[slot] = nextClient++; // a client continues under a new id after an unknown outcome
    } else if (rand() < 0.5) {
      ops.push({ client, call, return: call + 50, request: { type: 'put', key, value: `värde-${i}` }, response: { revision: i + 2 } });
    } else {
      ops.push({ client, call, return: call + 50, request: { type: 'range', key }, response: { revision: i + 2, kvs: [{ key, value: `v${i}`, modRevision: i + 1 }] } });
    }
  }
  return ops;
}

function watchResponse(i: number, canceled: boolean): WatchResponse {
  if (canceled) return { time: i * 100 + 1, events: [], canceled: true, error: 'member lost' };
  if (i % 4 === 0) return { time: i * 100 + 1, revision: i + 1, events: [], progress: true };
  const events = [{ type: 'put' as const, key: `/k/${i % 5}`, value: `värde-${i}`, modRevision: i + 1, createRevision: 2, version: i, isCreate: false, prevKV: { key: `/k/${i % 5}`, value: 'old', modRevision: 2 } }];
  return { time: i * 100 + 1, revision: i + 1, events };
}

type Step = { op: Operation } | { open: WatchStream } | { response: [number, WatchResponse] } | { fault: FaultEvent };

interface Generated {
  history: History;
  /** The order the lines are handed to the writer: operations and watch lines interleaved. */
  steps: Step[];
}

/** Fault lines at operation i: every 40 operations a delay (healed 10 later) or a kill (verified 5 later). */
function faultEvents(i: number, time: number): FaultEvent[] {
  const id = Math.floor(i / 40) + 1;
  const kill = id % 2 === 0;
  const fault = kill ? 'kill' : 'delay';
  if (i % 40 === 0) {
    return [{ kind: 'fault', id, time, phase: 'inject', fault, targets: kill ? ['m2'] : ['m1', 'm3'], ...(kill ? {} : { params: { delayMs: 75, jitterMs: 50 } }) }];
  }
  if (i % 40 === (kill ? 5 : 10)) return [{ kind: 'fault', id, time, phase: kill ? 'verified' : 'heal', fault, targets: kill ? ['m2'] : ['m1', 'm3'], detail: kill ? 'restarted, healthy' : 'rules removed' }];
  return [];
}

/**
 * Three watch streams: 1 open throughout, 2 opened midway, 3 canceled midway (so later segments must not
 * re-open it), and fault lines. Lines are interleaved the way a run produces them.
 */
function generate(count: number, seed: number): Generated {
  const rand = random(seed);
  const ops = operations(count, rand);
  const streams: WatchStream[] = [
    { id: 1, client: 100, member: 'm1', request: { key: '/k/', end: '/k0', startRevision: 1, progressNotify: true, prevKV: true }, responses: [] },
    { id: 2, member: 'm2', request: { key: '/k/1' }, responses: [] },
    { id: 3, client: 101, request: { key: '/k/', end: '/k0', startRevision: 5 }, responses: [] },
  ];
  const openAt = new Map([
    [0, streams[0]!],
    [Math.floor(count / 2), streams[1]!],
    [Math.floor(count / 5), streams[2]!],
  ]);
  const cancelAt = Math.floor(count / 2);
  const open: WatchStream[] = [];
  const steps: Step[] = [];
  const faults: FaultEvent[] = [];
  ops.forEach((op, i) => {
    for (const fault of faultEvents(i, op.call)) {
      faults.push(fault);
      steps.push({ fault });
    }
    const opening = openAt.get(i);
    if (opening) {
      open.push(opening);
      steps.push({ open: opening });
    }
    steps.push({ op });
    for (const stream of open) {
      if (stream.responses.at(-1)?.canceled === true || rand() < 0.6) continue;
      const response = watchResponse(i, stream.id === 3 && i >= cancelAt);
      stream.responses.push(response);
      steps.push({ response: [stream.id, response] });
    }
  });
  const watches = [streams[0]!, streams[2]!, streams[1]!]; // in the order they were opened
  return { history: { meta, operations: ops, watches, faults }, steps };
}

function write(dir: string, generated: Generated, options: HistoryFileWriterOptions): HistoryFileWriter {
  const writer = HistoryFileWriter.open(dir, options);
  if (generated.history.meta) writer.writeMeta(generated.history.meta);
  for (const step of generated.steps) {
    if ('op' in step) writer.writeOperation(step.op);
    else if ('open' in step) writer.openWatch(step.open);
    else if ('fault' in step) writer.writeFault(step.fault);
    else writer.writeWatchResponse(...step.response);
  }
  writer.close();
  return writer;
}

const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
const isHeaderLine = (line: string): boolean => line.startsWith('{"kind":"meta"') || (line.startsWith('{"kind":"watch"') && line.includes('"request"'));

/** The header of a later segment: its leading meta and re-opening lines. */
function headerOf(file: string): string[] {
  const all = lines(file);
  const end = all.findIndex((l) => !isHeaderLine(l));
  return end === -1 ? all : all.slice(0, end);
}

describe('HistoryFileWriter and readHistoryDirectory', () => {
  const generated = generate(400, 1);

  test('the generated history is canonical (what the parser returns for its own serialization)', () => {
    assert.ok((generated.history.faults?.length ?? 0) >= 10);
    assert.deepEqual(parseHistory(serializeHistory(generated.history)), generated.history);
  });

  test('fault lines: kind first, kept across segments (not repeated in headers), absent from a history without them', () => {
    const dir = freshDir();
    const writer = write(dir, generated, { maxSegmentBytes: 2000 });
    const faultLines = writer.segments.flatMap(lines).filter((l) => l.includes('"kind":"fault"'));
    assert.equal(faultLines.length, generated.history.faults?.length);
    for (const line of faultLines) assert.ok(line.startsWith('{"kind":"fault","id":'), line);
    assert.deepEqual(readHistoryDirectory(dir).faults, generated.history.faults);
    assert.equal('faults' in parseHistory(serializeHistory({ meta, operations: [], watches: [] })), false);
  });

  test('round trip: a history written into many small segments reads back equal', () => {
    const dir = freshDir();
    const writer = write(dir, generated, { maxSegmentBytes: 2000 });
    assert.ok(writer.segments.length > 20, `only ${writer.segments.length} segments`);
    assert.deepEqual(readHistoryDirectory(dir), generated.history);
  });

  test('segments are numbered from 000001, stay within the limit and rotate only when the next line would not fit', () => {
    const dir = freshDir();
    const max = 2000;
    const writer = write(dir, generated, { maxSegmentBytes: max });
    const names = readdirSync(dir).sort();
    assert.deepEqual(names, writer.segments.map((s) => path.basename(s)));
    names.forEach((name, i) => assert.equal(name, `history-${String(i + 1).padStart(6, '0')}.jsonl`));
    let total = 0;
    writer.segments.forEach((file, i) => {
      const size = statSync(file).size;
      total += size;
      const body = lines(file).length - (i === 0 ? 1 : headerOf(file).length);
      if (size > max) assert.equal(body, 1, `${file} is ${size} bytes with ${body} lines besides the header`);
      const next = writer.segments[i + 1];
      if (next !== undefined) {
        const firstBody = lines(next)[headerOf(next).length]!;
        assert.ok(size + Buffer.byteLength(firstBody) + 1 > max, `${file} (${size} bytes) had room for the next line`);
      }
    });
    assert.equal(writer.bytesWritten, total);
    assert.equal(writer.linesWritten, writer.segments.reduce((n, file) => n + lines(file).length, 0));
  });

  test('a line larger than the limit gets a segment of its own', () => {
    const small = generate(60, 2);
    const dir = freshDir();
    const writer = write(dir, small, { maxSegmentBytes: 1 });
    assert.equal(writer.segments.length, small.steps.length);
    assert.deepEqual(readHistoryDirectory(dir), small.history);
  });

  test("a watch response's line is exactly JSON.stringify of { kind: 'watch', id, response }", () => {
    const text = fc.string({ unit: 'binary' });
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.double()), fc.nat(200), fc.boolean(), text, (id, i, canceled, key) => {
        const response = watchResponse(i, canceled);
        for (const event of response.events) event.key = key;
        assert.equal(serializeWatchResponseLine(id, response), JSON.stringify({ kind: 'watch', id, response }));
      }),
    );
  });

  test('lines around and beyond the 1 MiB write buffer reach the file whole and in order', () => {
    const dir = freshDir();
    const writer = HistoryFileWriter.open(dir);
    writer.writeMeta(meta);
    // Values of 0.3 MiB fill the buffer unevenly; one of 1.5 MiB (multi-byte) is larger than the buffer itself.
    const sizes = [10, 300_000, 300_000, 300_000, 300_000, 1_500_000, 10, 300_000, 20];
    const ops: Operation[] = sizes.map((size, i) => ({
      client: 0,
      call: i * 10,
      return: i * 10 + 5,
      request: { type: 'put', key: `/k/${i}`, value: 'ä'.repeat(size / 2) },
      response: { revision: i + 2 },
    }));
    for (const op of ops) writer.writeOperation(op);
    writer.close();
    assert.equal(statSync(writer.segments[0]!).size, writer.bytesWritten);
    assert.deepEqual(readHistoryDirectory(dir), { meta, operations: ops, watches: [] });
  });

  test('keeps up with 10k+ lines/s (20k operations within 2 s, fsync included)', () => {
    const ops = operations(20_000, random(3));
    const started = performance.now();
    const writer = HistoryFileWriter.open(freshDir(), { maxSegmentBytes: 256 * 1024 });
    writer.writeMeta(meta);
    for (const op of ops) writer.writeOperation(op);
    writer.close();
    const ms = performance.now() - started;
    assert.ok(ms < 2000, `${ms} ms`);
    assert.equal(writer.linesWritten, 20_000 + writer.segments.length);
  });

  test('every segment repeats the meta and re-opens the streams still open, so it parses on its own', () => {
    const dir = freshDir();
    const writer = write(dir, generated, { maxSegmentBytes: 2000 });
    const reopened = new Set<number>();
    for (const file of writer.segments) {
      const alone = parseHistory(readFileSync(file, 'utf8'), file);
      assert.deepEqual(alone.meta, meta);
      for (const line of headerOf(file).slice(1)) reopened.add((JSON.parse(line) as { id: number }).id);
    }
    assert.deepEqual([...reopened].sort(), [1, 2, 3]);
    // Stream 3 was canceled halfway: the last segment no longer re-opens it.
    const last = writer.segments.at(-1)!;
    assert.deepEqual(headerOf(last).slice(1).map((l) => (JSON.parse(l) as { id: number }).id), [1, 2]);
  });

  test('one segment holds exactly what serializeHistory writes', () => {
    const dir = freshDir();
    const writer = HistoryFileWriter.open(dir);
    const { history } = generated;
    writer.writeMeta(meta);
    for (const op of history.operations) writer.writeOperation(op);
    for (const stream of history.watches) {
      writer.openWatch(stream);
      for (const response of stream.responses) writer.writeWatchResponse(stream.id, response);
    }
    for (const event of history.faults ?? []) writer.writeFault(event);
    writer.close();
    assert.equal(readFileSync(writer.segments[0]!, 'utf8'), serializeHistory(history));
  });

  test('lines are buffered, flushed within ~100 ms, and close() writes the rest', async () => {
    const dir = freshDir();
    const writer = HistoryFileWriter.open(dir);
    const file = writer.segments[0]!;
    writer.writeMeta(meta);
    for (const op of generated.history.operations.slice(0, 100)) writer.writeOperation(op);
    assert.equal(statSync(file).size, 0, 'nothing reaches the file synchronously');
    await sleep(250);
    assert.equal(statSync(file).size, writer.bytesWritten, 'the timer flushed');
    for (const op of generated.history.operations.slice(100)) writer.writeOperation(op);
    writer.close();
    writer.close(); // idempotent
    assert.equal(statSync(file).size, writer.bytesWritten);
    assert.deepEqual(readHistoryDirectory(dir), { meta, operations: generated.history.operations, watches: [] });
    assert.throws(() => writer.writeOperation(generated.history.operations[0]!), /closed/);
  });

  test('maxSegments deletes the oldest; reading the rest needs allowSuffix and re-opened streams make it readable', () => {
    const dir = freshDir();
    const writer = write(dir, generated, { maxSegmentBytes: 2000, maxSegments: 3 });
    assert.equal(readdirSync(dir).length, 3);
    assert.deepEqual(writer.segments.map((s) => path.basename(s)), readdirSync(dir).sort());
    assert.ok(writer.deletedSegments.length > 10);
    assert.equal(path.basename(writer.deletedSegments[0]!), 'history-000001.jsonl');
    assert.throws(() => readHistoryDirectory(dir), (e: unknown) => e instanceof HistoryDirectoryError && /history-000001\.jsonl to .* were deleted/.test(e.message));
    const suffix = readHistoryDirectory(dir, { allowSuffix: true });
    const { operations: ops, watches } = generated.history;
    assert.ok(suffix.operations.length > 0);
    assert.deepEqual(suffix.operations, ops.slice(ops.length - suffix.operations.length));
    assert.deepEqual(suffix.meta, meta);
    // Stream 1 was opened in the first (deleted) segment, and its later responses are all there.
    const stream1 = suffix.watches.find((w) => w.id === 1)!;
    const all1 = watches.find((w) => w.id === 1)!;
    assert.deepEqual({ ...stream1, responses: [] }, { ...all1, responses: [] });
    assert.deepEqual(stream1.responses, all1.responses.slice(all1.responses.length - stream1.responses.length));
  });

  test('a directory that cannot be created is a HistoryWriteError naming it', () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, '');
    const dir = path.join(file, 'history');
    assert.throws(
      () => HistoryFileWriter.open(dir),
      (e: unknown) => e instanceof HistoryWriteError && e.path === dir && e.message.startsWith(`${dir}: cannot create the history directory:`),
    );
  });

  test('a directory that already holds a history is refused', () => {
    const dir = freshDir();
    write(dir, generated, {});
    assert.throws(() => HistoryFileWriter.open(dir), (e: unknown) => e instanceof HistoryWriteError && /already holds history-000001\.jsonl/.test(e.message));
  });

  test('a segment that cannot be created fails the writer with the file named, and close() reports it', () => {
    const dir = freshDir();
    const writer = HistoryFileWriter.open(dir, { maxSegmentBytes: 300 });
    const blocked = path.join(dir, 'history-000002.jsonl');
    mkdirSync(blocked); // 'wx' refuses to create the segment over it
    writer.writeMeta(meta);
    const write200 = (): void => {
      for (const op of generated.history.operations) writer.writeOperation(op);
    };
    const named = (e: unknown): boolean => e instanceof HistoryWriteError && e.path === blocked && /cannot create the segment/.test(e.message);
    assert.throws(write200, named);
    assert.throws(write200, named, 'every later call reports the same failure');
    assert.throws(() => writer.close(), named);
  });

  test('misuse is rejected: meta after other lines, a response for an unopened watch, a watch opened twice', () => {
    const writer = HistoryFileWriter.open(freshDir());
    writer.writeOperation(generated.history.operations[0]!);
    assert.throws(() => writer.writeMeta(meta), /before any other line/);
    assert.throws(() => writer.writeWatchResponse(9, { time: 1, events: [] }), /watch 9 was never opened/);
    writer.openWatch({ id: 9, request: { key: 'a' }, responses: [] });
    assert.throws(() => writer.openWatch({ id: 9, request: { key: 'a' }, responses: [] }), /watch 9 is already open/);
    assert.throws(() => HistoryFileWriter.open(freshDir(), { maxSegmentBytes: 0 }), RangeError);
    writer.close();
  });

  describe('read errors name the segment and its line', () => {
    const segmented = (): HistoryFileWriter => write(freshDir(), generated, { maxSegmentBytes: 2000 });

    test('a corrupt line in segment 2', () => {
      const writer = segmented();
      const file = writer.segments[1]!;
      const content = lines(file);
      content[4] = '{"client": 1, "call": ';
      writeFileSync(file, `${content.join('\n')}\n`);
      assert.throws(
        () => readHistoryDirectory(writer.dir),
        (e: unknown) => e instanceof HistoryFormatError && e.file === file && e.line === 5 && /history-000002\.jsonl:5: not valid JSON/.test(e.message),
      );
    });

    test('a different meta in a later segment', () => {
      const writer = segmented();
      const file = writer.segments[2]!;
      const content = lines(file);
      content[0] = JSON.stringify({ ...meta, seed: 8 });
      writeFileSync(file, `${content.join('\n')}\n`);
      assert.throws(
        () => readHistoryDirectory(writer.dir),
        (e: unknown) => e instanceof HistoryFormatError && e.file === file && e.line === 1 && /meta line differs from .*history-000001\.jsonl:1/.test(e.message),
      );
    });

    test('a client overlap across segments names both places', () => {
      const dir = freshDir();
      const writer = HistoryFileWriter.open(dir, { maxSegmentBytes: 200 });
      writer.writeMeta(meta);
      writer.writeOperation({ client: 1, call: 0, return: null, request: { type: 'put', key: 'a', value: '1' } });
      for (let i = 0; i < 5; i++) writer.writeOperation({ client: 2 + i, call: 10, return: 20, request: { type: 'put', key: 'b', value: '1' }, response: {} });
      // Larger than the limit, so it starts the last segment, right after the meta.
      writer.writeOperation({ client: 1, call: 30, return: 40, request: { type: 'put', key: 'a', value: 'x'.repeat(300) }, response: {} });
      writer.close();
      const last = writer.segments.at(-1)!;
      assert.throws(
        () => readHistoryDirectory(dir),
        (e: unknown) => e instanceof HistoryFormatError && e.file === last && e.line === 2 && /\(.*history-000001\.jsonl:2\)/.test(e.message),
      );
    });

    test('a missing directory, an empty one and a missing segment', () => {
      assert.throws(() => readHistoryDirectory(path.join(root, 'nope')), (e: unknown) => e instanceof HistoryDirectoryError && /nope: cannot read the history directory/.test(e.message));
      const empty = freshDir();
      mkdirSync(empty);
      assert.throws(() => readHistoryDirectory(empty), (e: unknown) => e instanceof HistoryDirectoryError && /no history segments/.test(e.message));
      const writer = segmented();
      unlinkSync(writer.segments[1]!);
      assert.throws(() => readHistoryDirectory(writer.dir), /history-000002\.jsonl is missing/);
    });
  });
});
