/**
 * Controller metrics in controller-runtime's naming (so dashboards and alerts written for Go operators
 * work unchanged): reconcile totals, errors and durations per controller, work-queue depth, adds, retries
 * and latencies per queue, and the leader-election status per Lease.
 *
 * One set of metric objects per prom-client Registry: constructing ControllerMetrics twice on the same
 * registry shares them (prom-client refuses a second registration of a name).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { onMetricSet } from '../../metrics-registry.ts';

export type ReconcileOutcome = 'success' | 'error' | 'requeue' | 'requeue_after';
export const reconcileOutcomes: readonly ReconcileOutcome[] = ['success', 'error', 'requeue', 'requeue_after'];

/** controller-runtime's reconcile_time_seconds buckets. */
const reconcileBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75,
  2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go's workqueue buckets: 10 ns to 1000 s, exponential by 10. */
const queueBuckets = Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));

/** What a work queue reports about its items in flight, read when /metrics is scraped. */
export interface QueueProgress {
  /** Seconds of work in progress that has not been observed by work_duration yet. */
  unfinishedWorkSeconds: number;
  /** Seconds the longest-running item has been processed. */
  longestRunningSeconds: number;
}

function createMetrics(registry: Registry) {
  const registers = [registry];
  const queueProgress = new Map<string, () => QueueProgress>();
  return {
    queueProgress,
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    terminalErrors: new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: reconcileBuckets,
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    }),
    depth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'],
      registers,
    }),
    adds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'],
      registers,
    }),
    retries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'],
      registers,
    }),
    queueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: queueBuckets,
      registers,
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets: queueBuckets,
      registers,
    }),
    unfinishedWork: new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help:
        'How many seconds of work has been done that is in progress and has not been observed by work_duration. ' +
        'Large values indicate stuck threads.',
      labelNames: ['name'],
      registers,
      collect() {
        for (const [name, progress] of queueProgress) this.set({ name }, progress().unfinishedWorkSeconds);
      },
    }),
    longestRunning: new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running.',
      labelNames: ['name'],
      registers,
      collect() {
        for (const [name, progress] of queueProgress) this.set({ name }, progress().longestRunningSeconds);
      },
    }),
    leaderStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. ' +
        "'name' is the string used to identify the lease.",
      labelNames: ['name'],
      registers,
    }),
  };
}

export class ControllerMetrics extends onMetricSet(createMetrics) {
  // --- controller ---

  /** Called when a controller starts: its result series exist (at 0) before the first reconcile. */
  controllerStarted(controller: string, maxConcurrentReconciles: number): void {
    for (const result of reconcileOutcomes) this.m.reconcileTotal.inc({ controller, result }, 0);
    this.m.reconcileErrors.inc({ controller }, 0);
    this.m.terminalErrors.inc({ controller }, 0);
    this.m.activeWorkers.set({ controller }, 0);
    this.m.maxConcurrentReconciles.set({ controller }, maxConcurrentReconciles);
  }

  /** One finished reconcile: its outcome, its duration, and whether an error was terminal. */
  reconciled(controller: string, result: ReconcileOutcome, seconds: number, error?: 'retriable' | 'terminal'): void {
    this.m.reconcileTotal.inc({ controller, result });
    this.m.reconcileTime.observe({ controller }, seconds);
    if (error !== undefined) this.m.reconcileErrors.inc({ controller });
    if (error === 'terminal') this.m.terminalErrors.inc({ controller });
  }

  activeWorkers(controller: string, delta: 1 | -1): void {
    this.m.activeWorkers.inc({ controller }, delta);
  }

  // --- work queue ---

  queueCreated(name: string, progress: () => QueueProgress): void {
    this.m.depth.set({ name }, 0);
    this.m.adds.inc({ name }, 0);
    this.m.retries.inc({ name }, 0);
    this.m.queueProgress.set(name, progress);
  }

  queueShutDown(name: string): void {
    this.m.queueProgress.delete(name);
    this.m.unfinishedWork.set({ name }, 0);
    this.m.longestRunning.set({ name }, 0);
  }

  queueDepth(name: string, depth: number): void {
    this.m.depth.set({ name }, depth);
  }

  queueAdded(name: string): void {
    this.m.adds.inc({ name });
  }

  queueRetried(name: string): void {
    this.m.retries.inc({ name });
  }

  queueWaited(name: string, seconds: number): void {
    this.m.queueDuration.observe({ name }, seconds);
  }

  queueWorked(name: string, seconds: number): void {
    this.m.workDuration.observe({ name }, seconds);
  }

  // --- leader election ---

  leader(name: string, leading: boolean): void {
    this.m.leaderStatus.set({ name }, leading ? 1 : 0);
  }
}
