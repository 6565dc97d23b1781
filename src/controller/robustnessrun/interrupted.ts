/**
 * A run whose executor died with its operator process (kill -9, a node lost, a lease lost without a clean
 * stop): the replica that finds it "Running" checks what was recorded, when the recording's folder is on
 * a disk it can reach, and writes a report directory (verdict.json, report.html, the history) for the
 * report store.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CheckReport } from '../../checker/index.ts';
import { renderHtmlReport } from '../../report/index.ts';
import type { FaultEvent, RobustnessRunStatus, Verdict } from '../../domain/index.ts';
import { isErrorResponse } from '../../domain/index.ts';
import { readHistoryDirectory } from '../../probes/history-segment-reader.ts';
import { checkHistoryInWorker } from '../../run/checker-worker.ts';
import { runOutcome, type RunAbort, type RunOutcome } from '../../run/outcome.ts';

/** What was found of an interrupted run's recording. */
export type Recovered =
  /** The recording could be read and checked (or read but not checked: `report` absent, `problem` says why). */
  | { kind: 'checked'; dir: string; outcome: RunOutcome; verdict: Verdict; report: CheckReport | undefined; problem: string | undefined }
  /** No recording this replica can reach: `message` says where it was. */
  | { kind: 'unreachable'; message: string };

/** The verdict of the checks the spec asks for (as the run engine's final verdict counts them). */
function verdictOf(report: CheckReport, checks: { linearizability: boolean; watch: boolean }): Verdict {
  const lin = report.linearizability;
  if (checks.linearizability && (lin.verdict === 'violation' || (lin.staleReadViolations?.length ?? 0) > 0)) return 'violation';
  if (checks.watch && report.watch.violations.length > 0) return 'violation';
  return checks.linearizability && lin.verdict === 'inconclusive' ? 'inconclusive' : 'linearizable';
}

/** Fault counts of a recorded history's fault lines (inject, failed). */
function faultCounts(events: readonly FaultEvent[]): { injected: number; failed: number } {
  return { injected: events.filter((e) => e.phase === 'inject').length, failed: events.filter((e) => e.phase === 'failed').length };
}

/**
 * Checks the history recorded under `status.recording` and writes verdict.json beside it. The run ends
 * Aborted (`abort`) unless the recording holds a violation.
 */
export async function recoverInterruptedRun(
  status: RobustnessRunStatus,
  self: string,
  abort: RunAbort,
  options: { timeoutMs: number; tolerateFailures: boolean; minQps: number; checks: { linearizability: boolean; watch: boolean }; run: string },
): Promise<Recovered> {
  const recording = status.recording;
  if (recording === undefined) return { kind: 'unreachable', message: 'where it recorded its history was not noted in status: no report' };
  const historyDir = path.join(recording.path, 'history');
  const segments = existsSync(historyDir) ? readdirSync(historyDir).filter((f) => f.endsWith('.jsonl')) : [];
  if (segments.length === 0) {
    return { kind: 'unreachable', message: `its history was recorded by replica ${recording.replica} in ${recording.path}, which replica ${self} cannot reach: no report` };
  }
  let report: CheckReport | undefined;
  let problem: string | undefined;
  let faults = { injected: 0, failed: 0 };
  let operations = { ok: 0, all: 0 };
  let spanMs = 0;
  try {
    // The history as recorded: its fault lines and operations give the run's figures.
    const history = readHistoryDirectory(historyDir);
    faults = faultCounts(history.faults ?? []);
    const ok = history.operations.filter((op) => op.return !== null && op.response !== undefined && !isErrorResponse(op.response)).length;
    operations = { ok, all: history.operations.length };
    let first = Infinity;
    let last = -Infinity;
    for (const op of history.operations) {
      first = Math.min(first, op.call);
      last = Math.max(last, op.call);
    }
    spanMs = history.operations.length < 2 ? 0 : (last - first) / 1e6; // calls are in nanoseconds
    // Read once: the history is in memory for the figures and the HTML report, so the worker checks that copy.
    report = await checkHistoryInWorker({ history }, { timeoutMs: options.timeoutMs });
    // The same HTML report as a finished run's, of what was recorded.
    writeFileSync(path.join(recording.path, 'report.html'), renderHtmlReport(history, report, { title: `${options.run} (interrupted)` }));
  } catch (error) {
    problem = `the recorded history could not be checked: ${(error as Error).message}`;
  }
  const verdict: Verdict = report ? verdictOf(report, options.checks) : 'inconclusive';
  const watchViolation = options.checks.watch ? report?.watch.violations[0] : undefined;
  const reason = report?.linearizability.violation?.reason ?? (watchViolation ? `watch ${watchViolation.property}: ${watchViolation.message}` : undefined) ?? report?.linearizability.inconclusive ?? problem;
  const outcome = runOutcome({
    verdict,
    verdictReason: reason,
    abort,
    faults: { planned: faults.injected, ...faults, tolerateFailures: options.tolerateFailures },
    traffic: { ok: operations.ok, operations: operations.all, achievedQps: spanMs > 0 ? operations.all / (spanMs / 1000) : 0, minQps: options.minQps },
  });
  const summary = {
    run: options.run,
    interrupted: abort.message,
    verdict,
    ...(reason === undefined ? {} : { reason }),
    outcome,
    startTime: status.startTime,
    endTime: new Date().toISOString(),
    seed: status.seed,
    operations: { recorded: operations.all, ok: operations.ok },
    faults,
    ...(report ? { linearizability: { verdict: report.linearizability.verdict, operations: report.linearizability.operations }, watchViolations: report.watch.violations.slice(0, 50).map((v) => ({ property: v.property, watch: v.watch, message: v.message })) } : {}),
    files: { history: historyDir },
  };
  writeFileSync(path.join(recording.path, 'verdict.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return { kind: 'checked', dir: recording.path, outcome, verdict, report, problem };
}
