// The run engine: a RobustnessRun spec driven against a cluster's members, recorded, checked live and
// offline, with metrics and a report. Used by `run --local` and (later) by the RobustnessRun controller.
export { executeRun, ClusterUnreachableError } from './engine.ts';
export type { OperationCounts, RunOptions, RunProgress, RunResult } from './engine.ts';
export { hashKvDiffers, type HashKvComparison } from './types.ts';
export { checkRunMembers, defaultRobustnessRun, ManifestError, parseRobustnessRun, readRobustnessRun } from './manifest.ts';
export { abortReasons, outcomeOfResult, runOutcome } from './outcome.ts';
export type { AbortReason, OutcomeReason, RunAbort, RunOutcome, RunOutcomeInput } from './outcome.ts';
export type { ManifestIssue, ManifestOptions } from './manifest.ts';
export { MetricsServer } from './metrics-server.ts';
export { forgetRun, probeMetrics, Registry, RunMetrics } from './metrics.ts';
export type { CheckName, OperationOutcome, ProbeMetrics } from './metrics.ts';
export { formatProgress } from './progress.ts';
export { summarize, writeRunReport } from './report.ts';
export type { RunSummary } from './report.ts';
