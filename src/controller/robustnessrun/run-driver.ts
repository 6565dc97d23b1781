/**
 * Drives one execution of a RobustnessRun that the reconciler marked Running: the run engine (probes, live
 * checker, fault scheduler) against the target EtcdCluster, progress in status (throttled), fault and
 * violation callbacks as Events, the report stored, and the finished status (bounded history). It runs in
 * the operator's process (runs without runner Pods, the local runtime) or in a runner Pod
 * (src/commands/runner.ts): the same code either way. It watches the target: a deleted EtcdCluster stops
 * the run (it heals, checks what was recorded and ends Aborted, TargetDeleted).
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { EtcdCluster, FaultEvent, MemberPlacement, RobustnessRun, RobustnessRunResource, RobustnessRunStatus, RunRecord, StoredReportRef, ViolationSummary } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { executeRun, outcomeOfResult, RunMetrics, writeRunReport, type Registry, type RunAbort, type RunProgress, type RunResult } from '../../run/index.ts';
import type { EventRecorder } from '../kit/index.ts';
import { apiErrorMessage, type CustomResources } from '../kube-api.ts';
import type { ReportStore } from '../report-store/index.ts';
import { eventReasonOf, finishedStatus, maxViolations, runConditions, runEventTarget, succeededCondition, violationsOf, type StatusPatch } from './run-status.ts';

const statusIntervalMs = 5000;

/** How a run is stopped early: the first reason given is the one recorded. */
export class RunStopper {
  readonly controller = new AbortController();
  abortedBy: RunAbort | undefined;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stop(why: RunAbort): void {
    this.abortedBy ??= why;
    this.controller.abort(this.abortedBy.message);
  }
}

export interface RunDriverDeps {
  runs: CustomResources<RobustnessRunResource>;
  clusters: CustomResources<EtcdCluster>;
  placement: MemberPlacement<EtcdCluster>;
  events: EventRecorder;
  reports: ReportStore;
  registry: Registry;
  /** How often a running run checks that its EtcdCluster still exists (default 2 s). */
  targetCheckMs?: number;
  /** Leaves the run's folder (its whole history) instead of removing it once the report is stored. */
  keepRunFolders?: boolean;
  /** False in a runner Pod: the operator counts finished runs (RunMetrics countsRuns). */
  countsRuns?: boolean;
}

export interface RunToDrive {
  key: string;
  resource: RobustnessRunResource;
  run: RobustnessRun;
  cluster: EtcdCluster;
  runNumber: number;
  startTime: string;
  /** The run's folder: its history and report before the report is stored. */
  workDir: string;
}

/**
 * Stops the run when its EtcdCluster is gone, being deleted, or replaced by another of the same name
 * (a failed read is no evidence of either: the next one decides). Returns the stopper of the watch.
 */
function watchTarget(deps: RunDriverDeps, cluster: EtcdCluster, stopper: RunStopper): () => void {
  const namespace = cluster.metadata.namespace ?? 'default';
  const name = cluster.metadata.name;
  const uid = cluster.metadata.uid;
  let checking = false;
  const timer = setInterval(() => {
    if (checking || stopper.signal.aborted) return;
    checking = true;
    deps.clusters
      .get(namespace, name)
      .then((current) => {
        const gone = current === undefined || current.metadata.deletionTimestamp !== undefined || (uid !== undefined && current.metadata.uid !== uid);
        if (gone) stopper.stop({ reason: 'TargetDeleted', message: `EtcdCluster ${namespace}/${name} was deleted during the run` });
      })
      .catch(() => undefined)
      .finally(() => (checking = false));
  }, deps.targetCheckMs ?? 2000);
  return () => clearInterval(timer);
}

/** Writes status and Events of one run. */
class RunReporter {
  private readonly deps: RunDriverDeps;
  private readonly resource: RobustnessRunResource;
  private readonly key: string;
  readonly liveViolations: ViolationSummary[] = [];
  faults = { injected: 0, failed: 0, active: 0 };
  private lastStatusAt = 0;

  constructor(deps: RunDriverDeps, key: string, resource: RobustnessRunResource) {
    this.deps = deps;
    this.key = key;
    this.resource = resource;
  }

  event(type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    return this.deps.events.record(runEventTarget(this.resource), type, reason, reason, note);
  }

  async patch(resource: RobustnessRunResource, status: StatusPatch): Promise<void> {
    await this.deps.runs.patchStatus(resource.metadata.namespace ?? 'default', resource.metadata.name, status);
  }

  latest(): Promise<RobustnessRunResource> {
    return this.deps.runs
      .get(this.resource.metadata.namespace ?? 'default', this.resource.metadata.name)
      .catch(() => undefined)
      .then((latest) => latest ?? this.resource);
  }

  onProgress = (p: RunProgress): void => {
    if (Date.now() - this.lastStatusAt < statusIntervalMs) return;
    this.lastStatusAt = Date.now();
    const status: RobustnessRunStatus = { operations: { ok: p.operations - p.failed - p.unknown, failed: p.failed, unknown: p.unknown }, achievedQps: Math.round(p.intervalQps), faults: { ...this.faults, active: p.activeFaults.length } };
    if (p.availability !== undefined) status.availability = Math.round(p.availability * 10_000) / 10_000;
    void this.patch(this.resource, status).catch((error: unknown) => logger.warn(`RobustnessRun ${this.key}: status update failed`, { error: apiErrorMessage(error) }));
  };

  onFault = (event: FaultEvent): void => {
    if (event.phase === 'inject') this.faults = { ...this.faults, injected: this.faults.injected + 1 };
    if (event.phase === 'failed') this.faults = { ...this.faults, failed: this.faults.failed + 1 };
    const targets = event.targets.join(', ') || 'the cluster';
    const detail = event.detail ? `: ${event.detail}` : '';
    if (event.phase === 'inject') void this.event('Normal', 'FaultInjected', `${event.fault} on ${targets}${detail}`);
    else if (event.phase === 'heal') void this.event('Normal', 'FaultHealed', `${event.fault} on ${targets} healed${detail}`);
    else if (event.phase === 'failed') void this.event('Warning', 'FaultFailed', `${event.fault} on ${targets}: ${event.detail ?? 'failed'}`);
  };

  onViolation = (check: string, reason: string): void => {
    if (this.liveViolations.length < maxViolations) this.liveViolations.push({ check, summary: reason.slice(0, 1000) });
    void this.event('Warning', 'ViolationDetected', `${check}: ${reason}`.slice(0, 1000));
    void this.patch(this.resource, { violations: this.liveViolations, verdict: 'violation' }).catch(() => undefined);
  };
}

/** The record of a finished run (status.lastRun and history). */
function recordOf(runNumber: number, result: RunResult, phase: RunRecord['phase'], reason: string | undefined): RunRecord {
  const record: RunRecord = { number: runNumber, phase, verdict: result.verdict, startTime: result.startTime, endTime: result.endTime, seed: result.seed };
  if (reason !== undefined) record.reason = reason.slice(0, 1000);
  const recovery = result.faults.recovery?.summary;
  if (recovery && recovery.faults > 0) {
    record.faultToWritable = { faults: recovery.faults, recovered: recovery.recovered };
    if (recovery.medianMs !== undefined) record.faultToWritable.medianMs = Math.round(recovery.medianMs);
    if (recovery.maxMs !== undefined) record.faultToWritable.maxMs = Math.round(recovery.maxMs);
  }
  return record;
}

async function storeReport(deps: RunDriverDeps, target: RunToDrive): Promise<StoredReportRef | undefined> {
  const { resource, runNumber, workDir, key } = target;
  try {
    return await deps.reports.store({ namespace: resource.metadata.namespace ?? 'default', name: resource.metadata.name, uid: resource.metadata.uid ?? '' }, runNumber, workDir);
  } catch (error) {
    logger.error(`RobustnessRun ${key}: could not store the report of run ${runNumber}`, { error: apiErrorMessage(error) });
    return undefined;
  }
}

/** The run's end in status, its report stored, old reports pruned, and the Event. */
async function reportFinished(deps: RunDriverDeps, target: RunToDrive, reporter: RunReporter, result: RunResult, abort: RunAbort | undefined): Promise<void> {
  const { key, resource, run, cluster, runNumber, workDir } = target;
  const outcome = outcomeOfResult(result, run.spec, abort);
  writeRunReport(workDir, run, cluster.metadata.name, result, path.join(workDir, 'history'), outcome);
  const phase = outcome.phase;
  const record = recordOf(runNumber, result, phase, phase === 'Passed' ? result.reason : outcome.message);
  const report = await storeReport(deps, target);
  if (report) record.report = report;
  const latest = await reporter.latest();
  const status: RobustnessRunStatus = {
    ...finishedStatus(latest, record, run),
    operations: { ok: result.operations.ok, failed: result.operations.failed, unknown: result.operations.unknown },
    achievedQps: Math.round(result.achievedQps * 10) / 10,
    faults: { injected: result.faults.injected, failed: result.faults.failed, active: 0 },
    violations: violationsOf(result, reporter.liveViolations),
    conditions: runConditions(latest, [
      { type: 'Running', status: 'False', reason: abort ? 'RunStopped' : 'RunFinished', message: `run ${runNumber} ${abort ? `stopped early: ${abort.message}` : 'finished'}` },
      succeededCondition(outcome),
    ]),
  };
  if (report) status.report = report;
  await reporter.patch(latest, { ...status, recording: null, runnerJob: null });
  // Reports of runs that fell out of the bounded history go too (the last ones outlive the resource).
  const keep = (status.history ?? []).map((r) => r.number);
  await deps.reports.prune({ namespace: resource.metadata.namespace ?? 'default', name: resource.metadata.name, uid: resource.metadata.uid ?? '' }, keep).catch((error: unknown) => {
    logger.warn(`RobustnessRun ${key}: could not prune old reports`, { error: apiErrorMessage(error) });
  });
  const writable = record.faultToWritable?.medianMs === undefined ? '' : `; fault → writable median ${record.faultToWritable.medianMs} ms, worst ${record.faultToWritable.maxMs ?? '?'} ms`;
  if (phase === 'Passed') await reporter.event('Normal', 'RunPassed', `run ${runNumber}: linearizable, ${result.operations.ok} operations, ${result.faults.injected} faults${writable}`);
  else await reporter.event('Warning', eventReasonOf(phase), `run ${runNumber}: ${outcome.reason}: ${outcome.message}`.slice(0, 1000));
  logger.info(`RobustnessRun ${key}: run ${runNumber} ${phase}`, { verdict: result.verdict, reason: outcome.reason });
}

/** A run that could not be driven at all (the runtime or the engine failed): Inconclusive, saying why. */
async function reportUndriven(target: RunToDrive, reporter: RunReporter, error: unknown): Promise<void> {
  const { run, runNumber, startTime } = target;
  const message = error instanceof Error ? error.message : String(error);
  const record: RunRecord = { number: runNumber, phase: 'Inconclusive', reason: `the run could not be driven: ${message}`.slice(0, 1000), startTime, endTime: new Date().toISOString() };
  const latest = await reporter.latest();
  await reporter
    .patch(latest, {
      ...finishedStatus(latest, record, run),
      recording: null,
      runnerJob: null,
      conditions: runConditions(latest, [
        { type: 'Running', status: 'False', reason: 'RunFinished', message: `run ${runNumber} could not be driven` },
        { type: 'Succeeded', status: 'False', reason: 'Inconclusive', message: record.reason! },
      ]),
    })
    .catch(() => undefined);
  await reporter.event('Warning', 'RunInconclusive', record.reason!);
}

/** Drives the run to its end and writes its final status; resolves once that is written (or could not be). */
export async function driveRun(deps: RunDriverDeps, target: RunToDrive, stopper: RunStopper): Promise<void> {
  const { key, resource, run, cluster, runNumber, workDir } = target;
  const reporter = new RunReporter(deps, key, resource);
  const stopWatching = watchTarget(deps, cluster, stopper);
  try {
    const runtime = await deps.placement.faultRuntime(cluster);
    await runtime.create();
    const agentToken = await deps.placement.agentToken(cluster);
    const result = await executeRun({
      run,
      clusterName: cluster.metadata.name,
      members: runtime.members(),
      historyDir: path.join(workDir, 'history'),
      metrics: new RunMetrics(deps.registry, { run: key, cluster: `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}` }, { countsRuns: deps.countsRuns ?? true }),
      signal: stopper.signal,
      onProgress: reporter.onProgress,
      onFault: reporter.onFault,
      onViolation: reporter.onViolation,
      ...(run.spec.faults ? { runtime } : {}),
      ...(agentToken === undefined ? {} : { agentToken }),
      ...(runtime.serviceEndpoint === undefined ? {} : { serviceEndpoint: runtime.serviceEndpoint }),
      // Every client of the run, not only the fault executor's (the runtime goes only with faults).
      ...(runtime.clientTls === undefined ? {} : { clientTls: runtime.clientTls }),
    });
    stopWatching();
    const abort = stopper.signal.aborted ? (stopper.abortedBy ?? { reason: 'Stopped', message: 'stopped during the run' }) : undefined;
    await reportFinished(deps, target, reporter, result, abort);
  } catch (error) {
    await reportUndriven(target, reporter, error);
  } finally {
    stopWatching();
    if (deps.keepRunFolders === true) logger.info(`RobustnessRun ${key}: run ${runNumber} kept in ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}
