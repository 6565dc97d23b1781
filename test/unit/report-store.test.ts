import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { parseReportArgs } from '../../src/commands/report.ts';
import {
  buildReportConfigMap,
  configMapReportName,
  reportAnnotations,
  reportLabels,
  reportRunLabelValue,
  ReportStoreError,
  VolumeReportStore,
  type ReportIndex,
} from '../../src/controller/report-store/index.ts';
import type { HistoryMeta } from '../../src/domain/index.ts';
import { readHistoryDirectory } from '../../src/probes/history-segment-reader.ts';
import { HistoryFileWriter } from '../../src/probes/history-writer.ts';
import { get, op, put, rev } from '../helpers/histories.ts';
import { UsageError } from '../../src/commands/usage.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-report-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `d${++dirs}`);

const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const run = { namespace: 'default', name: 'nightly', uid: '6f1c2f7e-0000-4000-8000-000000000001' };
const meta: HistoryMeta = { kind: 'meta', seed: 3, cluster: 'default/main', mode: 'exclusive', prefix: '/k/' };

/** A report directory like the run writer's: a real segmented history, verdict.json and (optionally) report.html. */
function reportDir(options: { operations?: number; segmentBytes?: number; html?: string; noHistory?: boolean } = {}): string {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  if (!options.noHistory) {
    const writer = HistoryFileWriter.open(path.join(dir, 'history'), { maxSegmentBytes: options.segmentBytes ?? 4096 });
    writer.writeMeta(meta);
    const count = options.operations ?? 200;
    for (let i = 0; i < count; i++) {
      writer.writeOperation(i % 2 === 0 ? op(i % 4, i * 10, i * 10 + 5, put(`/k/${i % 7}`, `v${i}`), rev(i + 2)) : op(i % 4, i * 10, i * 10 + 5, get(`/k/${i % 7}`), { revision: i + 1 }));
    }
    writer.close();
  }
  writeFileSync(path.join(dir, 'verdict.json'), `${JSON.stringify({ run: 'nightly', verdict: 'linearizable' }, null, 2)}\n`);
  if (options.html !== undefined) writeFileSync(path.join(dir, 'report.html'), options.html);
  return dir;
}

/** Incompressible lines, so a history of this many bytes stays about that large gzip-compressed. */
function bigHistory(dir: string, bytes: number): void {
  const history = path.join(dir, 'history');
  rmSync(history, { recursive: true, force: true });
  mkdirSync(history);
  const lines: string[] = [];
  for (let size = 0; size < bytes; size += 1000) lines.push(JSON.stringify({ noise: randomBytes(740).toString('base64') }));
  writeFileSync(path.join(history, 'history-000001.jsonl'), `${lines.join('\n')}\n`);
}

function decoded(binaryData: Record<string, string> | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(binaryData ?? {}).map(([key, value]) => [key, gunzipSync(Buffer.from(value, 'base64'))]));
}

describe('report ConfigMap names', () => {
  test('a short run name gives <run>-report-<n>', () => {
    assert.equal(configMapReportName('nightly', 3), 'nightly-report-3');
    assert.equal(reportRunLabelValue('nightly'), 'nightly');
  });

  test('long names become valid DNS names of at most 253 characters, stable and distinct', () => {
    const long = (end: string): string => `${'a'.repeat(120)}.${'b'.repeat(120)}-${end}`;
    for (const name of [long('x'), long('y'), `${'c'.repeat(236)}-d.e-f.g`, 'z'.repeat(253), `${'q'.repeat(229)}-${'r'.repeat(23)}`]) {
      for (const n of [1, 12345678]) {
        const cm = configMapReportName(name, n);
        assert.ok(cm.length <= 253, `${cm.length} characters`);
        assert.match(cm, dnsSubdomain);
        assert.ok(cm.endsWith(`-report-${n}`), cm);
        assert.equal(configMapReportName(name, n), cm, 'stable');
      }
      const label = reportRunLabelValue(name);
      assert.ok(label.length <= 63, `${label.length} characters`);
      assert.match(label, labelValue);
      assert.equal(reportRunLabelValue(name), label, 'stable');
    }
    assert.notEqual(configMapReportName(long('x'), 1), configMapReportName(long('y'), 1));
    assert.notEqual(reportRunLabelValue(long('x')), reportRunLabelValue(long('y')));
    // Exactly at the limit: kept as is.
    const fits = 'f'.repeat(253 - '-report-7'.length);
    assert.equal(configMapReportName(fits, 7), `${fits}-report-7`);
  });
});

describe('report ConfigMap contents and size bounding', () => {
  test('a report that fits is stored whole: gzip entries, an index, labels and the run uid (no owner reference)', async () => {
    const dir = reportDir({ html: '<!doctype html><title>r</title>' });
    const segments = readdirSync(path.join(dir, 'history')).sort();
    assert.ok(segments.length >= 3, `${segments.length} segments`);
    const { configMap, ref } = await buildReportConfigMap(run, 2, dir);
    assert.equal(ref.kind, 'configMap');
    assert.equal(ref.name, 'nightly-report-2');
    assert.equal(ref.truncated, undefined);
    assert.equal(configMap.metadata?.name, 'nightly-report-2');
    assert.equal(configMap.metadata?.namespace, 'default');
    assert.equal(configMap.metadata?.labels?.[reportLabels.run], 'nightly');
    assert.equal(configMap.metadata?.labels?.[reportLabels.runNumber], '2');
    assert.equal(configMap.metadata?.annotations?.[reportAnnotations.truncated], undefined);
    // Reports outlive their run: no owner reference, the run's uid in an annotation.
    assert.equal(configMap.metadata?.ownerReferences, undefined);
    assert.equal(configMap.metadata?.annotations?.[reportAnnotations.runUid], run.uid);
    const files = decoded(configMap.binaryData);
    assert.deepEqual(Object.keys(files).sort(), ['report.html.gz', 'verdict.json.gz', ...segments.map((s) => `${s}.gz`)].sort());
    assert.deepEqual(files['verdict.json.gz'], readFileSync(path.join(dir, 'verdict.json')));
    for (const s of segments) assert.deepEqual(files[`${s}.gz`], readFileSync(path.join(dir, 'history', s)));
    const index = JSON.parse(configMap.data!['index.json']!) as ReportIndex;
    assert.deepEqual(
      index.files.map((f) => f.path),
      ['verdict.json', 'report.html', ...segments.map((s) => `history/${s}`)],
    );
    const stored = Object.values(configMap.binaryData!).reduce((sum, b64) => sum + Buffer.from(b64, 'base64').length, 0);
    assert.equal(ref.size, stored + Buffer.byteLength(configMap.data!['index.json']!));
  });

  test('a history too big for the ConfigMap is dropped; the verdict and HTML report are kept', async () => {
    const dir = reportDir({ html: '<!doctype html><title>r</title>' });
    bigHistory(dir, 2 * 1024 * 1024);
    const { configMap, ref } = await buildReportConfigMap(run, 1, dir);
    assert.equal(ref.truncated, true);
    assert.ok(ref.size <= 900 * 1024);
    assert.deepEqual(Object.keys(configMap.binaryData!).sort(), ['report.html.gz', 'verdict.json.gz']);
    const note = configMap.metadata?.annotations?.[reportAnnotations.truncated];
    assert.match(note ?? '', /^the history \(1 segment, 2\.0 MiB\) did not fit in a ConfigMap report of at most 900\.0 KiB; the verdict and the HTML report are kept$/);
    const index = JSON.parse(configMap.data!['index.json']!) as ReportIndex;
    assert.equal(index.truncated, true);
    assert.equal(index.omitted, note);
  });

  test('a smaller maxBytes drops a history that the default would keep', async () => {
    const dir = reportDir({ operations: 2000, html: '<p>ok</p>' });
    const whole = await buildReportConfigMap(run, 1, dir);
    assert.equal(whole.ref.truncated, undefined);
    const bounded = await buildReportConfigMap(run, 1, dir, whole.ref.size - 1);
    assert.equal(bounded.ref.truncated, true);
    assert.ok(bounded.ref.size <= whole.ref.size - 1);
    assert.deepEqual(Object.keys(bounded.configMap.binaryData!).sort(), ['report.html.gz', 'verdict.json.gz']);
  });

  test('when the HTML report does not fit either, the verdict alone is kept', async () => {
    const html = `<!doctype html><pre>${randomBytes(1024 * 1024).toString('base64')}</pre>`;
    const dir = reportDir({ html });
    bigHistory(dir, 300 * 1024);
    const { configMap, ref } = await buildReportConfigMap(run, 1, dir);
    assert.equal(ref.truncated, true);
    assert.deepEqual(Object.keys(configMap.binaryData!), ['verdict.json.gz']);
    assert.match(configMap.metadata?.annotations?.[reportAnnotations.truncated] ?? '', /^the history \(1 segment, .*\) and report\.html did not fit .*; the verdict is kept$/);
  });

  test('a run without report.html or history stores its verdict, not marked truncated', async () => {
    const dir = reportDir({ noHistory: true });
    const { configMap, ref } = await buildReportConfigMap(run, 1, dir);
    assert.equal(ref.truncated, undefined);
    assert.deepEqual(Object.keys(configMap.binaryData!), ['verdict.json.gz']);
  });

  test('not even the verdict fitting, or no verdict at all, is a ReportStoreError naming the run', async () => {
    const dir = reportDir({ html: '<p>x</p>' });
    await assert.rejects(buildReportConfigMap(run, 4, dir, 100), (error: unknown) => {
      assert.ok(error instanceof ReportStoreError);
      assert.equal(error.run, 'RobustnessRun default/nightly run 4');
      assert.match(error.message, /even verdict\.json does not fit in a ConfigMap report of at most 100 B/);
      return true;
    });
    const empty = freshDir();
    mkdirSync(empty);
    await assert.rejects(buildReportConfigMap(run, 4, empty), /RobustnessRun default\/nightly run 4: no verdict\.json in .*: not a finished run's report directory/);
  });
});

describe('VolumeReportStore', () => {
  test('round trip: <root>/<ns>/<run>/<n>/ with gzip files and an index; restored byte for byte', async () => {
    const volume = freshDir();
    const store = new VolumeReportStore({ root: volume });
    const dir = reportDir({ html: '<!doctype html><title>r</title>' });
    const ref = await store.store(run, 1, dir);
    const folder = path.join(volume, 'default', 'nightly', '1');
    assert.deepEqual(ref, { kind: 'volume', name: folder, size: ref.size });
    assert.deepEqual(readdirSync(folder).sort(), ['history', 'index.json', 'report.html.gz', 'verdict.json.gz']);
    const segments = readdirSync(path.join(dir, 'history')).sort();
    assert.deepEqual(readdirSync(path.join(folder, 'history')).sort(), segments.map((s) => `${s}.gz`));
    assert.deepEqual(gunzipSync(readFileSync(path.join(folder, 'verdict.json.gz'))), readFileSync(path.join(dir, 'verdict.json')));
    // Nothing but the report folder: the staging folder was renamed into place.
    assert.deepEqual(readdirSync(path.dirname(folder)), ['1']);

    const target = path.join(freshDir(), 'out');
    await store.fetch('default', ref, target);
    for (const file of ['verdict.json', 'report.html', ...segments.map((s) => `history/${s}`)]) {
      assert.deepEqual(readFileSync(path.join(target, file)), readFileSync(path.join(dir, file)), file);
    }
    assert.deepEqual(readHistoryDirectory(path.join(target, 'history')), readHistoryDirectory(path.join(dir, 'history')));
    // Never over an existing report.
    await assert.rejects(store.fetch('default', ref, target), /verdict\.json exists already; restore into an empty folder/);
  });

  test('storing a run again replaces it; other runs and another RobustnessRun of the same name are never overwritten', async () => {
    const volume = freshDir();
    const store = new VolumeReportStore({ root: volume });
    const first = await store.store(run, 1, reportDir({ html: '<p>first</p>' }));
    const second = await store.store(run, 2, reportDir({ html: '<p>second</p>' }));
    assert.notEqual(second.name, first.name);
    const retried = await store.store(run, 1, reportDir({ html: '<p>first, retried</p>' }));
    assert.equal(retried.name, first.name);
    const recreated = await store.store({ ...run, uid: 'aaaaaaaa-0000-4000-8000-000000000002' }, 1, reportDir({ html: '<p>recreated</p>' }));
    assert.equal(recreated.name, path.join(volume, 'default', 'nightly', '1-aaaaaaaa-0000-4000-8000-000000000002'));
    assert.deepEqual(readdirSync(path.join(volume, 'default', 'nightly')).sort(), ['1', '1-aaaaaaaa-0000-4000-8000-000000000002', '2']);
    const html = (ref: typeof first): string => gunzipSync(readFileSync(path.join(ref.name, 'report.html.gz'))).toString();
    assert.equal(html(first), '<p>first, retried</p>');
    assert.equal(html(second), '<p>second</p>');
    assert.equal(html(recreated), '<p>recreated</p>');
  });

  test('prune removes the folders of runs not kept, never another incarnation\'s', async () => {
    const volume = freshDir();
    const store = new VolumeReportStore({ root: volume });
    for (const n of [1, 2, 3]) await store.store(run, n, reportDir({ html: `<p>${n}</p>` }));
    await store.store({ ...run, uid: 'aaaaaaaa-0000-4000-8000-000000000003' }, 1, reportDir({ html: '<p>other</p>' }));
    assert.equal(await store.prune(run, [2, 3]), 1);
    assert.deepEqual(readdirSync(path.join(volume, 'default', 'nightly')).sort(), ['1-aaaaaaaa-0000-4000-8000-000000000003', '2', '3']);
    assert.equal(await store.prune({ ...run, name: 'absent' }, []), 0);
  });

  test('fetch refuses a folder outside the namespace and a damaged file', async () => {
    const volume = freshDir();
    const store = new VolumeReportStore({ root: volume });
    const ref = await store.store(run, 1, reportDir({ html: '<p>x</p>' }));
    await assert.rejects(store.fetch('other', ref, freshDir()), /is not a report folder of namespace other/);
    await assert.rejects(store.fetch('default', { ...ref, name: path.join(volume, 'default', '..', '..', 'etc') }, freshDir()), /is not a report folder of namespace default/);
    writeFileSync(path.join(ref.name, 'report.html.gz'), gzipSync('<p>tampered</p>'));
    await assert.rejects(store.fetch('default', ref, freshDir()), (error: unknown) => {
      assert.ok(error instanceof ReportStoreError);
      assert.match(error.message, /report\.html is damaged: 15 bytes with SHA-256 [0-9a-f]{64}, the index says 8 bytes/);
      return true;
    });
  });
});

describe('etcd-robustness report arguments', () => {
  test('parses RUN and the options; usage errors are UsageError', () => {
    assert.deepEqual(parseReportArgs(['foo', '-n', 'ns', '--run-number', '3', '-o', 'out', '--open']), {
      run: 'foo',
      namespace: 'ns',
      kubeconfig: undefined,
      runNumber: 3,
      output: 'out',
      open: true,
    });
    assert.equal(parseReportArgs(['--help']), 'help');
    for (const [argv, message] of [
      [[], /which RobustnessRun\?/],
      [['a', 'b'], /one RobustnessRun at a time/],
      [['a', '--run-number', '0'], /--run-number must be a positive integer, got "0"/],
      [['a', '--run-number', '1.5'], /--run-number must be a positive integer/],
      [['a', '--frob'], /Unknown option '--frob'/],
    ] as const) {
      assert.throws(() => parseReportArgs(argv), (error: unknown) => error instanceof UsageError && message.test(error.message));
    }
  });
});
