/**
 * The agent's part in a two-node-plus-witness failover on Pods: bringing the survivor back alone, inside
 * its running Pod, as the local placement's guard script does for a process (src/controller/placement/
 * local-process.ts). The member's etcd runs under tools/etcd-launcher, which restarts it in place after a
 * SIGKILL once no hold file holds, and adds --force-new-cluster while the force file exists. So:
 *
 *   recover(epoch)  hold etcd down (a lease: `<data-dir>.recovery-hold`, 2 minutes), SIGKILL it, wait until
 *                   it is gone, mark every entry of its durable log committed (etcd-wal-commit: see
 *                   src/local/wal-commit.ts for why --force-new-cluster alone drops acknowledged writes),
 *                   write the force file `<data-dir>.force-new-cluster` (the failover's epoch, fsynced),
 *                   release the hold: the launcher starts etcd alone with --force-new-cluster.
 *   finish()        remove the force file (durably): later starts are plain ones.
 *
 * Both files sit beside the data dir on the member's volume, so they outlive the Pod. recover is
 * idempotent per failover: a force file at the epoch asked (or a later one) means it was done, and
 * nothing is killed or rewritten again (a slow operator replica acting on an old plan must not force the
 * survivor twice). Every failure before the force file is written releases the hold: etcd starts plainly
 * again and the operator asks once more. This is not a fault: it has no TTL, since the force file must
 * stay until the operator, which knows when the survivor serves alone, says the failover is over.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { logger } from '../log.ts';
import { pollUntil } from '../poll.ts';
import { findEtcdProcess, signalProcess } from './agent-process.ts';
import { AgentHttpError, errorMessage } from './agent-request.ts';
import { removeHold, syncFolderOf, writeFileDurably, writeHold } from './hold.ts';

/** The force file of the member with this data dir: while it exists, the launcher forces a new cluster. */
export function forceFile(dataDir: string): string {
  return `${path.resolve(dataDir)}.force-new-cluster`;
}

/** The recovery's own hold (not the crash fault's: healing a crash must not release etcd mid-recovery). */
export function recoveryHoldFile(dataDir: string): string {
  return `${path.resolve(dataDir)}.recovery-hold`;
}

/** How long the recovery may keep etcd down: the kill, the wait and etcd-wal-commit on a large WAL. */
const recoveryHoldMs = 120_000;

/** What etcd-wal-commit did (src/local/wal-commit.ts WalCommitResult, which this layer cannot import). */
export interface LogCommit {
  commitBefore: number;
  commitAfter: number;
  lastIndex: number;
}

/** Marks every entry of a stopped member's WAL committed (src/local/wal-commit.ts), given by the agent command. */
export type CommitLog = (dataDir: string) => Promise<LogCommit>;

export interface RecoveryState {
  /** The failover epoch of the force file; absent when there is none (etcd starts plainly). */
  epoch?: number;
}

export interface RecoveryDone extends RecoveryState {
  epoch: number;
  /** false: the force file already said this epoch (or a later one), nothing was done. */
  recovered: boolean;
  /** What etcd-wal-commit did, when it ran. */
  commit?: LogCommit;
}

export interface SurvivorRecoveryOptions {
  member: string;
  /** Absolute. */
  dataDir: string;
  procRoot: string;
  /** Absent: this agent cannot recover (no etcd-wal-commit), and says so. */
  commitLog: CommitLog | undefined;
}

export class SurvivorRecovery {
  private readonly options: SurvivorRecoveryOptions;
  /** One recovery at a time: a second request waits for the first and then finds its force file. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: SurvivorRecoveryOptions) {
    this.options = options;
  }

  state(): RecoveryState {
    let text: string;
    try {
      text = readFileSync(forceFile(this.options.dataDir), 'utf8').trim();
    } catch {
      return {};
    }
    const epoch = Number(text);
    // A force file that does not read as an epoch still forces (the launcher only checks that it exists).
    return { epoch: /^\d{1,15}$/.test(text) ? epoch : 0 };
  }

  recover(epoch: number): Promise<RecoveryDone> {
    return this.oneAtATime(() => this.recoverNow(epoch));
  }

  /** Removes the force file; false when there was none. */
  finish(): Promise<boolean> {
    return this.oneAtATime(async () => {
      const file = forceFile(this.options.dataDir);
      let removed: boolean;
      try {
        removed = await removeHold(file);
      } catch (error) {
        throw new AgentHttpError(500, `could not remove the force file ${file}: ${errorMessage(error)}`);
      }
      if (!removed) return false;
      // The removal must be durable: a force file that comes back would force a new cluster again.
      await syncFolderOf(file);
      logger.info(`agent ${this.options.member}: recovery finished, etcd starts plainly from now on (${file} removed)`);
      return true;
    });
  }

  private oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async recoverNow(epoch: number): Promise<RecoveryDone> {
    const { member, dataDir, procRoot, commitLog } = this.options;
    const current = this.state().epoch;
    if (current !== undefined && current >= epoch) return { epoch: current, recovered: false };
    if (commitLog === undefined) throw new AgentHttpError(409, `agent ${member} cannot recover etcd: it was started without etcd-wal-commit`);
    const hold = recoveryHoldFile(dataDir);
    try {
      await writeHold(hold, Date.now() + recoveryHoldMs);
    } catch (error) {
      throw new AgentHttpError(500, `could not write the recovery hold ${hold}: ${errorMessage(error)}`);
    }
    try {
      const pid = findEtcdProcess(dataDir, procRoot);
      if (pid !== undefined) signalProcess(pid, 'SIGKILL');
      await pollUntil(() => (findEtcdProcess(dataDir, procRoot) === undefined ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
        timeout: () => new AgentHttpError(500, `etcd of ${member} (data dir ${dataDir}) did not exit within 30 s of SIGKILL`),
      });
      let commit: RecoveryDone['commit'];
      try {
        commit = await commitLog(dataDir);
      } catch (error) {
        throw new AgentHttpError(500, `could not commit ${member}'s log: ${errorMessage(error)}`);
      }
      try {
        await writeFileDurably(forceFile(dataDir), `${epoch}\n`);
      } catch (error) {
        throw new AgentHttpError(500, `could not write the force file ${forceFile(dataDir)}: ${errorMessage(error)}`);
      }
      logger.warn(`agent ${member}: etcd starts alone with --force-new-cluster (failover epoch ${epoch})`, { ...commit });
      return { epoch, recovered: true, commit };
    } finally {
      await removeHold(hold).catch((error: unknown) => logger.warn(`agent ${member}: could not remove the recovery hold ${hold} (it expires by itself)`, { error: errorMessage(error) }));
    }
  }
}
