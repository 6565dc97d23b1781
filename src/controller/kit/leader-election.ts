/**
 * Leader election on a coordination.k8s.io/v1 Lease (client-go's leaderelection, LeaseLock):
 * - a candidate takes the Lease only when it is free (no holder) or expired (renewTime +
 *   leaseDurationSeconds in the past), with an optimistic-concurrency replace (the read resourceVersion;
 *   a 409 means another candidate won);
 * - the leader renews every retryPeriod; when no renewal succeeded for renewDeadline (< leaseDuration,
 *   so it gives up before anyone else may take over), or it sees another holder, it stops leading:
 *   the signal handed to onStartedLeading aborts;
 * - close() stops campaigning; a leader waits for its work (the promise onStartedLeading returned), then
 *   releases the Lease (holder cleared, leaseDurationSeconds 1) so another replica takes over at once.
 * A candidate that lost leadership campaigns again once its work has stopped.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { logger } from '../../log.ts';
import { KubeApiError, kubeRequest } from './kube-http.ts';
import type { ControllerMetrics } from './metrics.ts';

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  metrics?: ControllerMetrics;
}

export interface LeaderCallbacks {
  /** Called on becoming leader; stop the work when `signal` aborts. A returned promise is awaited before the Lease is released. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
  /** Called when the observed holder changes (including to this identity). */
  onNewLeader?: (identity: string) => void;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
    [k: string]: unknown;
  };
}

/** A MicroTime: RFC 3339 with 6 fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function abortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

export class LeaderElector {
  private readonly kubeConfig: KubeConfig;
  private readonly namespace: string;
  private readonly name: string;
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly metrics: ControllerMetrics | undefined;
  private readonly closing = new AbortController();
  private leading = false;
  private observedHolder: string | undefined;
  private running: Promise<void> | undefined;
  /** performance.now() at the start of the last successful acquire or renew request. */
  private acquiredAt = 0;
  private acquiredTerm = 0;

  constructor(options: LeaderElectionOptions) {
    this.kubeConfig = options.kubeConfig;
    this.namespace = options.namespace;
    this.name = options.name;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.metrics = options.metrics;
    if (this.identity === '') throw new RangeError('leader election: identity must not be empty');
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new RangeError('leader election: leaseDurationMs must be greater than renewDeadlineMs');
    }
    if (!(this.renewDeadlineMs > this.retryPeriodMs * 1.2) || !(this.retryPeriodMs > 0)) {
      throw new RangeError('leader election: renewDeadlineMs must be greater than 1.2 * retryPeriodMs > 0');
    }
    this.metrics?.leader(this.name, false);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * 1 + the Lease's transitions when this replica last acquired it: grows with every change of holder,
   * so a replica that lost the Lease has a lower term than the one that took it (a fencing token), and
   * every elected term is above 0, the term of a replica that runs without leader election.
   */
  get term(): number {
    return this.acquiredTerm;
  }

  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) throw new Error('LeaderElector.run() was called twice');
    this.running = this.loop(callbacks);
    return this.running;
  }

  async close(): Promise<void> {
    this.closing.abort(new Error('leader election closed'));
    await this.running;
  }

  private get leasePath(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases/${encodeURIComponent(this.name)}`;
  }

  private async loop(callbacks: LeaderCallbacks): Promise<void> {
    const closing = this.closing.signal;
    while (!closing.aborted) {
      // Campaign.
      if (!(await this.tryAcquireOrRenew(callbacks, undefined))) {
        await abortable(this.retryPeriodMs * (1 + Math.random() * 0.2), closing);
        continue;
      }
      await this.lead(callbacks);
    }
  }

  /**
   * Leads until renewals fail past renewDeadline, another holder shows up, or close(). On close() the
   * work is told to stop and the Lease is still renewed until the work has stopped, then released.
   */
  private async lead(callbacks: LeaderCallbacks): Promise<void> {
    const lease = `${this.namespace}/${this.name}`;
    const lost = new AbortController();
    const leadership = new AbortController();
    lost.signal.addEventListener('abort', () => leadership.abort(lost.signal.reason), { once: true });
    this.leading = true;
    this.metrics?.leader(this.name, true);
    logger.info('leader election: became leader', { lease, identity: this.identity });

    // Give up leadership exactly renewDeadline after the start of the last successful renewal (the
    // acquisition counts as the first): before the lease can expire for anyone else.
    let deadline: NodeJS.Timeout | undefined;
    const armDeadline = (renewStarted: number): void => {
      clearTimeout(deadline);
      const remaining = renewStarted + this.renewDeadlineMs - performance.now();
      deadline = setTimeout(() => lost.abort(new Error('no renewal succeeded within renewDeadline')), Math.max(0, remaining));
    };
    armDeadline(this.acquiredAt);

    const workDone = new AbortController();
    const work = (async () => {
      await callbacks.onStartedLeading(leadership.signal);
    })()
      .catch((error: unknown) => {
        logger.error('leader election: onStartedLeading failed', { error: describe(error) });
      })
      .finally(() => workDone.abort());

    await this.renewUntil(callbacks, AbortSignal.any([lost.signal, this.closing.signal]), lost, armDeadline);
    if (!lost.signal.aborted) {
      leadership.abort(new Error('leader election closed'));
      await this.renewUntil(callbacks, AbortSignal.any([lost.signal, workDone.signal]), lost, armDeadline);
    }
    clearTimeout(deadline);
    // Stop claiming leadership before anything else: whoever takes over must never see us leading too.
    this.leading = false;
    this.metrics?.leader(this.name, false);
    if (lost.signal.aborted) {
      logger.warn('leader election: lost leadership', { lease, identity: this.identity, reason: describe(lost.signal.reason) });
    }
    try {
      callbacks.onStoppedLeading?.();
    } catch (error) {
      logger.error('leader election: onStoppedLeading failed', { error: describe(error) });
    }
    await work;
    if (!lost.signal.aborted) await this.release();
  }

  /** Renews every retryPeriod until `stop` aborts; marks `lost` when another holder has the Lease. */
  private async renewUntil(
    callbacks: LeaderCallbacks,
    stop: AbortSignal,
    lost: AbortController,
    armDeadline: (renewStarted: number) => void,
  ): Promise<void> {
    for (;;) {
      await abortable(this.retryPeriodMs, stop);
      if (stop.aborted) return;
      const started = performance.now();
      const outcome = await this.tryAcquireOrRenew(callbacks, lost.signal);
      if (outcome === 'lost') lost.abort(new Error('another candidate holds the lease'));
      else if (outcome && !lost.signal.aborted) armDeadline(started);
    }
  }

  /**
   * One attempt to take or renew the Lease. true: we hold it now; false: not this time (held by another
   * candidate and not expired, a conflict, an error); 'lost': we are leader and another holder has it.
   */
  private async tryAcquireOrRenew(callbacks: LeaderCallbacks, leading: AbortSignal | undefined): Promise<boolean | 'lost'> {
    const started = performance.now();
    const signal = leading ?? this.closing.signal;
    const timeoutMs = this.renewDeadlineMs;
    const requestSignal = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    const now = new Date();
    try {
      let lease: Lease | undefined;
      try {
        lease = await kubeRequest<Lease>(this.kubeConfig, this.leasePath, { signal: requestSignal, timeoutMs });
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 404)) throw error;
      }
      if (!lease) {
        const created: Lease = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: this.leaseDurationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        };
        await kubeRequest(this.kubeConfig, `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`, {
          method: 'POST',
          body: created,
          signal: requestSignal,
          timeoutMs,
        });
        this.acquiredAt = started;
        this.acquiredTerm = 1;
        this.observe(this.identity, callbacks);
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      if (holder !== '') this.observe(holder, callbacks);
      if (holder !== '' && holder !== this.identity && !this.expired(spec, now)) {
        return leading ? 'lost' : false;
      }
      // Like client-go: taking the lease from anyone else (or from nobody, after a release) is a transition.
      const transition = holder !== this.identity;
      const replaced: Lease = {
        ...lease,
        spec: {
          ...spec,
          holderIdentity: this.identity,
          leaseDurationSeconds: this.leaseDurationSeconds,
          renewTime: microTime(now),
          acquireTime: transition || !spec.acquireTime ? microTime(now) : spec.acquireTime,
          leaseTransitions: (spec.leaseTransitions ?? 0) + (transition ? 1 : 0),
        },
      };
      await kubeRequest(this.kubeConfig, this.leasePath, { method: 'PUT', body: replaced, signal: requestSignal, timeoutMs });
      this.acquiredAt = started;
      this.acquiredTerm = (replaced.spec?.leaseTransitions ?? 0) + 1;
      this.observe(this.identity, callbacks);
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      if (error instanceof KubeApiError && error.status === 409) {
        logger.debug('leader election: lost a race for the lease', { identity: this.identity });
        return false;
      }
      logger.warn('leader election: could not read or update the lease', {
        lease: `${this.namespace}/${this.name}`,
        identity: this.identity,
        error: describe(error),
      });
      return false;
    }
  }

  private get leaseDurationSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }

  private expired(spec: NonNullable<Lease['spec']>, now: Date): boolean {
    const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
    if (Number.isNaN(renewed)) return true;
    return renewed + (spec.leaseDurationSeconds ?? 0) * 1000 < now.getTime();
  }

  private observe(holder: string, callbacks: LeaderCallbacks): void {
    if (holder === this.observedHolder) return;
    this.observedHolder = holder;
    logger.info('leader election: new leader', { lease: `${this.namespace}/${this.name}`, leader: holder });
    try {
      callbacks.onNewLeader?.(holder);
    } catch (error) {
      logger.error('leader election: onNewLeader failed', { error: describe(error) });
    }
  }

  /** Clears the holder so another candidate can take over without waiting for the lease to expire. */
  private async release(): Promise<void> {
    try {
      const lease = await kubeRequest<Lease>(this.kubeConfig, this.leasePath, { timeoutMs: this.renewDeadlineMs });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime(new Date());
      await kubeRequest(this.kubeConfig, this.leasePath, {
        method: 'PUT',
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
        },
        timeoutMs: this.renewDeadlineMs,
      });
      logger.info('leader election: released the lease', { lease: `${this.namespace}/${this.name}`, identity: this.identity });
    } catch (error) {
      logger.warn('leader election: could not release the lease (it will expire)', {
        lease: `${this.namespace}/${this.name}`,
        error: describe(error),
      });
    }
  }
}
