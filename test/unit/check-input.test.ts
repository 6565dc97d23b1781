/**
 * Inputs `check` used to mishandle (issue #16, item 7 and the input half of item 3): an empty history
 * passed, unknown fields were ignored, binary input reached the terminal raw, a zero timeout was
 * accepted, and FIFOs and devices hung or grew without bound.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { checkHistory } from '../../src/checker/check.ts';
import { HistoryFormatError } from '../../src/checker/history-lines.ts';
import { parseHistory } from '../../src/checker/parse.ts';
import { serializeHistory } from '../../src/checker/serialize.ts';

const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-check-input-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function check(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, 'check', ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const put = { client: 1, call: 0, return: 10, request: { type: 'put', key: 'x', value: '1' }, response: { revision: 2 } };

function parseError(lines: unknown[]): HistoryFormatError {
  // Each line ends with its newline: a malformed last line without one would be a crash's torn line.
  const text = `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`;
  try {
    parseHistory(text, 'h.jsonl');
  } catch (error) {
    assert.ok(error instanceof HistoryFormatError, String(error));
    return error;
  }
  assert.fail('the history was accepted');
}

/** Printable ASCII (and newlines, tabs) only. */
const printable = /^[\x20-\x7e\n\t]*$/;

describe('an empty history', () => {
  test('checkHistory calls a history without operations inconclusive, not linearizable', () => {
    const report = checkHistory({ meta: { kind: 'meta', mode: 'exclusive' }, operations: [], watches: [] });
    assert.equal(report.verdict, 'inconclusive');
    assert.equal(report.linearizability.inconclusive, 'the history has no operations');
  });

  test('check of an empty file and of a meta-only file exits 2 and says why', async () => {
    const empty = path.join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    const metaOnly = path.join(dir, 'meta-only.jsonl');
    writeFileSync(metaOnly, '{"kind":"meta","mode":"exclusive"}\n');
    const r = await check([empty, metaOnly]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const line of lines) assert.match(line, /\tinconclusive\t0 operations\t.*\tthe history has no operations$/);
  });
});

describe('unknown fields', () => {
  test('an unknown field of an operation line is rejected with FILE:LINE and its name', () => {
    const error = parseError([put, { ...put, client: 2, call: 20, return: 30, colour: 'red' }]);
    assert.equal(error.message, 'h.jsonl:2: unknown field "colour" in an operation line');
  });

  test('unknown fields are rejected in every line kind and nested object', () => {
    const cases: [unknown, RegExp][] = [
      [{ kind: 'meta', mode: 'exclusive', sed: 1 }, /^h\.jsonl:1: unknown field "sed" in the meta line$/],
      [{ ...put, request: { ...put.request, ttl: 5 } }, /^h\.jsonl:1: unknown field "ttl" in request$/],
      [{ ...put, response: { revision: 2, prevKv: {} } }, /^h\.jsonl:1: unknown field "prevKv" in response \(of a put\)$/],
      [{ ...put, response: { error: 'x', revision: 2 } }, /^h\.jsonl:1: unknown field "revision" in response$/],
      [{ kind: 'watch', id: 1, request: { key: 'x', filters: [] } }, /^h\.jsonl:1: unknown field "filters" in request$/],
      [{ kind: 'watch', id: 1, request: { key: 'x' }, extra: true }, /^h\.jsonl:1: unknown field "extra" in a watch line$/],
      [{ kind: 'fault', id: 1, time: 0, phase: 'inject', fault: 'kill', targets: [], when: 3 }, /^h\.jsonl:1: unknown field "when" in a fault line$/],
      [
        { client: 1, call: 0, return: 1, request: { type: 'range', key: 'x' }, response: { kvs: [{ key: 'x', valu: '1' }] } },
        /^h\.jsonl:1: unknown field "valu" in response\.kvs\[0\]$/,
      ],
    ];
    for (const [line, expected] of cases) assert.match(parseError([line]).message, expected);
  });

  test('every field the writer emits is still accepted (a full round trip)', () => {
    const history = parseHistory(
      [
        { kind: 'meta', seed: 7, cluster: 'c', profile: 'p', startTime: 't', prefix: '/p/', mode: 'shared', initialRevision: 3 },
        { ...put, member: 'm1', error: 'e', request: { type: 'put', key: 'x', value: '1', lease: '5' } },
        { client: 2, call: 20, return: 30, request: { type: 'range', key: 'x', end: 'y', revision: 2, limit: 1, keysOnly: false, serializable: true }, response: { revision: 2, count: 1, kvs: [{ key: 'x', value: '1', modRevision: 2, createRevision: 2, version: 1, lease: '5' }] } },
        { client: 3, call: 40, return: null, request: { type: 'txn', compare: [{ key: 'x', target: 'mod', result: '=', value: 2 }], success: [{ type: 'delete', key: 'x', end: 'y' }], failure: [] } },
        { kind: 'watch', id: 1, client: 9, member: 'm2', request: { key: 'x', end: 'y', startRevision: 1, progressNotify: true, prevKV: true } },
        { kind: 'watch', id: 1, response: { time: 5, revision: 2, events: [{ type: 'put', key: 'x', value: '1', modRevision: 2, createRevision: 2, version: 1, isCreate: true, prevKV: { key: 'x', value: '0', modRevision: 1 } }], progress: false, canceled: true, compactRevision: 1, error: 'e' } },
        { kind: 'fault', id: 1, time: 0, phase: 'failed', fault: 'kill', targets: ['m1'], params: { a: 1 }, detail: 'd' },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
    assert.deepEqual(parseHistory(serializeHistory(history)), history);
  });
});

describe('binary input in errors', () => {
  test('random bytes give a short, printable error naming the line', async () => {
    // Deterministic bytes (all 256 values, shuffled by a fixed step) and fresh random ones, like /dev/urandom.
    const fixed = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 167 + 13) % 256));
    for (const [name, bytes] of [['fixed.bin', fixed], ['random.bin', randomBytes(1 << 16)]] as const) {
      const file = path.join(dir, name);
      writeFileSync(file, bytes);
      const r = await check([file]);
      assert.equal(r.code, 64, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: `));
      assert.match(r.stderr, printable, JSON.stringify(r.stderr));
      assert.ok(r.stderr.length < 400, `${r.stderr.length} characters: ${JSON.stringify(r.stderr)}`);
    }
  });

  test('control characters and long strings inside a valid JSON line are escaped and cut', () => {
    const evil = `\u001b[2J\u0000${'A'.repeat(10_000)}`;
    const messages = [
      parseError([{ ...put, request: { type: evil, key: 'x' } }]).message,
      parseError([{ ...put, [evil]: 1 }]).message,
      parseError([{ kind: evil }]).message,
      parseError([`{"client": 1, "call": "\u0007${'B'.repeat(5000)}`]).message,
      parseError([{ ...put, call: evil }]).message,
    ];
    for (const message of messages) {
      assert.match(message, printable, message);
      assert.ok(message.length < 400, message);
    }
    assert.match(messages[0]!, /"\\u001b\[2J\\u0000AAAA/);
  });
});

describe('option and file checks', () => {
  test('--timeout must be positive (exit 64, naming the option)', async () => {
    const file = path.join(dir, 'one.jsonl');
    writeFileSync(file, `${JSON.stringify(put)}\n`);
    for (const value of ['0s', '0ms', '0h']) {
      const r = await check(['--timeout', value, file]);
      assert.equal(r.code, 64, r.stdout + r.stderr);
      assert.match(r.stderr, /--timeout: must be positive/);
    }
  });

  test('a FIFO and a device are refused at once (exit 64), not read forever', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await check([fifo, '/dev/zero']);
    assert.equal(r.code, 64, r.stdout + r.stderr);
    assert.match(r.stderr, /fifo: not a regular file or a directory \(a FIFO\)/);
    assert.match(r.stderr, /\/dev\/zero: not a regular file or a directory \(a character device\)/);
  });

  test('a segment that is a FIFO is refused too, without hanging', async () => {
    const segments = path.join(dir, 'segments');
    mkdirSync(segments);
    execFileSync('mkfifo', [path.join(segments, 'history-000001.jsonl')]);
    const r = await check([segments]);
    assert.equal(r.code, 64, r.stdout + r.stderr);
    assert.match(r.stderr, /segments: cannot read history-000001\.jsonl: .*not a regular file \(a FIFO\)/);
  });
});
