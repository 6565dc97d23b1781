// Report storage against a real kube-apiserver: the ConfigMap store (layout, no owner reference (reports outlive their run), size
// bounding the API server accepts, idempotent replace, errors) and `etcd-robustness report` end to end.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { CoreV1Api } from '@kubernetes/client-node';
import { checkHistory } from '../../src/checker/index.ts';
import { renderHtmlReport } from '../../src/report/index.ts';
import {
  ConfigMapReportStore,
  reportAnnotations,
  reportLabels,
  ReportStoreError,
  VolumeReportStore,
  type ReportRun,
} from '../../src/controller/report-store/index.ts';
import type { History, HistoryMeta, Operation } from '../../src/domain/index.ts';
import type { StoredReportRef } from '../../src/domain/run-resource.ts';
import { readHistoryDirectory } from '../../src/probes/history-segment-reader.ts';
import { HistoryFileWriter } from '../../src/probes/history-writer.ts';
import { get, op, put, rev } from '../helpers/histories.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { installCrds } from '../helpers/operator.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'src', 'cli.ts');
const namespace = 'reports';

const robustnessRun = (name: string): string => `
apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata: { name: ${name}, namespace: ${namespace} }
spec: { clusterRef: { name: main } }
`;

const meta: HistoryMeta = { kind: 'meta', seed: 11, cluster: `${namespace}/main`, mode: 'exclusive', prefix: '/k/' };

/** A report directory as a run writes it: a segmented history (HistoryFileWriter), report.html rendered from its check, verdict.json. */
function writeReportDir(dir: string, operations: number, verdictExtra: Record<string, unknown> = {}): void {
  const ops: Operation[] = [];
  const latest = new Map<string, { key: string; value: string; modRevision: number }>();
  let revision = 1;
  for (let i = 0; i < operations; i++) {
    const key = `/k/${i % 5}`;
    // Sequential operations on one client: every read sees the latest write, so the history is linearizable.
    if (i % 3 === 2) {
      const kv = latest.get(key);
      ops.push(op(0, i * 10, i * 10 + 5, get(key), { revision, kvs: kv ? [kv] : [] }));
    } else {
      revision++;
      latest.set(key, { key, value: `v${i}`, modRevision: revision });
      ops.push(op(0, i * 10, i * 10 + 5, put(key, `v${i}`), rev(revision)));
    }
  }
  const writer = HistoryFileWriter.open(path.join(dir, 'history'), { maxSegmentBytes: 8 * 1024 });
  writer.writeMeta(meta);
  for (const o of ops) writer.writeOperation(o);
  writer.close();
  const history: History = { meta, operations: ops, watches: [] };
  const report = checkHistory(history, { timeoutMs: 30_000 });
  writeFileSync(path.join(dir, 'report.html'), renderHtmlReport(history, report, { title: 'nightly on main' }));
  writeFileSync(path.join(dir, 'verdict.json'), `${JSON.stringify({ run: 'nightly', verdict: report.verdict, ...verdictExtra }, null, 2)}\n`);
}

function sameFiles(a: string, b: string): void {
  const list = (dir: string): string[] => [
    ...readdirSync(dir).filter((f) => f !== 'history'),
    ...(existsSync(path.join(dir, 'history')) ? readdirSync(path.join(dir, 'history')).map((f) => `history/${f}`) : []),
  ].sort();
  assert.deepEqual(list(b), list(a));
  for (const file of list(a)) assert.deepEqual(readFileSync(path.join(b, file)), readFileSync(path.join(a, file)), file);
}

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Cli> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], { cwd: options.cwd ?? repo, env: options.env ?? process.env, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(new Error(`cannot run ${cli}: ${error.message}`));
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

describe('report storage on a real kube-apiserver', { timeout: 300_000 }, () => {
  let apiserver: TestApiserver;
  let core: CoreV1Api;
  let store: ConfigMapReportStore;
  let run: ReportRun;
  /** The reference store() returned for run 1 of nightly (the report in reportDir). */
  let storedRef: StoredReportRef;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-report-it-'));
  let dirs = 0;
  const freshDir = (): string => path.join(tmp, `d${++dirs}`);
  const reportDir = freshDir();

  const createRun = async (name: string): Promise<ReportRun> => {
    const applied = await apiserver.kubectl(['apply', '--server-side', '-f', '-'], robustnessRun(name));
    assert.equal(applied.code, 0, applied.stderr);
    const uid = await apiserver.kubectl(['get', 'robustnessrun', name, '-n', namespace, '-o', 'jsonpath={.metadata.uid}']);
    assert.equal(uid.code, 0, uid.stderr);
    return { namespace, name, uid: uid.stdout };
  };
  const setStatus = async (name: string, status: unknown): Promise<void> => {
    const patched = await apiserver.kubectl(['patch', 'robustnessrun', name, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    assert.equal(patched.code, 0, patched.stderr);
  };

  before(async () => {
    apiserver = await TestApiserver.start();
    core = apiserver.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await installCrds(apiserver);
    run = await createRun('nightly');
    store = new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig });
    mkdirSync(reportDir);
    writeReportDir(reportDir, 1500);
  });

  after(async () => {
    await apiserver?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('store writes one ConfigMap with labels, no owner reference and gzip entries; fetch restores the files byte for byte', async () => {
    const segments = readdirSync(path.join(reportDir, 'history')).sort();
    assert.ok(segments.length >= 3, `${segments.length} segments`);
    const ref = await store.store(run, 1, reportDir);
    assert.equal(ref.kind, 'configMap');
    assert.equal(ref.name, 'nightly-report-1');
    assert.equal(ref.truncated, undefined);

    const cm = await core.readNamespacedConfigMap({ name: 'nightly-report-1', namespace });
    assert.equal(cm.metadata?.labels?.[reportLabels.run], 'nightly');
    assert.equal(cm.metadata?.labels?.[reportLabels.runNumber], '1');
    assert.equal(cm.metadata?.ownerReferences, undefined, 'reports outlive their run');
    assert.deepEqual(Object.keys(cm.binaryData ?? {}).sort(), ['report.html.gz', 'verdict.json.gz', ...segments.map((s) => `${s}.gz`)].sort());
    assert.deepEqual(gunzipSync(Buffer.from(cm.binaryData!['verdict.json.gz']!, 'base64')), readFileSync(path.join(reportDir, 'verdict.json')));
    assert.ok(cm.data?.['index.json']);

    const target = freshDir();
    await store.fetch(namespace, ref, target);
    sameFiles(reportDir, target);
    assert.deepEqual(readHistoryDirectory(path.join(target, 'history')), readHistoryDirectory(path.join(reportDir, 'history')));
  });

  test('storing the same run again replaces its ConfigMap, never adds a second one', async () => {
    const first = await core.readNamespacedConfigMap({ name: 'nightly-report-1', namespace });
    const again = freshDir();
    mkdirSync(again);
    writeReportDir(again, 300, { retried: true });
    const ref = await store.store(run, 1, again);
    assert.equal(ref.name, 'nightly-report-1');
    const list = await core.listNamespacedConfigMap({ namespace, labelSelector: `${reportLabels.run}=nightly,${reportLabels.runNumber}=1` });
    assert.deepEqual(list.items.map((c) => c.metadata?.name), ['nightly-report-1']);
    assert.notEqual(list.items[0]!.metadata?.resourceVersion, first.metadata?.resourceVersion);
    const target = freshDir();
    await store.fetch(namespace, ref, target);
    sameFiles(again, target);
    // Put the first report back for the command tests below.
    storedRef = await store.store(run, 1, reportDir);
  });

  test('a history too big is dropped and the API server accepts what is left; maxBytes of 1 MiB is within its limit', async () => {
    const big = freshDir();
    mkdirSync(big);
    writeReportDir(big, 100);
    const lines: string[] = [];
    for (let i = 0; i < 2600; i++) lines.push(JSON.stringify({ noise: randomBytes(600).toString('base64') }));
    writeFileSync(path.join(big, 'history', 'history-000002.jsonl'), `${lines.join('\n')}\n`);
    const ref = await store.store(run, 7, big);
    assert.equal(ref.truncated, true);
    const cm = await core.readNamespacedConfigMap({ name: 'nightly-report-7', namespace });
    assert.deepEqual(Object.keys(cm.binaryData ?? {}).sort(), ['report.html.gz', 'verdict.json.gz']);
    assert.match(cm.metadata?.annotations?.[reportAnnotations.truncated] ?? '', /^the history \(2 segments, .*\) did not fit in a ConfigMap report of at most 900\.0 KiB; the verdict and the HTML report are kept$/);
    const target = freshDir();
    await store.fetch(namespace, ref, target);
    assert.deepEqual(readdirSync(target).sort(), ['report.html', 'verdict.json']);

    // Right at the API server's 1 MiB limit for data and binaryData together: accepted.
    const full = freshDir();
    mkdirSync(full);
    writeFileSync(path.join(full, 'verdict.json'), '{"verdict":"linearizable"}\n');
    writeFileSync(path.join(full, 'report.html'), randomBytes(1015 * 1024));
    mkdirSync(path.join(full, 'history'));
    writeFileSync(path.join(full, 'history', 'history-000001.jsonl'), randomBytes(100 * 1024));
    const atLimit = await new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig, maxBytes: 1024 * 1024 }).store(run, 8, full);
    assert.equal(atLimit.truncated, true);
    assert.ok(atLimit.size > 1000 * 1024 && atLimit.size <= 1024 * 1024, `${atLimit.size} bytes`);
  });

  test('API failures are ReportStoreErrors with the run, the ConfigMap and the HTTP status', async () => {
    await assert.rejects(store.store({ ...run, namespace: 'no-such-namespace' }, 1, reportDir), (error: unknown) => {
      assert.ok(error instanceof ReportStoreError);
      assert.equal(error.status, 404);
      assert.equal(error.run, 'RobustnessRun no-such-namespace/nightly run 1');
      assert.match(error.message, /cannot create ConfigMap no-such-namespace\/nightly-report-1: HTTP 404: namespaces "no-such-namespace" not found/);
      return true;
    });
    await assert.rejects(store.fetch(namespace, { kind: 'configMap', name: 'nightly-report-99', size: 1 }, freshDir()), (error: unknown) => {
      assert.ok(error instanceof ReportStoreError);
      assert.equal(error.status, 404);
      assert.match(error.message, /ConfigMap reports\/nightly-report-99: cannot read it: HTTP 404: configmaps "nightly-report-99" not found/);
      return true;
    });
    // A ConfigMap of that name that is not a report of this run is left alone.
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'nightly-report-5' }, data: { mine: 'yes' } } });
    await assert.rejects(store.store(run, 5, reportDir), /ConfigMap reports\/nightly-report-5 exists and is not a report of this run/);
    assert.deepEqual((await core.readNamespacedConfigMap({ name: 'nightly-report-5', namespace })).data, { mine: 'yes' });
  });

  test('prune deletes the reports of runs outside the kept ones, only of that run', async () => {
    const other = await createRun('prune-other');
    const pruned = { ...run, name: 'prune-me' };
    for (const n of [1, 2, 3]) await store.store(pruned, n, reportDir);
    await store.store(other, 1, reportDir);
    assert.equal(await store.prune(pruned, [3, 2]), 1);
    const names = (await core.listNamespacedConfigMap({ namespace })).items.map((c) => c.metadata?.name ?? '');
    assert.ok(!names.includes('prune-me-report-1'));
    assert.ok(names.includes('prune-me-report-2') && names.includes('prune-me-report-3'));
    assert.ok(names.includes('prune-other-report-1'), 'another run keeps its report');
    assert.equal(await store.prune(pruned, [3, 2]), 0, 'pruning again deletes nothing');
  });

  test('etcd-robustness report fetches the stored report of a RobustnessRun', async () => {
    const ref = storedRef;
    await setStatus('nightly', { phase: 'Passed', runNumber: 1, verdict: 'linearizable', report: ref, lastRun: { number: 1, phase: 'Passed', startTime: '2026-01-01T00:00:00Z', report: ref } });
    const output = freshDir();
    const result = await runCli(['report', 'nightly', '--namespace', namespace, '--kubeconfig', apiserver.kubeconfigPath, '--output', output]);
    assert.equal(result.code, 0, result.stderr);
    sameFiles(reportDir, output);
    assert.match(result.stdout, new RegExp(`RobustnessRun reports/nightly run 1: fetched the ConfigMap reports/nightly-report-1 \\(${ref.size} bytes compressed\\) into ${output}$`, 'm'));
    assert.match(result.stdout, new RegExp(`report\\.html: ${path.join(output, 'report.html')}`));
    assert.match(result.stdout, /history: .*history \(\d+ segments; re-check with: etcd-robustness check /);
    assert.match(result.stdout, /^verdict: linearizable$/m);

    // KUBECONFIG from the environment, the default output folder, and not over an existing one.
    const cwd = freshDir();
    mkdirSync(cwd);
    const env = { ...process.env, KUBECONFIG: apiserver.kubeconfigPath };
    const byEnv = await runCli(['report', 'nightly', '-n', namespace, '--open'], { cwd, env: { ...env, PATH: path.dirname(process.execPath) } });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    sameFiles(reportDir, path.join(cwd, 'nightly-report-1'));
    assert.match(byEnv.stdout, /open .*nightly-report-1\/report\.html in a browser \(no xdg-open here\)/);
    const twice = await runCli(['report', 'nightly', '-n', namespace], { cwd, env });
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /nightly-report-1 exists and is not an empty folder; choose another with --output/);
  });

  test('etcd-robustness report --run-number picks a past run; a volume report is copied when readable here', async () => {
    const volume = new VolumeReportStore({ root: freshDir() });
    const run2Dir = freshDir();
    mkdirSync(run2Dir);
    writeReportDir(run2Dir, 200, { run: 2 });
    const volumeRef = await volume.store(run, 2, run2Dir);
    const cmRef = storedRef;
    await setStatus('nightly', {
      phase: 'Running',
      runNumber: 3,
      report: null,
      lastRun: { number: 2, phase: 'Passed', startTime: '2026-01-02T00:00:00Z', report: volumeRef },
      history: [
        { number: 2, phase: 'Passed', startTime: '2026-01-02T00:00:00Z', report: volumeRef },
        { number: 1, phase: 'Passed', startTime: '2026-01-01T00:00:00Z', report: cmRef },
      ],
    });
    const base = ['report', 'nightly', '-n', namespace, '--kubeconfig', apiserver.kubeconfigPath];
    const one = freshDir();
    const first = await runCli([...base, '--run-number', '1', '-o', one]);
    assert.equal(first.code, 0, first.stderr);
    sameFiles(reportDir, one);

    // No status.report while run 3 is running: the last finished run's report (a volume folder).
    const latest = freshDir();
    const second = await runCli([...base, '-o', latest]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`RobustnessRun reports/nightly run 2: the report is on the operator's report volume at ${volumeRef.name}`));
    sameFiles(run2Dir, latest);

    const missing = await runCli([...base, '--run-number', '3', '-o', freshDir()]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /RobustnessRun reports\/nightly has no stored report for run 3 \(phase Running; runs with a stored report: 1, 2\)/);

    const elsewhere = { ...volumeRef, name: '/nonexistent/reports/nightly/2' };
    await setStatus('nightly', { lastRun: { number: 2, phase: 'Passed', startTime: '2026-01-02T00:00:00Z', report: elsewhere }, history: null });
    const unreadable = await runCli([...base, '-o', freshDir()]);
    assert.equal(unreadable.code, 1);
    assert.match(unreadable.stdout, /the report is on the operator's report volume at \/nonexistent\/reports\/nightly\/2/);
    assert.match(unreadable.stderr, /\/nonexistent\/reports\/nightly\/2 is not readable here: copy that folder/);
  });

  test('etcd-robustness report exits 1 for a run without a report or no run, 64 for usage errors', async () => {
    await createRun('pending');
    await setStatus('pending', { phase: 'Running', runNumber: 1 });
    const base = ['--namespace', namespace, '--kubeconfig', apiserver.kubeconfigPath];
    const noReport = await runCli(['report', 'pending', ...base]);
    assert.equal(noReport.code, 1);
    assert.equal(noReport.stderr, 'etcd-robustness: report: RobustnessRun reports/pending has no stored report yet (phase Running)\n');

    const noRun = await runCli(['report', 'ghost', ...base]);
    assert.equal(noRun.code, 1);
    assert.equal(noRun.stderr, 'etcd-robustness: report: RobustnessRun reports/ghost not found\n');

    const usage = await runCli(['report', ...base]);
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /which RobustnessRun\?/);
    const help = await runCli(['report', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: etcd-robustness report RUN/);
  });
});
