import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseHistory } from '../../src/checker/parse.ts';
import { writeSegments } from '../helpers/histories.ts';

const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: unknown[]): string {
  const p = path.join(dir, name);
  writeFileSync(p, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return p;
}

const putX = { client: 1, call: 0, return: 10, request: { type: 'put', key: 'x', value: '1' }, response: { revision: 2 } };
const ok = file('ok.jsonl', [{ kind: 'meta', mode: 'exclusive' }, putX, { client: 2, call: 20, return: 30, request: { type: 'range', key: 'x' }, response: { revision: 2, kvs: [{ key: 'x', value: '1' }] } }]);
const lost = file('lost.jsonl', [putX, { client: 2, call: 20, return: 30, request: { type: 'range', key: 'x' }, response: { revision: 2, kvs: [] } }]);
const malformed = file('malformed.jsonl', [putX, '{"client": 2, "call": 20, "return": 30, "request": {"type": "get", "key": "x"}, "response": {}}']);
const broken = file('broken.jsonl', [putX, '{"client": 2, "call": ']);

/** The history in `source` rewritten by HistoryFileWriter as a directory of several small segments. */
function segmented(name: string, source: string): string {
  const history = parseHistory(readFileSync(source, 'utf8'), source);
  const writer = writeSegments(path.join(dir, name), history, { maxSegmentBytes: 200 });
  assert.ok(writer.segments.length > 1);
  return writer.dir;
}

// A history with a watch stream, so the directory's segments re-open it.
const watched = file('watched.jsonl', [
  { kind: 'meta', mode: 'exclusive' },
  { kind: 'watch', id: 1, client: 9, request: { key: 'x', startRevision: 1, prevKV: true } },
  putX,
  { kind: 'watch', id: 1, response: { time: 12, revision: 2, events: [{ type: 'put', key: 'x', value: '1', modRevision: 2, createRevision: 2, version: 1, isCreate: true }] } },
  { client: 2, call: 20, return: 30, request: { type: 'range', key: 'x' }, response: { revision: 2, kvs: [{ key: 'x', value: '1', modRevision: 2 }] } },
  { client: 3, call: 40, return: 50, request: { type: 'put', key: 'x', value: '2' }, response: { revision: 3 } },
  { kind: 'watch', id: 1, response: { time: 52, revision: 3, events: [{ type: 'put', key: 'x', value: '2', modRevision: 3, createRevision: 2, version: 2, isCreate: false, prevKV: { key: 'x', value: '1', modRevision: 2 } }] } },
]);

/** The verdict line without the path and the time taken, which differ between a file and its directory. */
const verdictOf = (line: string): string[] => line.split('\t').filter((_, i) => i !== 0 && i !== 3);

async function check(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, 'check', ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    return error as { code: number; stdout: string; stderr: string };
  }
}

describe('etcd-robustness check', () => {
  test('prints one line per file and exits 0 when every file is linearizable', async () => {
    const r = await check([ok, ok]);
    assert.equal(r.code, 0);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /ok\.jsonl\tlinearizable\t2 operations\t[\d.]+ ms/);
  });

  test('exits 1 on a violation and says why', async () => {
    const r = await check([ok, lost]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /lost\.jsonl\tviolation\t2 operations.*expected 1 keys/);
  });

  test('reports a malformed line as FILE:LINE and exits 64', async () => {
    const r = await check([malformed]);
    assert.equal(r.code, 64);
    assert.match(r.stderr, new RegExp(`${malformed.replace(/[.]/g, '\\.')}:2: request\\.type must be one of range`));
    const j = await check([broken]);
    assert.equal(j.code, 64);
    assert.match(j.stderr, /broken\.jsonl:2: not valid JSON/);
  });

  test('a missing file is an input error naming it', async () => {
    const r = await check([path.join(dir, 'nope.jsonl')]);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /nope\.jsonl: cannot read/);
  });

  test('--json prints the results as JSON and --report writes HTML reports', async () => {
    const reports = path.join(dir, 'reports');
    const r = await check(['--json', '--report', reports, ok, lost]);
    assert.equal(r.code, 1);
    const parsed = JSON.parse(r.stdout) as { file: string; verdict: string; operations: number; report: string }[];
    assert.deepEqual(
      parsed.map((p) => [path.basename(p.file), p.verdict, p.operations]),
      [
        ['ok.jsonl', 'linearizable', 2],
        ['lost.jsonl', 'violation', 2],
      ],
    );
    assert.ok(existsSync(path.join(reports, 'lost.html')));
    assert.match(readFileSync(path.join(reports, 'lost.html'), 'utf8'), /unplaceable/);
  });

  test('a directory of segments is checked as one history: one line, the same verdict as the single file', async () => {
    const watchedDir = segmented('watched-segments', watched);
    const lostDir = segmented('lost-segments', lost);
    const files = await check([watched, lost]);
    const dirs = await check([watchedDir, lostDir]);
    assert.equal(files.code, 1);
    assert.equal(dirs.code, 1);
    const fileLines = files.stdout.trim().split('\n');
    const dirLines = dirs.stdout.trim().split('\n');
    assert.equal(dirLines.length, 2);
    assert.match(dirLines[0]!, /watched-segments\tlinearizable\t3 operations/);
    assert.match(dirLines[1]!, /lost-segments\tviolation\t2 operations/);
    assert.deepEqual(dirLines.map(verdictOf), fileLines.map(verdictOf));
    const json = await check(['--json', watchedDir]);
    assert.equal(json.code, 0);
    assert.equal((JSON.parse(json.stdout) as { watchViolations: number }[])[0]!.watchViolations, 0);
  });

  test('an empty directory is an input error (exit 64) that says what is missing', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const r = await check([empty]);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /empty: no history segments \(history-NNNNNN\.jsonl\) in this directory/);
  });

  test('usage errors exit 64', async () => {
    assert.equal((await check([])).code, 64);
    const r = await check(['--timeout', 'soon', ok]);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /"soon" is not a duration/);
  });

  test('--timeout bounds each file: a 1 ms budget on a hard file is inconclusive, exit 2', async () => {
    // Hundreds of timed-out writes over several keys with revisions in the reads: the candidate
    // states multiply (no key partitioning with revisions), so a 0 ms budget runs out.
    const lines: unknown[] = [];
    for (let i = 0; i < 400; i++) lines.push({ client: 1000 + i, call: i, return: null, request: { type: 'put', key: `k${i % 7}`, value: `t${i}` } });
    for (let i = 0; i < 400; i++) {
      const key = `k${i % 7}`;
      lines.push({ client: i, call: 500 + i, return: 5000 + i, request: { type: 'range', key }, response: { revision: 100 + (i % 50), kvs: [{ key, value: `t${(i * 13) % 400}` }] } });
    }
    const hard = file('hard.jsonl', lines);
    const r = await check(['--timeout', '1ms', hard]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /hard\.jsonl\tinconclusive\t800 operations.*time budget exhausted/);
  });
});
