/**
 * One run's session: the resources its steps open (etcd clients, cleanups) and the state they share
 * (the stop signal, the newest revision seen, the members' names, the first violation). close() runs
 * the cleanups the steps registered with onClose(), last first, then closes every client.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import type { RobustnessRun, RuntimeMember } from '../domain/index.ts';
import { logger } from '../log.ts';
import { recordingEtcdClient } from '../probes/recording-client.ts';
import { clearPrefix, memberNamesById } from './cluster.ts';
import type { RunMetrics } from './metrics.ts';
import type { RunOptions } from './types.ts';

export class ClusterUnreachableError extends Error {
  override name = 'ClusterUnreachableError';
  readonly endpoints: string[];
  constructor(endpoints: string[], cause: string) {
    super(`cannot reach etcd at ${endpoints.join(', ')}: ${cause}`);
    this.endpoints = endpoints;
  }
}

export class RunSession {
  readonly options: RunOptions;
  readonly run: RobustnessRun;
  readonly spec: RobustnessRun['spec'];
  readonly members: RuntimeMember[];
  readonly metrics: RunMetrics;
  readonly prefix: string;
  readonly endpoints: string[];
  /** Where clients and watches spread: through the service when there is one (it outlives member replacements). */
  readonly spreadHosts: string[];
  readonly started = new Date();
  readonly startedAt = performance.now();
  readonly admin: Etcd3;
  /** The revision after connect() cleared the prefix: the history starts after it. */
  initialRevision = 0;
  /** Member ids to names (a replaced member comes back under a new id: refreshMemberNames keeps it named). */
  memberNames = new Map<string, string>();
  /** The newest revision a successful response showed. */
  maxRevision = 0;
  /** Set when the run's time is up (or it was stopped): no new requests. */
  stopped = false;
  /** Why the run stopped before its time (the result's stoppedEarly). */
  stopReason: string | undefined;
  /** Milliseconds from the start to the first violation the live checks saw (any check). */
  firstViolationMs: number | undefined;
  private readonly stop = new AbortController();
  private readonly etcds: Etcd3[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  constructor(options: RunOptions) {
    this.options = options;
    this.run = options.run;
    this.spec = options.run.spec;
    this.members = options.members;
    this.metrics = options.metrics;
    this.prefix = this.spec.prefix ?? `/etcd-robustness/${this.run.metadata.name}/`;
    this.endpoints = this.members.map((m) => m.endpoint);
    this.spreadHosts = options.serviceEndpoint === undefined ? this.endpoints : [options.serviceEndpoint];
    this.admin = this.client(this.endpoints);
  }

  /** Aborted when the run stops (its time is up, the caller stopped it, or a violation with abortOnViolation). */
  get signal(): AbortSignal {
    return this.stop.signal;
  }

  /** A client to `hosts` with the run's TLS, closed with the session. */
  client(hosts: string[]): Etcd3 {
    const etcd = recordingEtcdClient(hosts, { tls: this.options.clientTls ?? this.options.runtime?.clientTls });
    this.etcds.push(etcd);
    return etcd;
  }

  /** Registers a cleanup for close() (they run last first). */
  onClose(cleanup: () => Promise<void> | void): void {
    this.cleanups.push(cleanup);
  }

  /** Names the members and clears the prefix; a failure is a ClusterUnreachableError. */
  async connect(): Promise<void> {
    try {
      this.memberNames = await memberNamesById(this.admin, this.members);
      this.initialRevision = await clearPrefix(this.admin, this.prefix);
    } catch (error) {
      throw new ClusterUnreachableError(this.endpoints, (error as Error).message);
    }
    this.maxRevision = this.initialRevision;
  }

  /** Stops the run early (the first reason given is the one reported). */
  stopRun(reason: string): void {
    if (this.stop.signal.aborted) return;
    this.stopReason = reason;
    this.stop.abort();
  }

  noteViolation(): void {
    this.firstViolationMs ??= Math.round(performance.now() - this.startedAt);
  }

  /** Waits out the run's duration (or until it is stopped), then stops it: no new requests. */
  async runForDuration(): Promise<void> {
    this.metrics.active(true);
    // The caller may say why it stopped the run (the operator: its target deleted, the operator stopping).
    const { signal } = this.options;
    const onAbort = (): void => this.stopRun(typeof signal?.reason === 'string' ? signal.reason : 'stopped by the user');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    await sleep(this.spec.durationMs, undefined, { signal: this.stop.signal }).catch(() => undefined);
    signal?.removeEventListener('abort', onAbort);
    this.stopped = true;
    this.stop.abort();
  }

  /** Re-reads the member names in the background (a replaced member answers under a new id). */
  refreshMemberNames(): void {
    memberNamesById(this.admin, this.members).then(
      (fresh) => {
        for (const [id, name] of fresh) this.memberNames.set(id, name);
      },
      () => undefined,
    );
  }

  phase(name: string): void {
    logger.debug(`run ${this.run.metadata.name}: ${name}`, { elapsedMs: Math.round(performance.now() - this.startedAt) });
  }

  /** Deletes the run's keys and revokes its leases (not recorded: the history has ended). */
  async cleanUp(leases: Iterable<string>): Promise<void> {
    const { admin, prefix } = this;
    await clearPrefix(admin, prefix).catch((error: unknown) => logger.warn('could not delete the run prefix', { prefix, error: (error as Error).message }));
    for (const id of leases) await admin.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + 2000 }).catch(() => undefined);
  }

  async close(): Promise<void> {
    for (const cleanup of this.cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.warn('cleanup failed', { error: (error as Error).message });
      }
    }
    for (const etcd of this.etcds) etcd.close();
  }
}
