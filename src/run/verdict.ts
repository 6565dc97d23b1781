/**
 * The verdict: the offline re-check of the full history (the same engine as the live check, with
 * evidence paths, plus the watch checks), the final verdict from it, the live check and HashKV, and the
 * run's result.
 */
import type { CheckReport, LiveStats, Verdict } from '../checker/index.ts';
import { logger } from '../log.ts';
import { checkHistoryInWorker, HistoryReadBackError } from './checker-worker.ts';
import type { RunFaults } from './faults.ts';
import type { ProgressTicker } from './progress-ticker.ts';
import type { RunRecording } from './recording.ts';
import type { RunSession } from './session.ts';
import { hashKvDiffers, type HashKvComparison, type RunResult } from './types.ts';
import type { RunWatches } from './watches.ts';

/** The watch properties LiveWatchChecker counts while the run goes. */
const liveWatchProperties = new Set<string>(['filtered', 'ordered', 'unique', 'atomic', 'bookmarkable', 'resumable']);

/** The offline check of the full history (absent when it was not kept whole in memory), its violations counted. */
export async function checkOffline(session: RunSession, recording: RunRecording): Promise<CheckReport | undefined> {
  if (!recording.keepAll) return undefined;
  const { spec, metrics, options } = session;
  const remaining = Math.max(10_000, spec.timeoutMs - (performance.now() - session.startedAt));
  session.phase('checking the full history offline');
  // In a worker thread too, on the history files just closed: the same history as the one in memory (the
  // writer got every line the history did), read back by the thread instead of copied to it.
  let report = await checkHistoryInWorker({ dir: options.historyDir }, { timeoutMs: remaining }).catch((error: unknown) => {
    if (!(error instanceof HistoryReadBackError)) throw error;
    logger.warn('could not read the history back for the offline check: checking the one in memory', { error: error.message });
    return checkHistoryInWorker({ history: recording.history }, { timeoutMs: remaining });
  });
  session.phase('checked');
  if (!spec.checks.watch) report = { ...report, watch: { checked: 0, violations: [] } };
  // The stream-local properties were counted live; the offline check adds the history-based ones.
  for (const v of report.watch.violations) if (!liveWatchProperties.has(v.property)) metrics.violation(`watch_${v.property}`);
  const stale = report.linearizability.staleReadViolations?.length ?? 0;
  if (stale > 0) metrics.violation('stale_read', stale);
  if (report.linearizability.verdict === 'violation' && !recording.live.violationReported) metrics.violation('linearizability');
  return report;
}

/** What the run's steps found, for the result. */
export interface RunFindings {
  session: RunSession;
  recording: RunRecording;
  watches: RunWatches;
  faults: RunFaults;
  ticker: ProgressTicker;
  liveVerdict: Verdict;
  liveStats: LiveStats;
  report: CheckReport | undefined;
  hashKv: HashKvComparison | undefined;
  trafficMs: number;
  selfTest: string | undefined;
}

/** The final verdict (into the metrics) and the run's result. */
export function runResult(f: RunFindings): RunResult {
  const { session, recording, report, hashKv, liveStats } = f;
  const { spec, metrics } = session;
  const live = recording.live;
  if (recording.keepAll) recording.history.faults = f.faults.events;
  const verdict = hashKvDiffers(hashKv) ? 'violation' : finalVerdict(f.liveVerdict, report, spec.checks);
  metrics.verdict(verdict);
  metrics.finished(verdict);
  const faults = f.faults.result();
  const ended = new Date();
  const liveReason = live.worker.violation?.reason ?? live.worker.inconclusiveReason;
  return {
    verdict,
    reason: hashKvDiffers(hashKv) ? `members' HashKV differ: ${hashKv!.detail}` : reasonFor(report, liveReason),
    live: {
      verdict: f.liveVerdict,
      reason: liveReason,
      lagP50Ms: liveStats.lagP50Ms,
      lagP99Ms: liveStats.lagP99Ms,
      worstLagP99Ms: Math.max(live.worstLagP99Ms, liveStats.lagP99Ms),
      peakWaitingForWatch: live.peakWaitingForWatch,
      resolved: liveStats.resolved,
      method: liveStats.method,
      ...(liveStats.searchReason === undefined ? {} : { searchReason: liveStats.searchReason }),
      ...(session.firstViolationMs === undefined ? {} : { firstViolationMs: session.firstViolationMs }),
    },
    report,
    history: recording.keepAll ? recording.history : undefined,
    operations: recording.counters.total,
    watch: f.watches.counts,
    achievedQps: recording.counters.operations / (f.trafficMs / 1000),
    belowMinQpsIntervals: f.ticker.belowMinIntervals,
    startTime: session.started.toISOString(),
    endTime: ended.toISOString(),
    durationMs: ended.getTime() - session.started.getTime(),
    stoppedEarly: session.stopReason,
    seed: spec.seed,
    prefix: session.prefix,
    mode: spec.mode,
    selfTest: f.selfTest,
    faults,
    ...(hashKv === undefined ? {} : { hashKv }),
  };
}

/**
 * The offline check is authoritative when it ran (same engine, full evidence); the live verdict stands
 * otherwise. A live violation is never dropped: the offline check must then have found one too.
 */
function finalVerdict(live: Verdict, report: CheckReport | undefined, checks: { linearizability: boolean; watch: boolean }): Verdict {
  if (!report) return checks.linearizability ? live : 'linearizable';
  const linearizability = checks.linearizability ? report.linearizability.verdict : 'linearizable';
  const stale = checks.linearizability && (report.linearizability.staleReadViolations?.length ?? 0) > 0;
  const watch = checks.watch && report.watch.violations.length > 0;
  if (linearizability === 'violation' || stale || watch || (checks.linearizability && live === 'violation')) return 'violation';
  if (linearizability === 'inconclusive') return 'inconclusive';
  return 'linearizable';
}

function reasonFor(report: CheckReport | undefined, live: string | undefined): string | undefined {
  if (!report) return live;
  const lin = report.linearizability;
  const watch = report.watch.violations[0];
  return lin.violation?.reason ?? lin.inconclusive ?? lin.staleReadViolations?.[0]?.reason ?? (watch ? `watch ${watch.property}: ${watch.message}` : live);
}
