/**
 * Reports as a size-bounded ConfigMap per run, in the run's namespace:
 *   name        <run>-report-<n> (shortened with a hash when that is over 253 characters)
 *   labels      etcd.robustness.io/run=<run> (shortened with a hash over 63 characters),
 *               etcd.robustness.io/run-number=<n>
 *   data        index.json
 *   binaryData  verdict.json.gz, report.html.gz, history-000001.jsonl.gz, ...
 * A ConfigMap holds at most 1 MiB (data and binaryData together). When everything does not fit in
 * maxBytes the history is dropped and the verdict and HTML report are kept (truncated: true, said in the
 * index and the etcd.robustness.io/report-truncated annotation); when even those do not fit, the verdict
 * alone is kept.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { StoredReportRef } from '../../domain/run-resource.ts';
import { kubeApiFailure } from '../kube-api.ts';
import { configMapReportName, reportAnnotations, reportLabels, reportRunLabelValue } from './naming.ts';
import { compressFile, OverBudget, prepareTarget, reportFiles, type Compressed, type SourceFile } from './report-files.ts';
import { indexFor, indexKey, parseIndex, ReportStoreError, subject, verify, type ReportRun, type ReportStore } from './stored-report.ts';

const gunzip = promisify(gunzipCallback);

/** A ConfigMap holds at most 1 MiB; the rest is headroom for the index and the object's metadata. */
export const defaultConfigMapReportMaxBytes = 900 * 1024;

type Part = Compressed & { file: SourceFile };

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
