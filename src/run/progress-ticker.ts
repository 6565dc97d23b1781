/**
 * Progress every interval: the interval's rate against the QPS floor, availability, the live checker's
 * lag, metrics, and a RunProgress for the caller (formatProgress makes it a line). Reads the run's
 * state; changes none of it but the interval counters and the live check's worst figures.
 */
import type { RunFaults } from './faults.ts';
import type { RunRecording } from './recording.ts';
import type { RunSession } from './session.ts';
import type { RunWatches } from './watches.ts';

export class ProgressTicker {
  /** Intervals (from the second on) whose rate fell below spec.traffic.qps.min. */
  belowMinIntervals = 0;
  private readonly session: RunSession;
  private readonly recording: RunRecording;
  private readonly watches: RunWatches;
  private readonly faults: RunFaults;
  private lastTick = performance.now();
  private ticks = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  /** Starts ticking (every options.progressIntervalMs, default a second) until stop() or the session's close. */
  constructor(session: RunSession, recording: RunRecording, watches: RunWatches, faults: RunFaults) {
    this.session = session;
    this.recording = recording;
    this.watches = watches;
    this.faults = faults;
    const timer = setInterval(() => this.tick(), session.options.progressIntervalMs ?? 1000);
    this.timer = timer;
    session.onClose(() => {
      clearInterval(timer);
    });
  }

  tick(): void {
    const { session, faults } = this;
    const { spec, metrics } = session;
    const { counters } = this.recording;
    const live = this.recording.live;
    // A replaced member comes back under a new id: keep naming the member that answered each request.
    if (faults.executor && this.ticks % 5 === 4) session.refreshMemberNames();
    const now = performance.now();
    const seconds = (now - this.lastTick) / 1000;
    this.lastTick = now;
    const qps = seconds > 0 ? counters.intervalAll / seconds : 0;
    const availability = counters.intervalAll > 0 ? counters.intervalOk / counters.intervalAll : undefined;
    // The first interval includes start-up; judge the rate from the second on.
    const belowMin = ++this.ticks > 1 && !session.stopped && spec.traffic.qps.min > 0 && qps < spec.traffic.qps.min;
    if (belowMin) this.belowMinIntervals++;
    counters.intervalAll = 0;
    counters.intervalOk = 0;
    const stats = live.worker.stats();
    metrics.interval(qps, availability, belowMin);
    if (faults.executor) metrics.faultsPastTtl(faults.executor.faultsPastTtl());
    metrics.checker(stats.lagP50Ms, stats.lagP99Ms, stats.pendingOperations, stats.waitingForWatch);
    live.worstLagP99Ms = Math.max(live.worstLagP99Ms, stats.lagP99Ms);
    live.peakWaitingForWatch = Math.max(live.peakWaitingForWatch, stats.waitingForWatch);
    metrics.verdict(live.worker.verdict);
    session.options.onProgress?.({
      elapsedMs: now - session.startedAt,
      operations: counters.operations,
      intervalQps: qps,
      failed: counters.total.failed,
      unknown: counters.total.unknown,
      availability,
      verdict: live.worker.verdict,
      lagP50Ms: stats.lagP50Ms,
      lagP99Ms: stats.lagP99Ms,
      pending: stats.pendingOperations,
      waitingForWatch: stats.waitingForWatch,
      checkMethod: stats.method,
      watchEvents: this.watches.counts.events,
      belowMinQps: belowMin,
      activeFaults: [...faults.active.values()],
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
