/**
 * What a run's result means (pure): a run Passed only if its target existed throughout, its traffic
 * reached the spec's minimum, its faults were applied as planned (or the spec tolerates failed ones) and
 * the checker found the history linearizable. Anything else is said by the phase and a reason: the
 * operator writes them into the RobustnessRun's status (phase, Succeeded condition, Event) and
 * `run --local` turns them into its exit code. One rule for both, here.
 */
import type { Verdict } from '../domain/history.ts';
import type { RunPhase } from '../domain/run-resource.ts';
import type { RunResult } from './types.ts';

/** Why a run stopped before its duration: the target went away, a user or the operator stopped it. */
export const abortReasons = ['TargetDeleted', 'Stopped', 'OperatorStopped', 'OperatorRestarted', 'RunnerStopped', 'RunnerFailed'] as const;
export type AbortReason = (typeof abortReasons)[number];

export interface RunAbort {
  reason: AbortReason;
  /** One line for a person: what happened (e.g. "EtcdCluster ns/demo was deleted"). */
  message: string;
}

/** The condition reasons of a finished run (status.conditions Succeeded, the Event's reason). */
export type OutcomeReason = 'Linearizable' | 'Violation' | AbortReason | 'FaultsFailed' | 'TrafficBelowMinimum' | 'CheckInconclusive';

export interface RunOutcomeInput {
  /** The checker's verdict (live and offline, as the engine combined them; HashKV disagreement included). */
  verdict: Verdict;
  /** Why the verdict is not linearizable. */
  verdictReason?: string | undefined;
  /** Set when the run stopped before its duration. */
  abort?: RunAbort | undefined;
  faults: {
    /** Faults the plan held (0 without faults). */
    planned: number;
    injected: number;
    failed: number;
    /** Set when the spec asked for faults the run could not inject at all (no member runtime). */
    skipped?: string | undefined;
    /** spec.faults.tolerateFailures: failed faults do not make the run inconclusive. */
    tolerateFailures: boolean;
  };
  traffic: {
    /** Operations that succeeded; none means nothing was checked. */
    ok: number;
    /** Every operation recorded (ok, failed, unknown). */
    operations: number;
    /** Operations per second over the traffic time (RunResult.achievedQps). */
    achievedQps: number;
    /** spec.traffic.qps.min (0: no minimum). */
    minQps: number;
  };
}

export interface RunOutcome {
  phase: Exclude<RunPhase, 'Pending' | 'Running'>;
  reason: OutcomeReason;
  /** Every problem found, most important first, in one line. */
  message: string;
}

const round = (n: number): number => Math.round(n * 10) / 10;

/** The problems that keep a run without a violation from passing, most important first. */
function problems(input: RunOutcomeInput): { reason: OutcomeReason; message: string }[] {
  const found: { reason: OutcomeReason; message: string }[] = [];
  const { abort, faults, traffic } = input;
  if (abort) found.push({ reason: abort.reason, message: abort.message });
  if (faults.skipped !== undefined) {
    found.push({ reason: 'FaultsFailed', message: `the spec's faults were not injected: ${faults.skipped}` });
  } else if (faults.failed > 0 && !faults.tolerateFailures) {
    found.push({
      reason: 'FaultsFailed',
      message: `${faults.failed} of ${faults.injected} faults failed to apply (set spec.faults.tolerateFailures: true to accept failed faults)`,
    });
  }
  if (traffic.ok === 0) {
    found.push({ reason: 'TrafficBelowMinimum', message: `no operation succeeded (${traffic.operations} recorded): nothing was checked` });
  } else if (traffic.minQps > 0 && traffic.achievedQps < traffic.minQps) {
    found.push({ reason: 'TrafficBelowMinimum', message: `traffic reached ${round(traffic.achievedQps)} operations/s, below the minimum of ${traffic.minQps} (spec.traffic.qps.min)` });
  }
  if (input.verdict === 'inconclusive') found.push({ reason: 'CheckInconclusive', message: `the check was inconclusive${input.verdictReason ? `: ${input.verdictReason}` : ''}` });
  return found;
}

/**
 * The outcome of a run. A violation is a finding whatever else went wrong (Failed); an aborted run is
 * Aborted; a run with failed faults or too little traffic, or an inconclusive check, is Inconclusive;
 * only a run with none of these Passed.
 */
export function runOutcome(input: RunOutcomeInput): RunOutcome {
  if (input.verdict === 'violation') return { phase: 'Failed', reason: 'Violation', message: input.verdictReason ?? 'not linearizable' };
  const found = problems(input);
  const first = found[0];
  if (first === undefined) return { phase: 'Passed', reason: 'Linearizable', message: 'linearizable' };
  const message = found.map((p) => p.message).join('; ');
  return { phase: input.abort ? 'Aborted' : 'Inconclusive', reason: first.reason, message };
}

/** The outcome of an engine's result under the run's spec. */
export function outcomeOfResult(result: RunResult, spec: { traffic: { qps: { min: number } }; faults?: { tolerateFailures?: boolean } }, abort?: RunAbort): RunOutcome {
  const ops = result.operations;
  return runOutcome({
    verdict: result.verdict,
    verdictReason: result.reason,
    abort,
    faults: { planned: result.faults.planned, injected: result.faults.injected, failed: result.faults.failed, skipped: result.faults.skipped, tolerateFailures: spec.faults?.tolerateFailures ?? false },
    traffic: { ok: ops.ok, operations: ops.ok + ops.failed + ops.unknown, achievedQps: result.achievedQps, minQps: spec.traffic.qps.min },
  });
}
