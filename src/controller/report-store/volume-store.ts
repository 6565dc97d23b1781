/**
 * Reports as folders on a volume: <root>/<namespace>/<run>/<n>/ holding index.json, verdict.json.gz,
 * report.html.gz and history/history-000001.jsonl.gz, ... A folder is written under a temporary name and
 * renamed into place, so a reader never sees half a report. Storing run n of the same RobustnessRun (same
 * uid) again replaces it; a folder of another RobustnessRun of the same name (deleted and created again) is
 * never touched: the report goes to <n>-<uid> instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { StoredReportRef } from '../../domain/run-resource.ts';
import { maxNameLength } from './naming.ts';
import { gzipFile, prepareTarget, reportFiles } from './report-files.ts';
import { indexFor, indexKey, parseIndex, ReportStoreError, subject, verify, type ReportIndex, type ReportIndexEntry, type ReportRun, type ReportStore } from './stored-report.ts';

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
