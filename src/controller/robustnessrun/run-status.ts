/**
 * What a RobustnessRun's status says about a run, as pure functions: shared by the reconciler (which
 * starts runs and ends interrupted ones) and the run driver (which reports a run in progress and its end,
 * in the operator's process or in a runner Pod).
 */
import type { RobustnessRun, RobustnessRunResource, RobustnessRunStatus, RunPhase, RunRecord, ViolationSummary } from '../../domain/index.ts';
import { robustnessApiVersion, robustnessRunKind } from '../../domain/index.ts';
import { hashKvDiffers, readRobustnessRun, type RunOutcome, type RunResult } from '../../run/index.ts';
import { setCondition } from '../kit/index.ts';

export const maxViolations = 10;

/** A merge patch of the status: a null field clears it. */
export type StatusPatch = { [K in keyof RobustnessRunStatus]?: RobustnessRunStatus[K] | null };

export interface ConditionUpdate {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** The parsed run of a resource, or the reasons it is invalid (a ManifestError). */
export function runOfResource(resource: RobustnessRunResource): RobustnessRun {
  const metadata = { name: resource.metadata.name, ...(resource.metadata.namespace === undefined ? {} : { namespace: resource.metadata.namespace }) };
  const object = { apiVersion: robustnessApiVersion, kind: robustnessRunKind, metadata, spec: resource.spec };
  return readRobustnessRun(object, { file: `RobustnessRun ${resource.metadata.namespace ?? 'default'}/${resource.metadata.name}`, defaultMode: 'shared' });
}

/** The object an Event of the run is about. */
export function runEventTarget(resource: RobustnessRunResource): { apiVersion: string; kind: string; name: string; namespace: string; uid?: string } {
  const t = { apiVersion: robustnessApiVersion, kind: robustnessRunKind, name: resource.metadata.name, namespace: resource.metadata.namespace ?? 'default' };
  return resource.metadata.uid === undefined ? t : { ...t, uid: resource.metadata.uid };
}

/** Conditions Ready (spec valid, target found), Running, Succeeded, carried with observedGeneration. */
export function runConditions(resource: RobustnessRunResource, updates: readonly ConditionUpdate[]): NonNullable<RobustnessRunStatus['conditions']> {
  let conditions = resource.status?.conditions ?? [];
  for (const u of updates) conditions = setCondition(conditions, { ...u, observedGeneration: resource.metadata.generation ?? 0 }, new Date());
  return conditions;
}

/** The Event reason of a finished run's phase. */
export function eventReasonOf(phase: RunPhase): string {
  return phase === 'Passed' ? 'RunPassed' : phase === 'Failed' ? 'RunFailed' : `Run${phase}`;
}

/** The Succeeded condition of a finished run's outcome. */
export function succeededCondition(outcome: RunOutcome): ConditionUpdate {
  return { type: 'Succeeded', status: outcome.phase === 'Passed' ? 'True' : 'False', reason: outcome.reason, message: outcome.message.slice(0, 32_000) };
}

/** Status fields of a finished run: lastRun, bounded history, and the run's own fields. */
export function finishedStatus(resource: RobustnessRunResource, record: RunRecord, run: RobustnessRun | undefined): RobustnessRunStatus {
  const limit = run?.spec.schedule.historyLimit ?? resource.spec.schedule?.historyLimit ?? 10;
  const history = [record, ...(resource.status?.history ?? []).filter((r) => r.number !== record.number)].slice(0, limit);
  const status: RobustnessRunStatus = { phase: record.phase, endTime: record.endTime ?? new Date().toISOString(), lastRun: record, history };
  if (record.verdict !== undefined) status.verdict = record.verdict;
  if (record.reason !== undefined) status.reason = record.reason;
  return status;
}

export function violationsOf(result: RunResult, live: readonly ViolationSummary[]): ViolationSummary[] {
  const found: ViolationSummary[] = [...live];
  const report = result.report;
  if (report?.linearizability.verdict === 'violation' && !found.some((v) => v.check === 'linearizability')) {
    found.push({ check: 'linearizability', summary: report.linearizability.violation?.reason ?? result.reason ?? 'not linearizable' });
  }
  for (const v of report?.watch.violations ?? []) {
    if (found.length >= maxViolations) break;
    if (!found.some((f) => f.check === `watch_${v.property}` && f.summary === v.message.slice(0, 1000))) found.push({ check: `watch_${v.property}`, summary: v.message });
  }
  if (hashKvDiffers(result.hashKv)) found.push({ check: 'hash_kv', summary: result.hashKv!.detail });
  return found.slice(0, maxViolations).map((v) => ({ check: v.check, summary: v.summary.slice(0, 1000) }));
}

/**
 * The run as it starts: how long a continuous schedule's window lasts (its duration), and whether it
 * injects faults.
 */
export function prepareRun(run: RobustnessRun): { run: RobustnessRun; withFaults: boolean } {
  if (run.spec.schedule.kind === 'continuous' && run.spec.schedule.windowMs !== undefined) {
    run.spec.durationMs = run.spec.schedule.windowMs;
    run.spec.timeoutMs = Math.max(run.spec.timeoutMs, run.spec.durationMs + 5 * 60_000);
  }
  return { run, withFaults: run.spec.faults !== undefined && run.spec.faults.choices.length > 0 };
}
