/**
 * Where a finished run's report directory (history/ segments, verdict.json, report.html) is kept so a
 * user can fetch it later (`etcd-robustness report RUN`): a size-bounded ConfigMap per run, or a folder on
 * a volume. Both keep each file gzip-compressed on its own, with an index (index.json) that lists every
 * file with its size and SHA-256, so a fetch restores the files byte for byte and notices damage.
 *
 * ConfigMap layout (in the run's namespace, owned by the RobustnessRun so it is deleted with it):
 *   name        <run>-report-<n> (shortened with a hash when that is over 253 characters)
 *   labels      etcd.robustness.io/run=<run> (shortened with a hash over 63 characters),
 *               etcd.robustness.io/run-number=<n>
 *   data        index.json
 *   binaryData  verdict.json.gz, report.html.gz, history-000001.jsonl.gz, ...
 * A ConfigMap holds at most 1 MiB (data and binaryData together). When everything does not fit in
 * maxBytes the history is dropped and the verdict and HTML report are kept (truncated: true, said in the
 * index and the etcd.robustness.io/report-truncated annotation); when even those do not fit, the verdict
 * alone is kept.
 *
 * Volume layout: <root>/<namespace>/<run>/<n>/ holding index.json, verdict.json.gz, report.html.gz and
 * history/history-000001.jsonl.gz, ... A folder is written under a temporary name and renamed into place,
 * so a reader never sees half a report. Storing run n of the same RobustnessRun (same uid) again replaces
 * it; a folder of another RobustnessRun of the same name (deleted and created again) is never touched: the
 * report goes to <n>-<uid> instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, createGzip, gunzip as gunzipCallback } from 'node:zlib';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { StoredReportRef } from '../domain/run-resource.ts';
import { kubeApiFailure } from './kube-api.ts';

const gunzip = promisify(gunzipCallback);

/** A report could not be stored or fetched; says for which run (or stored report) and why. */
export class ReportStoreError extends Error {
  override name = 'ReportStoreError';
  /** The run (`RobustnessRun ns/name run n`) or stored report the error is about. */
  readonly run: string;
  readonly reason: string;
  /** The HTTP status of a failed API request. */
  readonly status: number | undefined;
  constructor(run: string, reason: string, options: { status?: number; cause?: unknown } = {}) {
    super(`${run}: ${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.run = run;
    this.reason = reason;
    this.status = options.status;
  }
}

export interface ReportRun {
  namespace: string;
  name: string;
  uid: string;
}

export interface ReportStore {
  /** Stores the report directory of run number `runNumber` of RobustnessRun ns/name; returns where. Owner reference to the RobustnessRun so it goes with it. */
  store(run: ReportRun, runNumber: number, reportDir: string): Promise<StoredReportRef>;
  /** Restores a stored report into `targetDir` (history/, verdict.json, report.html). */
  fetch(namespace: string, ref: StoredReportRef, targetDir: string): Promise<void>;
  /** Deletes the run's stored reports whose run number is not in `keep`; returns how many. */
  prune(run: ReportRun, keep: readonly number[]): Promise<number>;
}

export const reportLabels = {
  run: 'etcd.robustness.io/run',
  runNumber: 'etcd.robustness.io/run-number',
} as const;
export const reportAnnotations = {
  /** The full RobustnessRun name (the run label is shortened past 63 characters). */
  run: 'etcd.robustness.io/run',
  /** What was left out, when the report did not fit. */
  truncated: 'etcd.robustness.io/report-truncated',
  /** The uid of the RobustnessRun that stored it (reports outlive their run; a new run may reuse the name). */
  runUid: 'etcd.robustness.io/run-uid',
} as const;

/** A ConfigMap holds at most 1 MiB; the rest is headroom for the index and the object's metadata. */
export const defaultConfigMapReportMaxBytes = 900 * 1024;
const indexKey = 'index.json';
const maxNameLength = 253;
const maxLabelValueLength = 63;

/** One file of a stored report. */
export interface ReportIndexEntry {
  /** Where the file goes in a report directory: verdict.json, report.html or history/<segment>.jsonl. */
  path: string;
  /** Where the gzip-compressed file is stored: a binaryData key, or a path in the volume folder. */
  key: string;
  /** Bytes of the file. */
  bytes: number;
  /** Bytes stored (compressed). */
  storedBytes: number;
  /** SHA-256 of the file, hex. */
  sha256: string;
}

/** index.json of a stored report. */
export interface ReportIndex {
  format: 1;
  run: ReportRun;
  runNumber: number;
  storedAt: string;
  files: ReportIndexEntry[];
  /** Some files of the report directory did not fit and were left out (`omitted` says which). */
  truncated?: boolean;
  omitted?: string;
}

function subject(run: ReportRun, runNumber: number): string {
  return `RobustnessRun ${run.namespace}/${run.name} run ${runNumber}`;
}

function hashOf(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Cuts `text` to at most `length` characters that do not end in `-`, `.` or `_` (names and label values end alphanumeric). */
function cut(text: string, length: number): string {
  return text.slice(0, length).replace(/[-._]+$/, '');
}

/**
 * The ConfigMap name of run `runNumber` of RobustnessRun `runName`: `<run>-report-<n>`, or, past 253
 * characters, the run name cut short with a hash of the full name (stable, and distinct for runs whose
 * names share the kept prefix). A RobustnessRun name is a DNS subdomain, so the result is one too.
 */
export function configMapReportName(runName: string, runNumber: number): string {
  const suffix = `-report-${runNumber}`;
  const full = `${runName}${suffix}`;
  if (full.length <= maxNameLength) return full;
  const hash = hashOf(runName, 10);
  return `${cut(runName, maxNameLength - suffix.length - hash.length - 1)}-${hash}${suffix}`;
}

/** The run label's value: the run name, or past 63 characters its start and a hash of the full name. */
export function reportRunLabelValue(runName: string): string {
  if (runName.length <= maxLabelValueLength) return runName;
  const hash = hashOf(runName, 10);
  return `${cut(runName, maxLabelValueLength - hash.length - 1)}-${hash}`;
}

// --- Reading a report directory -----------------------------------------------------------------------

interface SourceFile {
  /** Relative, with `/`: verdict.json, report.html, history/history-000001.jsonl. */
  path: string;
  absolute: string;
  /** Bytes when listed. */
  size: number;
}

const segmentName = /^[-._a-zA-Z0-9]+\.jsonl$/;
const restorablePath = /^(verdict\.json|report\.html|history\/[-._a-zA-Z0-9]+\.jsonl)$/;

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The files of a report directory to store: verdict.json (required), report.html and the history segments (when there). */
async function reportFiles(reportDir: string, who: string): Promise<{ verdict: SourceFile; html?: SourceFile; history: SourceFile[] }> {
  try {
    const verdictPath = path.join(reportDir, 'verdict.json');
    if (!(await isFile(verdictPath))) throw new ReportStoreError(who, `no verdict.json in ${reportDir}: not a finished run's report directory`);
    const htmlPath = path.join(reportDir, 'report.html');
    const html = (await isFile(htmlPath)) ? { path: 'report.html', absolute: htmlPath, size: (await stat(htmlPath)).size } : undefined;
    const historyDir = path.join(reportDir, 'history');
    let names: string[] = [];
    try {
      names = (await readdir(historyDir, { withFileTypes: true })).filter((d) => d.isFile() && d.name.endsWith('.jsonl')).map((d) => d.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const odd = names.find((name) => !segmentName.test(name));
    if (odd !== undefined) throw new ReportStoreError(who, `history file name "${odd}" is not a valid key (letters, digits, -, _ and . only)`);
    // Segment names are zero-padded, so name order is history order.
    const history: SourceFile[] = [];
    for (const name of names.sort()) {
      const absolute = path.join(historyDir, name);
      history.push({ path: `history/${name}`, absolute, size: (await stat(absolute)).size });
    }
    return { verdict: { path: 'verdict.json', absolute: verdictPath, size: (await stat(verdictPath)).size }, ...(html ? { html } : {}), history };
  } catch (error) {
    if (error instanceof ReportStoreError) throw error;
    throw new ReportStoreError(who, `cannot read the report directory ${reportDir}: ${(error as Error).message}`, { cause: error });
  }
}

/** Over the byte budget given to compressFile. */
class OverBudget extends Error {}

interface Compressed {
  data: Buffer;
  bytes: number;
  sha256: string;
}

type Part = Compressed & { file: SourceFile };

/**
 * gzip-compresses a file into `sink` (streaming, off the event loop), hashing and counting the original
 * bytes on the way: what a stored report's index records of each file.
 */
async function gzipFile(file: string, sink: NodeJS.WritableStream | ((source: AsyncIterable<Buffer>) => Promise<void>)): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    createReadStream(file),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    },
    createGzip({ level: 9 }),
    sink,
  );
  return { bytes, sha256: hash.digest('hex') };
}

/** gzip-compresses a file in memory; throws OverBudget once the output passes `budget`. */
async function compressFile(file: string, budget: number): Promise<Compressed> {
  const chunks: Buffer[] = [];
  let size = 0;
  const { bytes, sha256 } = await gzipFile(file, async (source) => {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > budget) throw new OverBudget();
      chunks.push(chunk);
    }
  });
  return { data: Buffer.concat(chunks), bytes, sha256 };
}

function checkEntry(entry: unknown, who: string): ReportIndexEntry {
  const e = entry as Partial<ReportIndexEntry> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.path !== 'string' ||
    !restorablePath.test(e.path) ||
    typeof e.key !== 'string' ||
    typeof e.bytes !== 'number' ||
    typeof e.sha256 !== 'string'
  ) {
    throw new ReportStoreError(who, `index.json lists an invalid file entry: ${JSON.stringify(entry)}`);
  }
  return e as ReportIndexEntry;
}

function parseIndex(text: string, who: string): ReportIndex {
  let index: Partial<ReportIndex>;
  try {
    index = JSON.parse(text) as Partial<ReportIndex>;
  } catch (error) {
    throw new ReportStoreError(who, `index.json is not JSON: ${(error as Error).message}`);
  }
  if (index.format !== 1 || !Array.isArray(index.files)) throw new ReportStoreError(who, 'index.json is not a report index (format 1)');
  index.files = index.files.map((entry) => checkEntry(entry, who));
  return index as ReportIndex;
}

/** Refuses to restore over a report directory's files: two reports mixed in one folder would be wrong. */
async function prepareTarget(targetDir: string, index: ReportIndex, who: string): Promise<void> {
  try {
    await mkdir(targetDir, { recursive: true });
    for (const name of ['verdict.json', 'report.html', 'history']) {
      try {
        await stat(path.join(targetDir, name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      throw new ReportStoreError(who, `${path.join(targetDir, name)} exists already; restore into an empty folder`);
    }
    if (index.files.some((f) => f.path.startsWith('history/'))) await mkdir(path.join(targetDir, 'history'));
  } catch (error) {
    if (error instanceof ReportStoreError) throw error;
    throw new ReportStoreError(who, `cannot prepare ${targetDir}: ${(error as Error).message}`, { cause: error });
  }
}

function verify(entry: ReportIndexEntry, bytes: number, sha256: string, who: string): void {
  if (bytes !== entry.bytes || sha256 !== entry.sha256) {
    throw new ReportStoreError(who, `${entry.path} is damaged: ${bytes} bytes with SHA-256 ${sha256}, the index says ${entry.bytes} bytes with ${entry.sha256}`);
  }
}

function indexFor(run: ReportRun, runNumber: number, files: ReportIndexEntry[], omitted: string | undefined): ReportIndex {
  const index: ReportIndex = { format: 1, run: { namespace: run.namespace, name: run.name, uid: run.uid }, runNumber, storedAt: new Date().toISOString(), files };
  if (omitted !== undefined) {
    index.truncated = true;
    index.omitted = omitted;
  }
  return index;
}

// --- ConfigMap ----------------------------------------------------------------------------------------

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function binaryKey(file: SourceFile): string {
  return `${path.posix.basename(file.path)}.gz`;
}

/**
 * The ConfigMap that stores a report directory (see the module comment), and the reference to it. Pure but
 * for reading the files: ConfigMapReportStore sends it. Throws ReportStoreError when not even the verdict
 * fits in maxBytes.
 */
export async function buildReportConfigMap(
  run: ReportRun,
  runNumber: number,
  reportDir: string,
  maxBytes: number = defaultConfigMapReportMaxBytes,
): Promise<{ configMap: V1ConfigMap; ref: StoredReportRef }> {
  const who = subject(run, runNumber);
  const name = configMapReportName(run.name, runNumber);
  const files = await reportFiles(reportDir, who);
  const compress = async (file: SourceFile, budget: number): Promise<Part | undefined> => {
    try {
      return { ...(await compressFile(file.absolute, Math.max(budget, 0))), file };
    } catch (error) {
      if (error instanceof OverBudget) return undefined;
      throw new ReportStoreError(who, `cannot read ${file.absolute}: ${(error as Error).message}`, { cause: error });
    }
  };
  const verdict = await compress(files.verdict, maxBytes);
  const html = files.html && verdict ? await compress(files.html, maxBytes - verdict.data.length) : undefined;
  const htmlFits = files.html === undefined || html !== undefined;
  // The history is all or nothing: a part of it is not a history the checker can judge.
  const history: Part[] = [];
  let historyFits = true;
  let budget = maxBytes - (verdict?.data.length ?? 0) - (html?.data.length ?? 0);
  for (const segment of files.history) {
    const compressed = verdict && htmlFits ? await compress(segment, budget) : undefined;
    if (!compressed) {
      historyFits = false;
      break;
    }
    history.push(compressed);
    budget -= compressed.data.length;
  }

  const tooBig = `did not fit in a ConfigMap report of at most ${formatBytes(maxBytes)}`;
  const historyText = `the history (${files.history.length} segment${files.history.length === 1 ? '' : 's'}, ${formatBytes(files.history.reduce((sum, f) => sum + f.size, 0))})`;
  const candidates: { parts: Part[]; omitted?: string }[] = [];
  if (verdict) {
    const kept = html ? [verdict, html] : [verdict];
    if (htmlFits && historyFits) candidates.push({ parts: [...kept, ...history] });
    if (htmlFits && files.history.length > 0) candidates.push({ parts: kept, omitted: `${historyText} ${tooBig}; the verdict${html ? ' and the HTML report are' : ' is'} kept` });
    const dropped = [...(files.history.length > 0 ? [historyText] : []), ...(files.html ? ['report.html'] : [])];
    if (dropped.length > 0) candidates.push({ parts: [verdict], omitted: `${dropped.join(' and ')} ${tooBig}; the verdict is kept` });
  }
  const assembled = candidates.map(({ parts, omitted }) => {
    const entries = parts.map((p) => ({ path: p.file.path, key: binaryKey(p.file), bytes: p.bytes, storedBytes: p.data.length, sha256: p.sha256 }));
    const index = `${JSON.stringify(indexFor(run, runNumber, entries, omitted), null, 2)}\n`;
    const size = parts.reduce((sum, p) => sum + p.data.length, 0) + Buffer.byteLength(index);
    return { parts, index, size, omitted };
  });
  const chosen = assembled.find((a) => a.size <= maxBytes);
  if (!chosen) throw new ReportStoreError(who, `even verdict.json does not fit in a ConfigMap report of at most ${formatBytes(maxBytes)}`);
  const { omitted } = chosen;

  const configMap: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: run.namespace,
      labels: {
        [reportLabels.run]: reportRunLabelValue(run.name),
        [reportLabels.runNumber]: String(runNumber),
        'app.kubernetes.io/managed-by': 'etcd-robustness-operator',
      },
      // No owner reference: a report outlives its RobustnessRun (the run's finalizer keeps reports);
      // while the run exists, prune() keeps those of the runs in its status history.
      annotations: { [reportAnnotations.run]: run.name, [reportAnnotations.runUid]: run.uid, ...(omitted === undefined ? {} : { [reportAnnotations.truncated]: omitted }) },
    },
    data: { [indexKey]: chosen.index },
    binaryData: Object.fromEntries(chosen.parts.map((p) => [binaryKey(p.file), p.data.toString('base64')])),
  };
  const ref: StoredReportRef = { kind: 'configMap', name, size: chosen.size, ...(omitted === undefined ? {} : { truncated: true }) };
  return { configMap, ref };
}

export interface ConfigMapReportStoreOptions {
  kubeConfig: KubeConfig;
  /** Most bytes stored per report (compressed files and index); default 900 KiB: a ConfigMap holds at most 1 MiB. */
  maxBytes?: number;
}

/** A ConfigMap per run in the run's namespace (see the module comment). */
export class ConfigMapReportStore implements ReportStore {
  readonly maxBytes: number;
  private readonly core: CoreV1Api;

  constructor(options: ConfigMapReportStoreOptions) {
    const maxBytes = options.maxBytes ?? defaultConfigMapReportMaxBytes;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > 1024 * 1024) throw new RangeError(`maxBytes must be an integer from 1 to 1 MiB, got ${maxBytes}`);
    this.maxBytes = maxBytes;
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  async store(run: ReportRun, runNumber: number, reportDir: string): Promise<StoredReportRef> {
    const who = subject(run, runNumber);
    const { configMap, ref } = await buildReportConfigMap(run, runNumber, reportDir, this.maxBytes);
    const { namespace } = run;
    const { name } = ref;
    const fail = (action: string, error: unknown): ReportStoreError => {
      const { status, message } = kubeApiFailure(error);
      return new ReportStoreError(who, `cannot ${action} ConfigMap ${namespace}/${name}${status === undefined ? '' : `: HTTP ${status}`}: ${message}`, { ...(status === undefined ? {} : { status }), cause: error });
    };
    try {
      await this.core.createNamespacedConfigMap({ namespace, body: configMap });
      return ref;
    } catch (error) {
      if (kubeApiFailure(error).status !== 409) throw fail('create', error);
    }
    // It exists: a retried reconcile stored this run before. Replace it, on the version read (a concurrent change makes the replace fail with 409 and we read again).
    for (let attempt = 1; ; attempt++) {
      let existing: V1ConfigMap;
      try {
        existing = await this.core.readNamespacedConfigMap({ name, namespace });
      } catch (error) {
        throw fail('read the existing', error);
      }
      if (existing.metadata?.labels?.[reportLabels.run] !== configMap.metadata!.labels![reportLabels.run]) {
        throw new ReportStoreError(who, `ConfigMap ${namespace}/${name} exists and is not a report of this run (no ${reportLabels.run}=${reportRunLabelValue(run.name)} label); not replacing it`, { status: 409 });
      }
      try {
        configMap.metadata!.resourceVersion = existing.metadata?.resourceVersion;
        await this.core.replaceNamespacedConfigMap({ name, namespace, body: configMap });
        return ref;
      } catch (error) {
        if (kubeApiFailure(error).status !== 409 || attempt >= 3) throw fail('replace', error);
      }
    }
  }

  async prune(run: ReportRun, keep: readonly number[]): Promise<number> {
    const list = await this.core.listNamespacedConfigMap({ namespace: run.namespace, labelSelector: `${reportLabels.run}=${reportRunLabelValue(run.name)}` });
    let deleted = 0;
    for (const cm of list.items) {
      const number = Number(cm.metadata?.labels?.[reportLabels.runNumber]);
      if (!Number.isSafeInteger(number) || keep.includes(number) || cm.metadata?.name === undefined) continue;
      try {
        await this.core.deleteNamespacedConfigMap({ name: cm.metadata.name, namespace: run.namespace });
        deleted++;
      } catch (error) {
        if (kubeApiFailure(error).status !== 404) throw new ReportStoreError(subject(run, number), `cannot delete ConfigMap ${run.namespace}/${cm.metadata.name}: ${kubeApiFailure(error).message}`, { cause: error });
      }
    }
    return deleted;
  }

  async fetch(namespace: string, ref: StoredReportRef, targetDir: string): Promise<void> {
    const who = `stored report ConfigMap ${namespace}/${ref.name}`;
    if (ref.kind !== 'configMap') throw new ReportStoreError(who, `is a ${ref.kind} report, not a ConfigMap one`);
    let configMap: V1ConfigMap;
    try {
      configMap = await this.core.readNamespacedConfigMap({ name: ref.name, namespace });
    } catch (error) {
      const { status, message } = kubeApiFailure(error);
      throw new ReportStoreError(who, `cannot read it${status === undefined ? '' : `: HTTP ${status}`}: ${message}`, { ...(status === undefined ? {} : { status }), cause: error });
    }
    const indexText = configMap.data?.[indexKey];
    if (indexText === undefined) throw new ReportStoreError(who, `has no ${indexKey}: not a stored report`);
    const index = parseIndex(indexText, who);
    await prepareTarget(targetDir, index, who);
    for (const entry of index.files) {
      const stored = configMap.binaryData?.[entry.key];
      if (stored === undefined) throw new ReportStoreError(who, `index.json lists ${entry.key}, which the ConfigMap does not hold`);
      let data: Buffer;
      try {
        data = await gunzip(Buffer.from(stored, 'base64'));
      } catch (error) {
        throw new ReportStoreError(who, `${entry.key} is not gzip data: ${(error as Error).message}`, { cause: error });
      }
      verify(entry, data.length, createHash('sha256').update(data).digest('hex'), who);
      try {
        await writeFile(path.join(targetDir, entry.path), data, { flag: 'wx' });
      } catch (error) {
        throw new ReportStoreError(who, `cannot write ${path.join(targetDir, entry.path)}: ${(error as Error).message}`, { cause: error });
      }
    }
  }
}

// --- Volume -------------------------------------------------------------------------------------------

const dnsName = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

async function readIndexIfAny(dir: string): Promise<ReportIndex | undefined> {
  try {
    return parseIndex(await readFile(path.join(dir, indexKey), 'utf8'), dir);
  } catch {
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

export interface VolumeReportStoreOptions {
  /** The folder (a mounted volume) reports go under: <root>/<namespace>/<run>/<n>/. */
  root: string;
}

/**
 * Reports as folders on a volume (see the module comment). StoredReportRef.name is the report folder's
 * absolute path as this process sees it, so `etcd-robustness report` can copy it when it runs where the
 * volume is mounted (the operator's own machine with `--runtime=local`).
 */
export class VolumeReportStore implements ReportStore {
  readonly root: string;

  constructor(options: VolumeReportStoreOptions) {
    this.root = path.resolve(options.root);
  }

  async store(run: ReportRun, runNumber: number, reportDir: string): Promise<StoredReportRef> {
    const who = subject(run, runNumber);
    if (!dnsName.test(run.namespace) || !dnsName.test(run.name) || run.name.length > maxNameLength) {
      throw new ReportStoreError(who, 'the namespace and name must be DNS names to be used as folder names');
    }
    if (!Number.isSafeInteger(runNumber) || runNumber < 1) throw new ReportStoreError(who, `run number must be a positive integer, got ${runNumber}`);
    const files = await reportFiles(reportDir, who);
    const parent = path.join(this.root, run.namespace, run.name);
    const staging = path.join(parent, `.${runNumber}.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(path.join(staging, 'history'), { recursive: true });
      const entries: ReportIndexEntry[] = [];
      for (const file of [files.verdict, ...(files.html ? [files.html] : []), ...files.history]) {
        const key = `${file.path}.gz`;
        const target = path.join(staging, key);
        const { bytes, sha256 } = await gzipFile(file.absolute, createWriteStream(target, { flags: 'wx' }));
        entries.push({ path: file.path, key, bytes, storedBytes: (await stat(target)).size, sha256 });
      }
      if (files.history.length === 0) await rm(path.join(staging, 'history'), { recursive: true });
      const index = `${JSON.stringify(indexFor(run, runNumber, entries, undefined), null, 2)}\n`;
      await writeFile(path.join(staging, indexKey), index, { flag: 'wx' });
      const size = entries.reduce((sum, e) => sum + e.storedBytes, 0) + Buffer.byteLength(index);
      const final = await this.placeFor(parent, runNumber, run.uid);
      await this.moveInto(staging, final);
      return { kind: 'volume', name: final, size };
    } catch (error) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      if (error instanceof ReportStoreError) throw error;
      throw new ReportStoreError(who, `cannot store the report under ${parent}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** <n>, unless that folder holds a report of another RobustnessRun (another uid): then <n>-<uid>. */
  private async placeFor(parent: string, runNumber: number, uid: string): Promise<string> {
    const plain = path.join(parent, String(runNumber));
    if (!(await exists(plain))) return plain;
    if ((await readIndexIfAny(plain))?.run.uid === uid) return plain;
    return path.join(parent, `${runNumber}-${uid.replace(/[^-a-zA-Z0-9]/g, '')}`);
  }

  /** Renames the finished folder into place; a folder of the same run already there (a retried store) is replaced. */
  private async moveInto(staging: string, final: string): Promise<void> {
    if (!(await exists(final))) {
      await rename(staging, final);
      return;
    }
    const old = `${path.join(path.dirname(final), `.${path.basename(final)}.old-`)}${randomBytes(6).toString('hex')}`;
    await rename(final, old);
    await rename(staging, final);
    await rm(old, { recursive: true, force: true });
  }

  async prune(run: ReportRun, keep: readonly number[]): Promise<number> {
    const parent = path.join(this.root, run.namespace, run.name);
    let entries: string[];
    try {
      entries = await readdir(parent);
    } catch {
      return 0;
    }
    let deleted = 0;
    for (const entry of entries) {
      // <n> or <n>-<uid> (another incarnation's report of the same name: left alone).
      if (!/^\d+$/.test(entry) || keep.includes(Number(entry))) continue;
      await rm(path.join(parent, entry), { recursive: true, force: true });
      deleted++;
    }
    return deleted;
  }

  async fetch(namespace: string, ref: StoredReportRef, targetDir: string): Promise<void> {
    const who = `stored report ${ref.name}`;
    if (ref.kind !== 'volume') throw new ReportStoreError(who, `is a ${ref.kind} report, not a volume one`);
    const dir = path.resolve(this.root, ref.name);
    const relative = path.relative(path.join(this.root, namespace), dir);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new ReportStoreError(who, `is not a report folder of namespace ${namespace} under ${this.root}`);
    }
    let indexText: string;
    try {
      indexText = await readFile(path.join(dir, indexKey), 'utf8');
    } catch (error) {
      throw new ReportStoreError(who, `cannot read ${path.join(dir, indexKey)}: ${(error as Error).message}`, { cause: error });
    }
    const index = parseIndex(indexText, who);
    await prepareTarget(targetDir, index, who);
    for (const entry of index.files) {
      if (entry.key !== `${entry.path}.gz`) throw new ReportStoreError(who, `index.json lists ${entry.path} stored as ${entry.key}, expected ${entry.path}.gz`);
      const hash = createHash('sha256');
      let bytes = 0;
      try {
        await pipeline(
          createReadStream(path.join(dir, entry.key)),
          createGunzip(),
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              hash.update(chunk);
              bytes += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(path.join(targetDir, entry.path), { flags: 'wx' }),
        );
      } catch (error) {
        throw new ReportStoreError(who, `cannot restore ${entry.path}: ${(error as Error).message}`, { cause: error });
      }
      verify(entry, bytes, hash.digest('hex'), who);
    }
  }
}
