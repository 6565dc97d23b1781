/**
 * RobustnessRun reconcile: validate the spec, find the target EtcdCluster, start runs as the schedule
 * says (the run engine runs in this process: probes, live checker, fault scheduler), report progress
 * in status (throttled), turn fault and violation callbacks into Events, store each finished run's
 * report and keep a bounded history. What a finished run means (Passed, Failed, Inconclusive, Aborted)
 * is src/run/outcome.ts's rule. A running run watches its target: when the EtcdCluster is deleted it
 * stops (heals, checks what was recorded, stores the report) and ends Aborted (TargetDeleted); the
 * cluster's finalizer waits for that (stopRunsOn). A run found "Running" in status that this process does
 * not run was interrupted (an operator process died): it ends Aborted (OperatorRestarted), with a report
 * of what was recorded when this replica can reach the recording.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type {
  EtcdCluster,
  FaultEvent,
  MemberPlacement,
  RobustnessRun,
  RobustnessRunResource,
  RobustnessRunStatus,
  RunPhase,
  RunRecord,
  StoredReportRef,
  ViolationSummary,
} from '../../domain/index.ts';
import { etcdClusterPlural, robustnessApiVersion, robustnessRunKind, robustnessRunPlural } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import {
  hashKvDiffers,
  checkRunMembers,
  executeRun,
  forgetRun,
  ManifestError,
  outcomeOfResult,
  readRobustnessRun,
  RunMetrics,
  writeRunReport,
  type Registry,
  type RunAbort,
  type RunOutcome,
  type RunProgress,
  type RunResult,
} from '../../run/index.ts';
import { findCondition, isConditionTrue, setCondition, splitKey, TerminalError, type EventRecorder, type ReconcileResult } from '../kit/index.ts';
import { apiErrorMessage, CustomResources, finalizerPatch } from '../kube-api.ts';
import type { ReportStore } from '../report-store/index.ts';
import { scheduleDecision } from './schedule.ts';
import { judgeRun } from '../gates/criteria.ts';
import { UpgradeMetrics } from '../etcdcluster/upgrade-metrics.ts';
import { recoverInterruptedRun } from './interrupted.ts';

export const runFinalizer = 'etcd.robustness.io/run-cleanup';
const maxViolations = 10;
const statusIntervalMs = 5000;

interface ActiveRun {
  runNumber: number;
  clusterKey: string;
  withFaults: boolean;
  abort: AbortController;
  /** Why the run was stopped early (set with abort). */
  abortedBy?: RunAbort;
  done: Promise<void>;
}

/** Stops a run early (the first reason given is the one recorded). */
function stopRun(run: ActiveRun, why: RunAbort): void {
  run.abortedBy ??= why;
  run.abort.abort(run.abortedBy.message);
}

export interface RobustnessRunReconcilerOptions {
  kubeConfig: KubeConfig;
  placement: MemberPlacement<EtcdCluster>;
  events: EventRecorder;
  reports: ReportStore;
  registry: Registry;
  /** Wakes the reconciler for a key (a run finished). */
  enqueue: (key: string) => void;
  /** Folder for the report of a run in progress (default: the system's temporary folder). */
  workDir?: string;
  /**
   * Leaves each finished run's folder (its whole history) in workDir instead of removing it once the
   * report is stored: for benchmarks and debugging, where the history is what a closer look needs.
   */
  keepRunFolders?: boolean;
  /** This operator replica's name (noted in status beside a running run's recording). */
  identity?: string;
  /** How often a running run checks that its EtcdCluster still exists (default 2 s). */
  targetCheckMs?: number;
}

/** The parsed run of a resource, or the reasons it is invalid (a ManifestError). */
export function runOfResource(resource: RobustnessRunResource): RobustnessRun {
  const metadata = { name: resource.metadata.name, ...(resource.metadata.namespace === undefined ? {} : { namespace: resource.metadata.namespace }) };
  const object = { apiVersion: robustnessApiVersion, kind: robustnessRunKind, metadata, spec: resource.spec };
  return readRobustnessRun(object, { file: `RobustnessRun ${resource.metadata.namespace ?? 'default'}/${resource.metadata.name}`, defaultMode: 'shared' });
}

type StatusPatch = { [K in keyof RobustnessRunStatus]?: RobustnessRunStatus[K] | null };

/** The Event reason of a finished run's phase. */
export function eventReasonOf(phase: RunPhase): string {
  return phase === 'Passed' ? 'RunPassed' : phase === 'Failed' ? 'RunFailed' : `Run${phase}`;
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

export class RobustnessRunReconciler {
  private readonly runs: CustomResources<RobustnessRunResource>;
  private readonly clusters: CustomResources<EtcdCluster>;
  private readonly options: RobustnessRunReconcilerOptions;
  private readonly active = new Map<string, ActiveRun>();

  constructor(options: RobustnessRunReconcilerOptions) {
    this.options = options;
    this.runs = new CustomResources<RobustnessRunResource>(options.kubeConfig, robustnessRunPlural);
    this.clusters = new CustomResources<EtcdCluster>(options.kubeConfig, etcdClusterPlural);
  }

  private get identity(): string {
    return this.options.identity ?? 'etcd-robustness-operator';
  }

  /**
   * Stops the runs of this process that target the cluster (namespace/name), which is being deleted:
   * each heals its faults, checks what it recorded, stores its report and ends Aborted (TargetDeleted).
   * Returns how many are still stopping (the cluster's finalizer waits until none is).
   */
  stopRunsOn = (clusterKey: string): number => {
    const runs = [...this.active.values()].filter((a) => a.clusterKey === clusterKey);
    for (const r of runs) stopRun(r, { reason: 'TargetDeleted', message: `EtcdCluster ${clusterKey} was deleted during the run` });
    return runs.length;
  };

  /** True while a run of this process injects faults into the cluster (namespace/name). */
  faultsActiveOn = (clusterKey: string): boolean => [...this.active.values()].some((a) => a.withFaults && a.clusterKey === clusterKey);

  private target(resource: RobustnessRunResource): { apiVersion: string; kind: string; name: string; namespace: string; uid?: string } {
    const t = { apiVersion: robustnessApiVersion, kind: robustnessRunKind, name: resource.metadata.name, namespace: resource.metadata.namespace ?? 'default' };
    return resource.metadata.uid === undefined ? t : { ...t, uid: resource.metadata.uid };
  }

  private async event(resource: RobustnessRunResource, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    await this.options.events.record(this.target(resource), type, reason, reason, note);
  }

  /** A merge patch: a null field clears it. */
  private async patchStatus(resource: RobustnessRunResource, status: StatusPatch): Promise<void> {
    await this.runs.patchStatus(resource.metadata.namespace ?? 'default', resource.metadata.name, status);
  }

  /** Conditions Ready (spec valid, target found), Running, Succeeded, carried with observedGeneration. */
  private conditions(resource: RobustnessRunResource, updates: { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string }[]): NonNullable<RobustnessRunStatus['conditions']> {
    let conditions = resource.status?.conditions ?? [];
    for (const u of updates) conditions = setCondition(conditions, { ...u, observedGeneration: resource.metadata.generation ?? 0 }, new Date());
    return conditions;
  }

  reconcile = async (key: string): Promise<ReconcileResult> => {
    const { namespace = 'default', name } = splitKey(key);
    const resource = await this.runs.get(namespace, name);
    const active = this.active.get(key);
    if (!resource) {
      if (active) {
        stopRun(active, { reason: 'Stopped', message: 'the RobustnessRun was deleted during the run' });
        await active.done;
      }
      // Deleted: its series go too (after the run stopped, which records its end).
      await forgetRun(this.options.registry, key);
      new UpgradeMetrics(this.options.registry).forgetRun(key);
      return {};
    }
    if (resource.metadata.deletionTimestamp !== undefined) {
      if (active) {
        // Stopping the engine heals the faults it injected before it returns.
        stopRun(active, { reason: 'Stopped', message: 'the RobustnessRun was deleted during the run' });
        await active.done;
      }
      if ((resource.metadata.finalizers ?? []).includes(runFinalizer)) {
        await this.runs.patch(namespace, name, finalizerPatch(resource.metadata, runFinalizer, false));
      }
      return {};
    }
    if (!(resource.metadata.finalizers ?? []).includes(runFinalizer)) {
      await this.runs.patch(namespace, name, finalizerPatch(resource.metadata, runFinalizer, true));
      return { requeueAfterMs: 100 };
    }

    if (active) return {}; // the run reports its own progress and wakes this key when it ends

    if (resource.status?.phase === 'Running') {
      // Status says a run is going, but this process does not run it: it was interrupted.
      await this.endInterrupted(key, resource);
      return { requeueAfterMs: 100 };
    }

    let run: RobustnessRun;
    try {
      run = runOfResource(resource);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      return this.refuse(key, resource, 'InvalidSpec', error.issues.map((i) => `${i.path}: ${i.problem}`).join('; '));
    }

    const clusterNamespace = run.spec.clusterRef?.namespace ?? namespace;
    const clusterName = run.spec.clusterRef?.name;
    if (clusterName === undefined) throw new TerminalError(`RobustnessRun ${key}: spec.clusterRef is required`);
    const cluster = await this.clusters.get(clusterNamespace, clusterName);
    const notReady = async (reason: string, message: string): Promise<ReconcileResult> => {
      if (findCondition(resource.status?.conditions, 'Ready')?.reason !== reason) {
        await this.patchStatus(resource, { phase: resource.status?.phase ?? 'Pending', observedGeneration: resource.metadata.generation ?? 0, conditions: this.conditions(resource, [{ type: 'Ready', status: 'False', reason, message }]) });
      }
      return { requeueAfterMs: 5000 };
    };
    if (!cluster) return notReady('ClusterNotFound', `EtcdCluster ${clusterNamespace}/${clusterName} does not exist`);
    if (cluster.metadata.deletionTimestamp !== undefined) return notReady('ClusterDeleting', `EtcdCluster ${clusterNamespace}/${clusterName} is being deleted`);

    const decision = scheduleDecision(run.spec.schedule, resource.status, new Date(resource.metadata.creationTimestamp ?? Date.now()), new Date());
    if (!decision.due) {
      const status: RobustnessRunStatus = {};
      if (decision.next && resource.status?.nextRunTime !== decision.next.toISOString()) status.nextRunTime = decision.next.toISOString();
      if (!resource.status?.phase) status.phase = 'Pending';
      if (Object.keys(status).length > 0) await this.patchStatus(resource, status);
      return decision.next ? { requeueAfterMs: Math.max(1000, decision.next.getTime() - Date.now()) } : {};
    }
    if (!isConditionTrue(cluster.status?.conditions, 'Available')) {
      return notReady('ClusterNotAvailable', `EtcdCluster ${clusterNamespace}/${clusterName} is not Available yet`);
    }
    // Before any traffic: a fault aimed at a member the cluster does not have is refused, not failed at run time.
    if (namesMembers(run)) {
      const runtime = await this.options.placement.faultRuntime(cluster);
      await runtime.create();
      try {
        checkRunMembers(run, runtime.members().map((m) => m.name), `RobustnessRun ${key}`);
      } catch (error) {
        if (!(error instanceof ManifestError)) throw error;
        return this.refuse(key, resource, 'UnknownMember', error.issues.map((i) => `${i.path}: ${i.problem}`).join('; '));
      }
    }
    await this.start(key, resource, run, cluster);
    return {};
  };

  /**
   * A run this operator will not start as it stands: Ready False with `reason`, and an Event, written once
   * per message; then a terminal error (a change of the spec requeues it). The phase stays what it was.
   */
  private async refuse(key: string, resource: RobustnessRunResource, reason: string, message: string): Promise<never> {
    if (findCondition(resource.status?.conditions, 'Ready')?.message !== message) {
      await this.patchStatus(resource, { phase: resource.status?.phase ?? 'Pending', observedGeneration: resource.metadata.generation ?? 0, conditions: this.conditions(resource, [{ type: 'Ready', status: 'False', reason, message }]) });
      await this.event(resource, 'Warning', reason, message);
    }
    throw new TerminalError(`RobustnessRun ${key}: ${message}`);
  }

  /** Status fields of a finished run: lastRun, bounded history, and the run's own fields. */
  private finishedStatus(resource: RobustnessRunResource, record: RunRecord, run: RobustnessRun | undefined): RobustnessRunStatus {
    const limit = run?.spec.schedule.historyLimit ?? resource.spec.schedule?.historyLimit ?? 10;
    const history = [record, ...(resource.status?.history ?? []).filter((r) => r.number !== record.number)].slice(0, limit);
    const status: RobustnessRunStatus = { phase: record.phase, endTime: record.endTime ?? new Date().toISOString(), lastRun: record, history };
    if (record.verdict !== undefined) status.verdict = record.verdict;
    if (record.reason !== undefined) status.reason = record.reason;
    return status;
  }

  private async start(key: string, resource: RobustnessRunResource, run: RobustnessRun, cluster: EtcdCluster): Promise<void> {
    const runNumber = (resource.status?.runNumber ?? 0) + 1;
    if (run.spec.schedule.kind === 'continuous' && run.spec.schedule.windowMs !== undefined) {
      run.spec.durationMs = run.spec.schedule.windowMs;
      run.spec.timeoutMs = Math.max(run.spec.timeoutMs, run.spec.durationMs + 5 * 60_000);
    }
    const startTime = new Date().toISOString();
    const clusterKey = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
    const withFaults = run.spec.faults !== undefined && run.spec.faults.choices.length > 0;
    // Noted in status: a replica that finds this run interrupted looks there for what was recorded.
    const workDir = mkdtempSync(path.join(this.options.workDir ?? os.tmpdir(), `robustnessrun-${resource.metadata.name}-`));
    await this.markRunning(resource, workDir, {
      phase: 'Running',
      recording: { replica: this.identity, path: workDir },
      observedGeneration: resource.metadata.generation ?? 0,
      runNumber,
      startTime,
      endTime: null, // the previous run's
      seed: run.spec.seed,
      operations: { ok: 0, failed: 0, unknown: 0 },
      faults: { injected: 0, failed: 0, active: 0 },
      violations: [],
      verdict: null,
      reason: null,
      conditions: this.conditions(resource, [
        { type: 'Ready', status: 'True', reason: 'TargetAvailable', message: `EtcdCluster ${clusterKey} is Available` },
        { type: 'Running', status: 'True', reason: 'RunStarted', message: `run ${runNumber} started` },
        { type: 'Succeeded', status: 'Unknown', reason: 'Running', message: `run ${runNumber} in progress` },
      ]),
    });
    await this.event(resource, 'Normal', 'RunStarted', `run ${runNumber} against EtcdCluster ${clusterKey}: ${run.spec.durationMs / 1000}s of ${run.spec.traffic.profile} traffic at ${run.spec.traffic.qps.target} QPS, ${withFaults ? `faults ${run.spec.faults!.choices.map((c) => c.fault).join(',')}` : 'no faults'}, seed ${run.spec.seed}`);
    logger.info(`RobustnessRun ${key}: run ${runNumber} started`, { cluster: clusterKey, seed: run.spec.seed });

    const abort = new AbortController();
    const entry: ActiveRun = { runNumber, clusterKey, withFaults, abort, done: Promise.resolve() };
    this.active.set(key, entry);
    entry.done = this.execute(key, resource, run, cluster, { runNumber, startTime, workDir }, entry)
      .catch((error: unknown) => {
        logger.error(`RobustnessRun ${key}: run ${runNumber} failed to complete`, { error: apiErrorMessage(error) });
      })
      .finally(() => {
        this.active.delete(key);
        this.options.enqueue(key);
      });
  }

  /**
   * Stops the run when its EtcdCluster is gone, being deleted, or replaced by another of the same name
   * (a failed read is no evidence of either: the next one decides). Returns the stopper of the watch.
   */
  private watchTarget(cluster: EtcdCluster, entry: ActiveRun): () => void {
    const namespace = cluster.metadata.namespace ?? 'default';
    const name = cluster.metadata.name;
    const uid = cluster.metadata.uid;
    let checking = false;
    const timer = setInterval(() => {
      if (checking || entry.abort.signal.aborted) return;
      checking = true;
      this.clusters
        .get(namespace, name)
        .then((current) => {
          const gone = current === undefined || current.metadata.deletionTimestamp !== undefined || (uid !== undefined && current.metadata.uid !== uid);
          if (gone) stopRun(entry, { reason: 'TargetDeleted', message: `EtcdCluster ${namespace}/${name} was deleted during the run` });
        })
        .catch(() => undefined)
        .finally(() => (checking = false));
    }, this.options.targetCheckMs ?? 2000);
    return () => clearInterval(timer);
  }

  private async execute(key: string, resource: RobustnessRunResource, run: RobustnessRun, cluster: EtcdCluster, at: { runNumber: number; startTime: string; workDir: string }, entry: ActiveRun): Promise<void> {
    const { placement } = this.options;
    const { runNumber, startTime, workDir } = at;
    const signal = entry.abort.signal;
    const historyDir = path.join(workDir, 'history');
    const stopWatching = this.watchTarget(cluster, entry);
    const liveViolations: ViolationSummary[] = [];
    let lastStatusAt = 0;
    let faults = { injected: 0, failed: 0, active: 0 };
    let record: RunRecord;
    try {
      const runtime = await placement.faultRuntime(cluster);
      await runtime.create();
      const agentToken = await placement.agentToken(cluster);
      const onProgress = (p: RunProgress): void => {
        if (Date.now() - lastStatusAt < statusIntervalMs) return;
        lastStatusAt = Date.now();
        const status: RobustnessRunStatus = { operations: { ok: p.operations - p.failed - p.unknown, failed: p.failed, unknown: p.unknown }, achievedQps: Math.round(p.intervalQps), faults: { ...faults, active: p.activeFaults.length } };
        if (p.availability !== undefined) status.availability = Math.round(p.availability * 10_000) / 10_000;
        void this.patchStatus(resource, status).catch((error: unknown) => logger.warn(`RobustnessRun ${key}: status update failed`, { error: apiErrorMessage(error) }));
      };
      const onFault = (event: FaultEvent): void => {
        if (event.phase === 'inject') faults = { ...faults, injected: faults.injected + 1 };
        if (event.phase === 'failed') faults = { ...faults, failed: faults.failed + 1 };
        const targets = event.targets.join(', ') || 'the cluster';
        if (event.phase === 'inject') void this.event(resource, 'Normal', 'FaultInjected', `${event.fault} on ${targets}${event.detail ? `: ${event.detail}` : ''}`);
        else if (event.phase === 'heal') void this.event(resource, 'Normal', 'FaultHealed', `${event.fault} on ${targets} healed${event.detail ? `: ${event.detail}` : ''}`);
        else if (event.phase === 'failed') void this.event(resource, 'Warning', 'FaultFailed', `${event.fault} on ${targets}: ${event.detail ?? 'failed'}`);
      };
      const onViolation = (check: string, reason: string): void => {
        if (liveViolations.length < maxViolations) liveViolations.push({ check, summary: reason.slice(0, 1000) });
        void this.event(resource, 'Warning', 'ViolationDetected', `${check}: ${reason}`.slice(0, 1000));
        void this.patchStatus(resource, { violations: liveViolations, verdict: 'violation' }).catch(() => undefined);
      };
      const result = await executeRun({
        run,
        clusterName: cluster.metadata.name,
        members: runtime.members(),
        historyDir,
        metrics: new RunMetrics(this.options.registry, { run: `${resource.metadata.namespace ?? 'default'}/${resource.metadata.name}`, cluster: `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}` }),
        signal,
        onProgress,
        onFault,
        onViolation,
        ...(run.spec.faults ? { runtime } : {}),
        ...(agentToken === undefined ? {} : { agentToken }),
        ...(runtime.serviceEndpoint === undefined ? {} : { serviceEndpoint: runtime.serviceEndpoint }),
        // Every client of the run, not only the fault executor's (the runtime goes only with faults).
        ...(runtime.clientTls === undefined ? {} : { clientTls: runtime.clientTls }),
      });
      stopWatching();
      const abort = signal.aborted ? (entry.abortedBy ?? { reason: 'Stopped', message: 'stopped during the run' }) : undefined;
      const outcome = outcomeOfResult(result, run.spec, abort);
      writeRunReport(workDir, run, cluster.metadata.name, result, historyDir, outcome);
      const phase = outcome.phase;
      record = { number: runNumber, phase, verdict: result.verdict, startTime: result.startTime, endTime: result.endTime, seed: result.seed };
      const reason = phase === 'Passed' ? result.reason : outcome.message;
      if (reason !== undefined) record.reason = reason.slice(0, 1000);
      const recovery = result.faults.recovery?.summary;
      if (recovery && recovery.faults > 0) {
        record.faultToWritable = { faults: recovery.faults, recovered: recovery.recovered };
        if (recovery.medianMs !== undefined) record.faultToWritable.medianMs = Math.round(recovery.medianMs);
        if (recovery.maxMs !== undefined) record.faultToWritable.maxMs = Math.round(recovery.maxMs);
      }
      let report: StoredReportRef | undefined;
      try {
        report = await this.options.reports.store({ namespace: resource.metadata.namespace ?? 'default', name: resource.metadata.name, uid: resource.metadata.uid ?? '' }, runNumber, workDir);
        record.report = report;
      } catch (error) {
        logger.error(`RobustnessRun ${key}: could not store the report of run ${runNumber}`, { error: apiErrorMessage(error) });
      }
      const latest = (await this.runs.get(resource.metadata.namespace ?? 'default', resource.metadata.name)) ?? resource;
      const status: RobustnessRunStatus = {
        ...this.finishedStatus(latest, record, run),
        operations: { ok: result.operations.ok, failed: result.operations.failed, unknown: result.operations.unknown },
        achievedQps: Math.round(result.achievedQps * 10) / 10,
        faults: { injected: result.faults.injected, failed: result.faults.failed, active: 0 },
        violations: violationsOf(result, liveViolations),
        conditions: this.conditions(latest, [
          { type: 'Running', status: 'False', reason: abort ? 'RunStopped' : 'RunFinished', message: `run ${runNumber} ${abort ? `stopped early: ${abort.message}` : 'finished'}` },
          this.succeeded(outcome),
        ]),
      };
      if (report) status.report = report;
      await this.patchStatus(latest, { ...status, recording: null });
      // What a gate consulting this run (the HTTP gate endpoint, Argo Rollouts, Flagger) sees, as a metric.
      new UpgradeMetrics(this.options.registry).runJudged(key, judgeRun(status)?.passing ?? false);
      // Reports of runs that fell out of the bounded history go too (the last ones outlive the resource).
      const keep = (status.history ?? []).map((r) => r.number);
      await this.options.reports.prune({ namespace: resource.metadata.namespace ?? 'default', name: resource.metadata.name, uid: resource.metadata.uid ?? '' }, keep).catch((error: unknown) => {
        logger.warn(`RobustnessRun ${key}: could not prune old reports`, { error: apiErrorMessage(error) });
      });
      const writable = record.faultToWritable?.medianMs === undefined ? '' : `; fault → writable median ${record.faultToWritable.medianMs} ms, worst ${record.faultToWritable.maxMs ?? '?'} ms`;
      if (phase === 'Passed') await this.event(resource, 'Normal', 'RunPassed', `run ${runNumber}: linearizable, ${result.operations.ok} operations, ${result.faults.injected} faults${writable}`);
      else await this.event(resource, 'Warning', eventReasonOf(phase), `run ${runNumber}: ${outcome.reason}: ${outcome.message}`.slice(0, 1000));
      logger.info(`RobustnessRun ${key}: run ${runNumber} ${phase}`, { verdict: result.verdict, reason: outcome.reason });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      record = { number: runNumber, phase: 'Inconclusive', reason: `the run could not be driven: ${message}`.slice(0, 1000), startTime, endTime: new Date().toISOString() };
      const latest = (await this.runs.get(resource.metadata.namespace ?? 'default', resource.metadata.name).catch(() => undefined)) ?? resource;
      await this.patchStatus(latest, {
        ...this.finishedStatus(latest, record, run),
        recording: null,
        conditions: this.conditions(latest, [
          { type: 'Running', status: 'False', reason: 'RunFinished', message: `run ${runNumber} could not be driven` },
          { type: 'Succeeded', status: 'False', reason: 'Inconclusive', message: record.reason! },
        ]),
      }).catch(() => undefined);
      await this.event(resource, 'Warning', 'RunInconclusive', record.reason!);
    } finally {
      stopWatching();
      if (this.options.keepRunFolders === true) logger.info(`RobustnessRun ${key}: run ${runNumber} kept in ${workDir}`);
      else rmSync(workDir, { recursive: true, force: true });
    }
  }

  /** Status Running, noting where the run records; the folder goes when the status cannot be written. */
  private async markRunning(resource: RobustnessRunResource, workDir: string, status: StatusPatch): Promise<void> {
    try {
      await this.patchStatus(resource, status);
    } catch (error) {
      rmSync(workDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The Succeeded condition of a finished run's outcome. */
  private succeeded(outcome: RunOutcome): { type: string; status: 'True' | 'False'; reason: string; message: string } {
    return { type: 'Succeeded', status: outcome.phase === 'Passed' ? 'True' : 'False', reason: outcome.reason, message: outcome.message.slice(0, 32_000) };
  }

  /**
   * Ends a run whose executor died with another operator process (or this one's predecessor): Aborted
   * (OperatorRestarted), with the report of what it recorded when the recording is on a disk this
   * replica reaches; otherwise the status says where the recording was.
   */
  private async endInterrupted(key: string, resource: RobustnessRunResource): Promise<void> {
    const status = resource.status ?? {};
    const runNumber = status.runNumber ?? 1;
    const previous = status.recording?.replica;
    const abort: RunAbort = {
      reason: 'OperatorRestarted',
      message: `the operator${previous === undefined ? '' : ` replica ${previous}`} running it stopped during the run (its process ended without a clean stop)`,
    };
    let run: RobustnessRun | undefined;
    try {
      run = runOfResource(resource);
    } catch {
      run = undefined; // the spec changed into an invalid one since: the figures below use the defaults
    }
    const recovered = await recoverInterruptedRun(status, this.identity, abort, {
      timeoutMs: 5 * 60_000,
      tolerateFailures: run?.spec.faults?.tolerateFailures ?? false,
      minQps: run?.spec.traffic.qps.min ?? 0,
      checks: run?.spec.checks ?? { linearizability: true, watch: true },
      run: resource.metadata.name,
    });
    const outcome: RunOutcome = recovered.kind === 'checked' ? recovered.outcome : { phase: 'Aborted', reason: abort.reason, message: `${abort.message}; ${recovered.message}` };
    const message = recovered.kind === 'checked' && recovered.problem !== undefined ? `${outcome.message}; ${recovered.problem}` : outcome.message;
    const record: RunRecord = { number: runNumber, phase: outcome.phase, reason: message.slice(0, 1000), startTime: status.startTime ?? new Date().toISOString(), endTime: new Date().toISOString() };
    if (recovered.kind === 'checked' && recovered.report) record.verdict = recovered.verdict;
    if (status.seed !== undefined) record.seed = status.seed;
    const ref = { namespace: resource.metadata.namespace ?? 'default', name: resource.metadata.name, uid: resource.metadata.uid ?? '' };
    if (recovered.kind === 'checked') {
      try {
        record.report = await this.options.reports.store(ref, runNumber, recovered.dir);
      } catch (error) {
        logger.error(`RobustnessRun ${key}: could not store the report of interrupted run ${runNumber}`, { error: apiErrorMessage(error) });
      }
      rmSync(recovered.dir, { recursive: true, force: true });
    }
    const finished: StatusPatch = {
      ...this.finishedStatus(resource, record, run),
      recording: null,
      conditions: this.conditions(resource, [
        { type: 'Running', status: 'False', reason: 'Interrupted', message: abort.message },
        this.succeeded({ ...outcome, message }),
      ]),
    };
    if (record.report) finished.report = record.report;
    else finished.report = null; // the previous run's report is not this one's
    await this.patchStatus(resource, finished);
    await this.event(resource, 'Warning', eventReasonOf(outcome.phase), `run ${runNumber}: ${outcome.reason}: ${message}`.slice(0, 1000));
  }

  /** Stops every run of this process; each heals its faults and records its result (SIGTERM, lost lease). */
  async close(): Promise<void> {
    const runs = [...this.active.values()];
    for (const r of runs) stopRun(r, { reason: 'OperatorStopped', message: 'the operator stopped (SIGTERM or a lost lease) during the run' });
    await Promise.all(runs.map((r) => r.done));
  }
}

/** True when the run names members (a fault's target member, the self-test's member): they must exist. */
function namesMembers(run: RobustnessRun): boolean {
  return (run.spec.faults?.choices ?? []).some((c) => c.member !== undefined) || run.spec.selfTest?.staleReads?.member !== undefined;
}

