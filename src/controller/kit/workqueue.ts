/**
 * A de-duplicating per-key work queue with delayed adds and per-key exponential backoff: client-go's
 * workqueue (the rate-limiting, delaying queue controller-runtime builds on).
 *
 * - A key waiting in the queue is queued once, however often it is added.
 * - A key being processed (between get() and done()) is not handed out again; an add() meanwhile marks it
 *   dirty and it is queued once more when done() is called. So one key is never processed twice at once.
 * - addAfter() keeps the earliest pending time per key; addRateLimited() waits base * 2^failures (capped),
 *   and forget() resets the failure count.
 */
import type { ControllerMetrics } from './metrics.ts';

export interface WorkQueueOptions {
  name: string;
  /** First backoff of addRateLimited (default 5 ms). */
  baseDelayMs?: number;
  /** Backoff cap of addRateLimited (default 1 000 000 ms, controller-runtime's 1000 s). */
  maxDelayMs?: number;
  metrics?: ControllerMetrics;
}

interface Delayed {
  at: number;
  timer: NodeJS.Timeout;
}

export class WorkQueue {
  readonly name: string;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly metrics: ControllerMetrics | undefined;
  /** Keys ready to be handed out, in order. Every key here is also in `dirty`. */
  private readonly queue: string[] = [];
  /** Keys that need processing (queued, or added again while processing). */
  private readonly dirty = new Set<string>();
  /** Keys handed out by get() and not done() yet, with the time they were handed out. */
  private readonly processing = new Map<string, number>();
  /** When each dirty key was added (for workqueue_queue_duration_seconds). */
  private readonly addedAt = new Map<string, number>();
  private readonly delayed = new Map<string, Delayed>();
  private readonly failures = new Map<string, number>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 1_000_000;
    if (!(this.baseDelayMs >= 0) || !(this.maxDelayMs >= this.baseDelayMs)) {
      throw new RangeError(`work queue ${this.name}: need 0 <= baseDelayMs <= maxDelayMs`);
    }
    this.metrics = options.metrics;
    this.metrics?.queueCreated(this.name, () => this.progress());
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    this.metrics?.queueAdded(this.name);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const at = performance.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending) {
      if (pending.at <= at) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.metrics?.queueRetried(this.name);
    this.addAfter(key, this.backoffMs(failures));
  }

  /** The delay addRateLimited uses after `failures` earlier failures. */
  backoffMs(failures: number): number {
    // 2 ** 1100 is Infinity: min() still caps it.
    return Math.min(this.baseDelayMs * 2 ** failures, this.maxDelayMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.handOut(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.metrics?.queueWorked(this.name, (performance.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  get length(): number {
    return this.queue.length;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const resolve of this.waiters.splice(0)) resolve(undefined);
    this.metrics?.queueShutDown(this.name);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(this.handOut(key));
      return;
    }
    this.queue.push(key);
    this.metrics?.queueDepth(this.name, this.queue.length);
  }

  private handOut(key: string): string {
    const now = performance.now();
    this.dirty.delete(key);
    this.processing.set(key, now);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.metrics?.queueWaited(this.name, (now - added) / 1000);
    this.metrics?.queueDepth(this.name, this.queue.length);
    return key;
  }

  private progress(): { unfinishedWorkSeconds: number; longestRunningSeconds: number } {
    const now = performance.now();
    let unfinished = 0;
    let longest = 0;
    for (const started of this.processing.values()) {
      unfinished += now - started;
      longest = Math.max(longest, now - started);
    }
    return { unfinishedWorkSeconds: unfinished / 1000, longestRunningSeconds: longest / 1000 };
  }
}
