/**
 * A controller: a work queue of keys and a bounded pool of workers calling a level-based reconcile(key).
 * The queue never hands one key to two workers at once, so a key is reconciled by one worker at a time.
 *
 * Outcomes (controller-runtime's):
 * - success: the key's backoff is forgotten; with `requeueAfterMs` it is queued again after that delay
 *   (with `requeue` it is queued again with its backoff, which is then not forgotten);
 * - TerminalError: logged and counted, backoff forgotten, not requeued (an event or a change requeues it);
 * - any other error: requeued with per-key exponential backoff.
 */
import { logger } from '../../log.ts';
import type { ControllerMetrics, ReconcileOutcome } from './metrics.ts';
import { WorkQueue } from './workqueue.ts';

/** A reconcile failure that retrying cannot fix: logged, counted, not requeued. */
export class TerminalError extends Error {
  override name = 'TerminalError';
}

export interface ReconcileResult {
  /** Reconcile the key again after this many milliseconds (e.g. to poll something outside the API). */
  requeueAfterMs?: number;
  /** Reconcile the key again soon, with the key's backoff (result "requeue"); ignored when requeueAfterMs is set. */
  requeue?: boolean;
}

// Returning nothing means success: a reconcile is usually an `async` function without a result.
// eslint-disable-next-line @typescript-eslint/no-invalid-void-type
export type Reconcile = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

export interface ControllerOptions {
  name: string;
  reconcile: Reconcile;
  /** Workers, i.e. the most reconciles running at once (default 1). */
  concurrency?: number;
  metrics?: ControllerMetrics;
  /** The queue's backoff (default 5 ms .. 1000 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconcile: Reconcile;
  private readonly concurrency: number;
  private readonly metrics: ControllerMetrics | undefined;
  private readonly abort = new AbortController();
  private workers: Promise<void>[] | undefined;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.reconcile = options.reconcile;
    this.concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new RangeError(`controller ${this.name}: concurrency must be a positive integer`);
    }
    this.metrics = options.metrics;
    this.queue = new WorkQueue({
      name: options.name,
      baseDelayMs: options.baseDelayMs,
      maxDelayMs: options.maxDelayMs,
      metrics: options.metrics,
    });
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    if (this.workers) return;
    if (this.abort.signal.aborted) throw new Error(`controller ${this.name} was stopped`);
    this.metrics?.controllerStarted(this.name, this.concurrency);
    this.workers = Array.from({ length: this.concurrency }, () => this.work());
    logger.info('controller started', { controller: this.name, workers: this.concurrency });
  }

  /** Aborts the signal of running reconciles, waits for them to return and shuts the queue down. */
  async stop(): Promise<void> {
    if (!this.abort.signal.aborted) {
      this.abort.abort(new Error(`controller ${this.name} stopping`));
      this.queue.shutDown();
    }
    await Promise.all(this.workers ?? []);
    logger.info('controller stopped', { controller: this.name });
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async process(key: string): Promise<void> {
    const signal = this.abort.signal;
    const started = performance.now();
    const seconds = (): number => (performance.now() - started) / 1000;
    this.metrics?.activeWorkers(this.name, 1);
    try {
      let result: ReconcileResult | undefined;
      try {
        result = (await this.reconcile(key, signal)) || undefined;
      } catch (error) {
        if (error instanceof TerminalError) {
          this.queue.forget(key);
          this.metrics?.reconciled(this.name, 'error', seconds(), 'terminal');
          logger.error('reconcile failed terminally, not retrying', { controller: this.name, key, error: error.message });
          return;
        }
        this.metrics?.reconciled(this.name, 'error', seconds(), 'retriable');
        if (signal.aborted) {
          logger.debug('reconcile ended by shutdown', { controller: this.name, key, error: describe(error) });
          return;
        }
        this.queue.addRateLimited(key);
        logger.warn('reconcile failed, retrying with backoff', {
          controller: this.name,
          key,
          error: describe(error),
          retries: this.queue.numRequeues(key),
        });
        return;
      }
      let outcome: ReconcileOutcome = 'success';
      const after = result?.requeueAfterMs;
      if (after !== undefined && after > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, after);
        outcome = 'requeue_after';
      } else if (result?.requeue === true) {
        // Like controller-runtime: the backoff keeps growing until a plain success.
        this.queue.addRateLimited(key);
        outcome = 'requeue';
      } else {
        this.queue.forget(key);
      }
      this.metrics?.reconciled(this.name, outcome, seconds());
    } finally {
      this.metrics?.activeWorkers(this.name, -1);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
