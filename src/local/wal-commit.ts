/**
 * Failover onto the one surviving voter of a two-voter etcd cluster without losing acknowledged writes.
 *
 * `etcd --force-new-cluster` keeps only the WAL entries up to max(HardState.Commit, the backend's
 * consistent index) and discards the rest. A follower fsyncs an entry before it acknowledges it, so with
 * two voters every committed (hence every acknowledged) entry is in the survivor's durable log, but the
 * survivor learns the commit index from a later message of the leader: after the leader dies it may not
 * know that its last entries were committed, and --force-new-cluster alone drops acknowledged writes.
 * commitSurvivorLog marks every entry of the survivor's log as committed first (raft never truncates
 * committed entries, so its log holds the whole committed prefix; entries beyond it were never
 * acknowledged, and an unacknowledged write may take effect). It runs tools/etcd-wal-commit, a Go
 * program on etcd's own WAL package (no Node library reads etcd's WAL).
 *
 * Only for the survivor, with etcd stopped, right before `--force-new-cluster`: a member restarted
 * normally into a cluster after this could commit entries that the cluster replaced.
 */
import { execFile } from 'node:child_process';
import { walCommitBinary } from './binaries.ts';

export interface WalCommitResult {
  /** The WAL's commit index before (its last HardState). */
  commitBefore: number;
  /** The commit index now in the WAL (with dryRun: the one that would be written). */
  commitAfter: number;
  /** The index of the last entry of the durable log (the snapshot's index when no entry follows it). */
  lastIndex: number;
}

export class WalCommitError extends Error {
  override name = 'WalCommitError';
  readonly dataDir: string;
  /** What the tool printed on stderr (its error names the path). */
  readonly stderr: string;
  /** The tool's exit code; null when it was killed (timeout) or could not be started. */
  readonly exitCode: number | null;
  constructor(dataDir: string, message: string, stderr: string, exitCode: number | null) {
    super(`etcd-wal-commit on ${dataDir}: ${message}`);
    this.dataDir = dataDir;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

export interface CommitSurvivorLogOptions {
  /** Read and report only; write nothing. */
  dryRun?: boolean;
  /** The tool is killed after this long (default 120 s: a WAL of many 64 MB segments takes a while to read). */
  timeoutMs?: number;
  /** The binary to run (default: walCommitBinary()). */
  binary?: string;
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Raises the commit index in the WAL of the stopped etcd member whose data dir is `dataDir` to the index
 * of its last entry. Rejects with WalCommitError when the data dir or its WAL is missing, when etcd still
 * runs on it (the WAL's file locks are held: nothing is written), or when the WAL is corrupt.
 */
export async function commitSurvivorLog(dataDir: string, options: CommitSurvivorLogOptions = {}): Promise<WalCommitResult> {
  const binary = options.binary ?? walCommitBinary();
  const args = ['--data-dir', dataDir, ...(options.dryRun ? ['--dry-run'] : [])];
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(binary, args, { timeout: options.timeoutMs ?? 120_000, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (error, out, err) => {
      if (error) {
        const code = typeof error.code === 'number' ? error.code : null;
        const detail = err.trim() || error.message;
        const reason = error.killed ? `killed after ${options.timeoutMs ?? 120_000} ms` : code === null ? detail : `exit code ${code}: ${detail}`;
        reject(new WalCommitError(dataDir, reason, err, code));
        return;
      }
      resolve({ stdout: out, stderr: err });
    });
  });
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new WalCommitError(dataDir, `unexpected output ${JSON.stringify(stdout.slice(0, 200))}`, stderr, 0);
  }
  const { commitBefore, commitAfter, lastIndex } = (parsed ?? {}) as Record<string, unknown>;
  if (!isIndex(commitBefore) || !isIndex(commitAfter) || !isIndex(lastIndex)) {
    throw new WalCommitError(dataDir, `unexpected output ${JSON.stringify(line.slice(0, 200))}`, stderr, 0);
  }
  return { commitBefore, commitAfter, lastIndex };
}
