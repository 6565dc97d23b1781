/**
 * What every report store shares: the ReportStore contract, its error, and the index (index.json) that
 * lists each stored file with its size and SHA-256, so a fetch restores the files byte for byte and
 * notices damage.
 */
import type { StoredReportRef } from '../../domain/run-resource.ts';

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

export const indexKey = 'index.json';

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

export function subject(run: ReportRun, runNumber: number): string {
  return `RobustnessRun ${run.namespace}/${run.name} run ${runNumber}`;
}

const restorablePath = /^(verdict\.json|report\.html|history\/[-._a-zA-Z0-9]+\.jsonl)$/;

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

export function parseIndex(text: string, who: string): ReportIndex {
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

export function verify(entry: ReportIndexEntry, bytes: number, sha256: string, who: string): void {
  if (bytes !== entry.bytes || sha256 !== entry.sha256) {
    throw new ReportStoreError(who, `${entry.path} is damaged: ${bytes} bytes with SHA-256 ${sha256}, the index says ${entry.bytes} bytes with ${entry.sha256}`);
  }
}

export function indexFor(run: ReportRun, runNumber: number, files: ReportIndexEntry[], omitted: string | undefined): ReportIndex {
  const index: ReportIndex = { format: 1, run: { namespace: run.namespace, name: run.name, uid: run.uid }, runNumber, storedAt: new Date().toISOString(), files };
  if (omitted !== undefined) {
    index.truncated = true;
    index.omitted = omitted;
  }
  return index;
}
