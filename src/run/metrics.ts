/**
 * The run's Prometheus metrics (prom-client), all prefixed `etcd_robustness_`. One set of metric objects
 * per registry (the operator will host many runs in one registry); a RunMetrics binds the run and cluster
 * labels. Label values are bounded: request types, three outcomes, a fixed list of checks.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestType } from '../domain/index.ts';
import type { WatchProperty } from '../checker/index.ts';
import { onePerRegistry } from '../metrics-registry.ts';
import type { Verdict } from '../domain/index.ts';

export type OperationOutcome = 'ok' | 'failed' | 'unknown';
export type CheckName = 'linearizability' | 'stale_read' | 'hash_kv' | `watch_${WatchProperty}`;

// Records, so the compiler says when a watch property or a verdict is added and not listed here.
const watchProperties: Record<WatchProperty, true> = {
  filtered: true,
  ordered: true,
  unique: true,
  atomic: true,
  bookmarkable: true,
  reliable: true,
  resumable: true,
  isCreate: true,
  prevKV: true,
};
export const checkNames: readonly CheckName[] = [
  'linearizability',
  'stale_read',
  'hash_kv',
  ...Object.keys(watchProperties).map((p) => `watch_${p as WatchProperty}` as const),
];
const verdictSet: Record<Verdict, true> = { linearizable: true, violation: true, inconclusive: true };
export const verdicts = Object.keys(verdictSet) as Verdict[];

const runLabels = ['run', 'cluster'] as const;

/** Something holding metric updates not yet given to prom-client (a RunMetrics): flush() gives them. */
interface Deferred {
  flush(): void;
}

/**
 * Per registry, the RunMetrics with deferred updates. A metric's collect() (prom-client calls it before
 * every read: a scrape, metric.get()) flushes them, so a reader never sees a deferred update missing.
 */
const deferredByRegistry = new WeakMap<Registry, Set<Deferred>>();

function createMetrics(registry: Registry) {
  const registers = [registry];
  const deferred = new Set<Deferred>();
  deferredByRegistry.set(registry, deferred);
  const collect = (): void => {
    for (const d of deferred) d.flush();
  };
  return {
    operations: new Counter({
      name: 'etcd_robustness_operations_total',
      help: 'Recorded operations by request type and outcome (ok, failed: certainly not applied, unknown: outcome unknown).',
      labelNames: [...runLabels, 'type', 'outcome'],
      registers,
      collect,
    }),
    latency: new Histogram({
      name: 'etcd_robustness_operation_duration_seconds',
      help: 'Latency of recorded operations that returned, by request type.',
      labelNames: [...runLabels, 'type'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
      collect,
    }),
    unknown: new Counter({
      name: 'etcd_robustness_unknown_outcome_operations_total',
      help: 'Operations whose outcome the client never learned (timeouts, broken connections).',
      labelNames: [...runLabels],
      registers,
      collect,
    }),
    verdict: new Gauge({
      name: 'etcd_robustness_verdict',
      help: 'Live checker verdict: 1 linearizable so far, 0 violation found, 0.5 inconclusive.',
      labelNames: [...runLabels],
      registers,
    }),
    violations: new Counter({
      name: 'etcd_robustness_violations_total',
      help: 'Violations found, by check (linearizability, stale_read, watch_<property>).',
      labelNames: [...runLabels, 'check'],
      registers,
    }),
    checkerLag: new Gauge({
      name: 'etcd_robustness_checker_lag_seconds',
      help: 'Time from an operation completing to the live checker settling it (quantile over recent operations).',
      labelNames: [...runLabels, 'quantile'],
      registers,
    }),
    checkerWaitingForWatch: new Gauge({
      name: 'etcd_robustness_checker_waiting_for_watch',
      help: 'Operations the live checker holds until the watch (or a response) shows their revision, and unknown-outcome writes it has not seen yet.',
      labelNames: [...runLabels],
      registers,
    }),
    checkerPending: new Gauge({
      name: 'etcd_robustness_checker_pending_operations',
      help: 'Operations received by the live checker and not settled yet.',
      labelNames: [...runLabels],
      registers,
    }),
    achievedQps: new Gauge({
      name: 'etcd_robustness_achieved_qps',
      help: 'Operations per second the probes achieved over the last progress interval.',
      labelNames: [...runLabels],
      registers,
    }),
    targetQps: new Gauge({
      name: 'etcd_robustness_target_qps',
      help: 'Operations per second the run asked for.',
      labelNames: [...runLabels],
      registers,
    }),
    belowMinQps: new Counter({
      name: 'etcd_robustness_below_min_qps_intervals_total',
      help: 'Progress intervals in which the cluster could not be driven at the minimum QPS.',
      labelNames: [...runLabels],
      registers,
    }),
    availability: new Gauge({
      name: 'etcd_robustness_availability_ratio',
      help: 'Fraction of operations that succeeded over the last progress interval.',
      labelNames: [...runLabels],
      registers,
    }),
    watchEvents: new Counter({
      name: 'etcd_robustness_watch_events_total',
      help: 'Watch events received by the watch probes.',
      labelNames: [...runLabels],
      registers,
      collect,
    }),
    watchResumes: new Counter({
      name: 'etcd_robustness_watch_resumes_total',
      help: 'Watch streams reopened after an error or a compaction.',
      labelNames: [...runLabels],
      registers,
    }),
    runs: new Counter({
      name: 'etcd_robustness_runs_total',
      help: 'Finished runs by final verdict.',
      labelNames: [...runLabels, 'verdict'],
      registers,
    }),
    faultInjections: new Counter({
      name: 'etcd_robustness_fault_injections_total',
      help: 'Faults injected, by catalog name and target rule.',
      labelNames: [...runLabels, 'fault', 'target_role'],
      registers,
    }),
    faultFailures: new Counter({
      name: 'etcd_robustness_fault_failures_total',
      help: 'Faults that could not be applied, verified or healed, by catalog name.',
      labelNames: [...runLabels, 'fault'],
      registers,
    }),
    faultToWritable: new Histogram({
      name: 'etcd_robustness_fault_to_writable_seconds',
      help: 'Time from a fault being in place to the return of the first successful write invoked after it, by catalog name (observed when that write returns).',
      labelNames: [...runLabels, 'fault'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120],
      registers,
    }),
    faultsActive: new Gauge({
      name: 'etcd_robustness_faults_active',
      help: 'Faults currently in place.',
      labelNames: [...runLabels],
      registers,
    }),
    faultsPastTtl: new Gauge({
      name: 'etcd_robustness_faults_past_ttl',
      help: "Faults the executor still holds after their TTL expired (the agents' own healing deadline); should be 0.",
      labelNames: [...runLabels],
      registers,
    }),
    running: new Gauge({
      name: 'etcd_robustness_run_active',
      help: '1 while the run drives traffic.',
      labelNames: [...runLabels],
      registers,
    }),
  };
}

export type ProbeMetrics = ReturnType<typeof createMetrics>;

export const probeMetrics: (registry: Registry) => ProbeMetrics = onePerRegistry(createMetrics);

/** Deferred updates are given to prom-client at the latest when this many are held (bounds memory without a reader). */
const maxDeferred = 4096;

/**
 * The metrics of one run (labels bound). The per-operation and per-watch-response updates (operations,
 * unknown outcomes, latency, watch events) are kept in plain counts and arrays and given to prom-client in
 * one go: when a reader collects (a scrape: never stale then), or once 4,096 are held. Each prom-client
 * call builds and hashes a label set, which at thousands of operations a second was a visible share of
 * the recording thread's CPU (bench/probes.ts).
 */
export class RunMetrics {
  readonly metrics: ProbeMetrics;
  private readonly labels: { run: string; cluster: string };
  private readonly deferred: Set<Deferred>;
  /** Operation counts by "type outcome"; latencies by type; unknown outcomes; watch events. */
  private readonly operationCounts = new Map<string, { type: RequestType; outcome: OperationOutcome; count: number }>();
  private readonly latencies = new Map<RequestType, number[]>();
  private unknownCount = 0;
  /** undefined: no watch response since the last flush (a response without events still makes the series, at 0). */
  private watchEventCount: number | undefined;
  private held = 0;
  private readonly flushFn: Deferred = { flush: () => this.flush() };
  private readonly countsRuns: boolean;

  /**
   * `countsRuns: false` leaves etcd_robustness_runs_total to another registry: a runner Pod's run is
   * counted by the operator, which outlives it (a counter that dies with its Pod loses its history).
   */
  constructor(registry: Registry, labels: { run: string; cluster: string }, options: { countsRuns?: boolean } = {}) {
    this.metrics = probeMetrics(registry);
    this.deferred = deferredByRegistry.get(registry)!;
    this.labels = labels;
    this.countsRuns = options.countsRuns ?? true;
    // Series exist at 0 from the start, so increase() sees the first violation and the first run's verdict.
    for (const check of checkNames) this.metrics.violations.inc({ ...labels, check }, 0);
    if (this.countsRuns) for (const verdict of verdicts) this.metrics.runs.inc({ ...labels, verdict }, 0);
    this.metrics.faultsPastTtl.set(labels, 0);
  }

  operation(type: RequestType, outcome: OperationOutcome, seconds: number | undefined): void {
    const key = `${type} ${outcome}`;
    const counted = this.operationCounts.get(key);
    if (counted === undefined) this.operationCounts.set(key, { type, outcome, count: 1 });
    else counted.count++;
    if (outcome === 'unknown') this.unknownCount++;
    if (seconds !== undefined) {
      const list = this.latencies.get(type);
      if (list === undefined) this.latencies.set(type, [seconds]);
      else list.push(seconds);
    }
    this.hold();
  }

  /** Gives prom-client every deferred update (see the class comment); collect() calls it before each read. */
  flush(): void {
    this.deferred.delete(this.flushFn);
    this.held = 0;
    for (const entry of this.operationCounts.values()) {
      if (entry.count > 0) this.metrics.operations.inc({ ...this.labels, type: entry.type, outcome: entry.outcome }, entry.count);
      entry.count = 0;
    }
    for (const [type, list] of this.latencies) {
      if (list.length === 0) continue;
      const labels = { ...this.labels, type };
      for (const seconds of list) this.metrics.latency.observe(labels, seconds);
      list.length = 0;
    }
    if (this.unknownCount > 0) this.metrics.unknown.inc(this.labels, this.unknownCount);
    if (this.watchEventCount !== undefined) this.metrics.watchEvents.inc(this.labels, this.watchEventCount);
    this.unknownCount = 0;
    this.watchEventCount = undefined;
  }

  private hold(): void {
    if (this.held++ === 0) this.deferred.add(this.flushFn);
    if (this.held >= maxDeferred) this.flush();
  }

  verdict(value: 'linearizable' | 'violation' | 'inconclusive'): void {
    this.metrics.verdict.set(this.labels, value === 'linearizable' ? 1 : value === 'violation' ? 0 : 0.5);
  }

  violation(check: CheckName, count = 1): void {
    this.metrics.violations.inc({ ...this.labels, check }, count);
  }

  checker(lagP50Ms: number, lagP99Ms: number, pending: number, waitingForWatch: number): void {
    this.metrics.checkerWaitingForWatch.set(this.labels, waitingForWatch);
    this.metrics.checkerLag.set({ ...this.labels, quantile: '0.5' }, lagP50Ms / 1000);
    this.metrics.checkerLag.set({ ...this.labels, quantile: '0.99' }, lagP99Ms / 1000);
    this.metrics.checkerPending.set(this.labels, pending);
  }

  interval(achievedQps: number, availability: number | undefined, belowMin: boolean): void {
    this.metrics.achievedQps.set(this.labels, achievedQps);
    if (availability !== undefined) this.metrics.availability.set(this.labels, availability);
    if (belowMin) this.metrics.belowMinQps.inc(this.labels);
  }

  target(qps: number): void {
    this.metrics.targetQps.set(this.labels, qps);
  }

  watchEvents(count: number): void {
    this.watchEventCount = (this.watchEventCount ?? 0) + count;
    this.hold();
  }

  watchResume(): void {
    this.metrics.watchResumes.inc(this.labels);
  }

  faultInjected(fault: string, targetRole: string): void {
    this.metrics.faultInjections.inc({ ...this.labels, fault, target_role: targetRole });
  }

  faultFailed(fault: string): void {
    this.metrics.faultFailures.inc({ ...this.labels, fault });
  }

  faultWritable(fault: string, seconds: number): void {
    this.metrics.faultToWritable.observe({ ...this.labels, fault }, seconds);
  }

  faultsActive(count: number): void {
    this.metrics.faultsActive.set(this.labels, count);
  }

  faultsPastTtl(count: number): void {
    this.metrics.faultsPastTtl.set(this.labels, count);
  }

  active(running: boolean): void {
    this.metrics.running.set(this.labels, running ? 1 : 0);
  }

  finished(verdict: Verdict): void {
    if (this.countsRuns) this.metrics.runs.inc({ ...this.labels, verdict });
  }
}

/**
 * Removes every series of one run (its `run` label) from the registry: the operator calls it when a
 * RobustnessRun is deleted, so a long-lived operator's series do not grow with every run it ever held
 * (gate runs have a new name each).
 */
export async function forgetRun(registry: Registry, run: string): Promise<void> {
  // The one shape every metric of the set shares (prom-client types each metric's labels separately).
  type Removable = { get(): Promise<{ values: { labels: Record<string, string | number>; metricName?: string }[] }>; remove(labels: Record<string, string | number>): void };
  for (const metric of Object.values(probeMetrics(registry)) as Removable[]) {
    const { values } = await metric.get();
    const histogram = metric instanceof Histogram;
    for (const { labels, metricName } of values) {
      if (labels['run'] !== run) continue;
      // A histogram lists each series once per bucket: its _count sample names the series (without `le`).
      if (histogram && metricName?.endsWith('_count') !== true) continue;
      const { le: _bucket, ...series } = labels;
      metric.remove(histogram ? series : labels);
    }
  }
}

export { Registry };
