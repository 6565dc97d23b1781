/**
 * Judging a finished RobustnessRun by gate criteria: the verdict must be linearizable, and (as the
 * criteria say) the watch checks must pass, enough probe operations must succeed and few may end with an
 * unknown outcome. Pure: the upgrade planner, the run reconciler's gate metric and the HTTP gate endpoint
 * all judge with this one function.
 */
import type { GateCriteria, RobustnessRunStatus, RunPhase, Verdict } from '../../domain/index.ts';

export const defaultGateCriteria: GateCriteria = { watchChecks: true, minAvailability: 0.95, maxUnknownRate: 0.05 };

const finishedPhases: readonly RunPhase[] = ['Passed', 'Failed', 'Inconclusive', 'Aborted'];

export interface GateJudgement {
  passing: boolean;
  /** Why it failed, or what it passed on. */
  reason: string;
  phase: RunPhase;
  verdict?: Verdict;
  availability?: number;
  unknownRate?: number;
}

const ratio = (value: number): string => value.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');

/** Undefined while the run has not finished (no status, Pending or Running). */
export function judgeRun(status: RobustnessRunStatus | undefined, criteria: GateCriteria = defaultGateCriteria): GateJudgement | undefined {
  const phase = status?.phase;
  if (status === undefined || phase === undefined || !finishedPhases.includes(phase)) return undefined;
  const ops = status.operations;
  const total = ops === undefined ? 0 : ops.ok + ops.failed + ops.unknown;
  const judgement: GateJudgement = { passing: false, reason: '', phase };
  if (status.verdict !== undefined) judgement.verdict = status.verdict;
  if (ops !== undefined && total > 0) {
    judgement.availability = ops.ok / total;
    judgement.unknownRate = ops.unknown / total;
  }
  const fail = (reason: string): GateJudgement => ({ ...judgement, reason });
  if (phase !== 'Passed' || status.verdict !== 'linearizable') {
    const first = status.violations?.[0];
    const detail = first === undefined ? (status.reason ?? '') : `${first.check}: ${first.summary}`;
    return fail(`the run ended ${phase} with verdict ${status.verdict ?? 'none'}${detail === '' ? '' : ` (${detail.slice(0, 300)})`}`);
  }
  if (criteria.watchChecks) {
    const watch = status.violations?.find((v) => v.check.startsWith('watch_'));
    if (watch !== undefined) return fail(`watch guarantee violated: ${watch.check}: ${watch.summary.slice(0, 300)}`);
  }
  if (judgement.availability === undefined || judgement.unknownRate === undefined) return fail('the run recorded no operation');
  if (judgement.availability < criteria.minAvailability) {
    return fail(`availability ${ratio(judgement.availability)} is below ${ratio(criteria.minAvailability)} (${ops!.ok} of ${total} operations succeeded)`);
  }
  if (judgement.unknownRate > criteria.maxUnknownRate) {
    return fail(`unknown-outcome rate ${ratio(judgement.unknownRate)} is above ${ratio(criteria.maxUnknownRate)} (${ops!.unknown} of ${total} operations)`);
  }
  return {
    ...judgement,
    passing: true,
    reason: `linearizable${criteria.watchChecks ? ', watch checks passed' : ''}, availability ${ratio(judgement.availability)}, unknown-outcome rate ${ratio(judgement.unknownRate)}`,
  };
}
