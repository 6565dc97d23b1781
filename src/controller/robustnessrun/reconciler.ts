/**
 * RobustnessRun reconcile: validate the spec, find the target EtcdCluster and start runs as the schedule
 * says. A run executes in a runner Pod of its own (a Job, ./runner-jobs.ts) when the operator has runner
 * Pods, else in this process; either way ./run-driver.ts drives it (probes, live checker, fault scheduler),
 * reports progress and Events, stores the report and keeps a bounded history. What a finished run means
 * (Passed, Failed, Inconclusive, Aborted) is src/run/outcome.ts's rule. A running run watches its target:
 * when the EtcdCluster is deleted it stops (heals, checks what was recorded, stores the report) and ends
 * Aborted (TargetDeleted); the cluster's finalizer waits for that (stopRunsOn).
 *
 * A run in a runner Pod outlives operator restarts and leader changes: whoever leads finds its Job and
 * waits. A run found "Running" that nothing runs was interrupted: in this process's predecessor (Aborted,
 * OperatorRestarted, with a report of what was recorded when this replica can reach it) or in a runner
 * Pod that ended without reporting (Aborted, RunnerFailed: the Job's reason, e.g. its deadline or the Pod
 * killed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { EtcdCluster, MemberPlacement, RobustnessRun, RobustnessRunResource, RobustnessRunStatus, RunRecord } from '../../domain/index.ts';
import { etcdClusterPlural, robustnessRunPlural } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { checkRunMembers, forgetRun, ManifestError, RunMetrics, type Registry, type RunAbort, type RunOutcome } from '../../run/index.ts';
import { findCondition, isConditionTrue, splitKey, TerminalError, type EventRecorder, type ReconcileResult } from '../kit/index.ts';
import { apiErrorMessage, CustomResources, finalizerPatch } from '../kube-api.ts';
import type { ReportStore } from '../report-store/index.ts';
import { scheduleDecision } from './schedule.ts';
import { judgeRun } from '../gates/criteria.ts';
import { UpgradeMetrics } from '../etcdcluster/upgrade-metrics.ts';
import { recoverInterruptedRun } from './interrupted.ts';
import { driveRun, RunStopper, type RunDriverDeps } from './run-driver.ts';
import { eventReasonOf, finishedStatus, prepareRun, runConditions, runEventTarget, runOfResource, succeededCondition, type ConditionUpdate, type StatusPatch } from './run-status.ts';
import { jobEnd, runnerJob, type RunnerJobs } from './runner-jobs.ts';

export { eventReasonOf, runOfResource, violationsOf } from './run-status.ts';

export const runFinalizer = 'etcd.robustness.io/run-cleanup';

/** A run this process drives. */
interface ActiveRun {
  runNumber: number;
  clusterKey: string;
  withFaults: boolean;
  stopper: RunStopper;
  done: Promise<void>;
}

/** A run a runner Pod drives (known from this process's start of it, or from its status after a restart). */
interface RunnerRun {
  job: string;
  runNumber: number;
  clusterKey: string;
  withFaults: boolean;
  /** The run's etcd_robustness_runs_total here: the runner Pod's registry dies with it. */
  metrics: RunMetrics;
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
  /** Runs execute in runner Pods made by these (the kubernetes runtime); absent: in this process. */
  runners?: RunnerJobs;
}

export class RobustnessRunReconciler {
  private readonly runs: CustomResources<RobustnessRunResource>;
  private readonly clusters: CustomResources<EtcdCluster>;
  private readonly options: RobustnessRunReconcilerOptions;
  private readonly driverDeps: RunDriverDeps;
  /** Runs this process drives. */
  private readonly active = new Map<string, ActiveRun>();
  /** Runs runner Pods drive, by run key. */
  private readonly inRunners = new Map<string, RunnerRun>();

  constructor(options: RobustnessRunReconcilerOptions) {
    this.options = options;
    this.runs = new CustomResources<RobustnessRunResource>(options.kubeConfig, robustnessRunPlural);
    this.clusters = new CustomResources<EtcdCluster>(options.kubeConfig, etcdClusterPlural);
    this.driverDeps = {
      runs: this.runs,
      clusters: this.clusters,
      placement: options.placement,
      events: options.events,
      reports: options.reports,
      registry: options.registry,
      ...(options.targetCheckMs === undefined ? {} : { targetCheckMs: options.targetCheckMs }),
      ...(options.keepRunFolders === undefined ? {} : { keepRunFolders: options.keepRunFolders }),
    };
  }

  private get identity(): string {
    return this.options.identity ?? 'etcd-robustness-operator';
  }

  /**
   * Stops the runs that target the cluster (namespace/name), which is being deleted: each heals its
   * faults, checks what it recorded, stores its report and ends Aborted (TargetDeleted); a runner Pod sees
   * the deletion itself. Returns how many are still stopping (the cluster's finalizer waits until none is).
   */
  stopRunsOn = (clusterKey: string): number => {
    const runs = [...this.active.values()].filter((a) => a.clusterKey === clusterKey);
    for (const r of runs) r.stopper.stop({ reason: 'TargetDeleted', message: `EtcdCluster ${clusterKey} was deleted during the run` });
    return runs.length + [...this.inRunners.values()].filter((r) => r.clusterKey === clusterKey).length;
  };

  /** True while a run (of this process or a runner Pod) injects faults into the cluster (namespace/name). */
  faultsActiveOn = (clusterKey: string): boolean =>
    [...this.active.values(), ...this.inRunners.values()].some((a) => a.withFaults && a.clusterKey === clusterKey);

  private async event(resource: RobustnessRunResource, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    await this.options.events.record(runEventTarget(resource), type, reason, reason, note);
  }

  /** A merge patch: a null field clears it. */
  private async patchStatus(resource: RobustnessRunResource, status: StatusPatch): Promise<void> {
    await this.runs.patchStatus(resource.metadata.namespace ?? 'default', resource.metadata.name, status);
  }

  reconcile = async (key: string): Promise<ReconcileResult> => {
    const { namespace = 'default', name } = splitKey(key);
    const resource = await this.runs.get(namespace, name);
    const active = this.active.get(key);
    if (!resource) {
      if (active) {
        active.stopper.stop({ reason: 'Stopped', message: 'the RobustnessRun was deleted during the run' });
        await active.done;
      }
      const inRunner = this.inRunners.get(key);
      if (inRunner) await this.options.runners?.delete(inRunner.job);
      this.inRunners.delete(key);
      // Deleted: its series go too (after the run stopped, which records its end).
      await forgetRun(this.options.registry, key);
      new UpgradeMetrics(this.options.registry).forgetRun(key);
      return {};
    }
    if (resource.metadata.deletionTimestamp !== undefined) return this.finalize(key, resource, active);
    if (!(resource.metadata.finalizers ?? []).includes(runFinalizer)) {
      await this.runs.patch(namespace, name, finalizerPatch(resource.metadata, runFinalizer, true));
      return { requeueAfterMs: 100 };
    }

    if (active) return {}; // the run reports its own progress and wakes this key when it ends

    if (resource.status?.phase === 'Running') return this.runningElsewhere(key, resource);
    this.countRunnerEnd(key, resource);
    // What a gate consulting the last run (the HTTP gate endpoint, Argo Rollouts, Flagger) sees, as a metric.
    if (resource.status?.lastRun !== undefined) new UpgradeMetrics(this.options.registry).runJudged(key, judgeRun(resource.status)?.passing ?? false);

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
        await this.patchStatus(resource, { phase: resource.status?.phase ?? 'Pending', observedGeneration: resource.metadata.generation ?? 0, conditions: runConditions(resource, [{ type: 'Ready', status: 'False', reason, message }]) });
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
   * A RobustnessRun being deleted: its run stops first (it heals the faults it injected and reports), in
   * this process or in its runner Pod (the Job is deleted in the foreground, the Pod gets SIGTERM); the
   * finalizer goes once nothing runs it any more.
   */
  private async finalize(key: string, resource: RobustnessRunResource, active: ActiveRun | undefined): Promise<ReconcileResult> {
    if (active) {
      active.stopper.stop({ reason: 'Stopped', message: 'the RobustnessRun was deleted during the run' });
      await active.done;
    }
    const runners = this.options.runners;
    if (runners) {
      // Every Job of the run: the running one stops (its Pod heals and reports), finished ones go with it.
      const jobs = await runners.jobsFor(resource.metadata.namespace ?? 'default', resource.metadata.name);
      let running = 0;
      for (const job of jobs) {
        const ended = jobEnd(job) !== undefined;
        if (!ended) running++;
        if (job.metadata?.deletionTimestamp === undefined) await runners.delete(job.metadata?.name ?? '', !ended);
      }
      if (running > 0) return { requeueAfterMs: 1000 };
    }
    this.inRunners.delete(key);
    if ((resource.metadata.finalizers ?? []).includes(runFinalizer)) {
      await this.runs.patch(resource.metadata.namespace ?? 'default', resource.metadata.name, finalizerPatch(resource.metadata, runFinalizer, false));
    }
    return {};
  }

  /**
   * Status says a run is going and this process does not drive it: a runner Pod does (wait for it), or
   * nothing does any more (end it as interrupted).
   */
  private async runningElsewhere(key: string, resource: RobustnessRunResource): Promise<ReconcileResult> {
    const jobName = resource.status?.runnerJob;
    if (jobName === undefined || !this.options.runners) {
      this.inRunners.delete(key);
      await this.endInterrupted(key, resource, this.operatorRestarted(resource));
      return { requeueAfterMs: 100 };
    }
    const job = await this.options.runners.read(jobName);
    const end = job === undefined ? { succeeded: false, message: 'the Job is gone' } : jobEnd(job);
    if (end === undefined) {
      if (!this.inRunners.has(key)) this.trackRunner(key, jobName, resource.status?.runNumber ?? 1, this.targetOf(resource));
      return { requeueAfterMs: 30_000 }; // the Job informer wakes this key when it ends
    }
    // The runner writes the run's end before it exits: a Job that ended without it lost its runner (the
    // next reconcile counts the run's end).
    const message = end.succeeded
      ? `its runner Pod (Job ${jobName}) exited without reporting the run's end`
      : `its runner Pod (Job ${jobName}) ended before the run did: ${end.message}; the history was in that Pod`;
    await this.endInterrupted(key, resource, { reason: 'RunnerFailed', message });
    return { requeueAfterMs: 100 };
  }

  /** A run a runner Pod drove has ended: counted in etcd_robustness_runs_total by its verdict. */
  private countRunnerEnd(key: string, resource: RobustnessRunResource): void {
    const ended = this.inRunners.get(key);
    if (ended === undefined) return;
    this.inRunners.delete(key);
    const last = resource.status?.lastRun;
    if (last?.number === ended.runNumber) ended.metrics.finished(last.verdict ?? 'inconclusive');
  }

  /** Tracks a run a runner Pod drives (its runs_total series exist at 0 from now, so increase() sees its end). */
  private trackRunner(key: string, job: string, runNumber: number, target: { clusterKey: string; withFaults: boolean }): void {
    const metrics = new RunMetrics(this.options.registry, { run: key, cluster: target.clusterKey });
    this.inRunners.set(key, { job, runNumber, ...target, metrics });
  }

  /** The cluster a run targets and whether it injects faults, as far as its spec says (faults assumed when unreadable). */
  private targetOf(resource: RobustnessRunResource): { clusterKey: string; withFaults: boolean } {
    const namespace = resource.spec.clusterRef?.namespace ?? resource.metadata.namespace ?? 'default';
    const clusterKey = `${namespace}/${resource.spec.clusterRef?.name ?? ''}`;
    try {
      return { clusterKey, withFaults: prepareRun(runOfResource(resource)).withFaults };
    } catch {
      return { clusterKey, withFaults: resource.spec.faults !== undefined };
    }
  }

  /**
   * A run this operator will not start as it stands: Ready False with `reason`, and an Event, written once
   * per message; then a terminal error (a change of the spec requeues it). The phase stays what it was.
   */
  private async refuse(key: string, resource: RobustnessRunResource, reason: string, message: string): Promise<never> {
    if (findCondition(resource.status?.conditions, 'Ready')?.message !== message) {
      await this.patchStatus(resource, { phase: resource.status?.phase ?? 'Pending', observedGeneration: resource.metadata.generation ?? 0, conditions: runConditions(resource, [{ type: 'Ready', status: 'False', reason, message }]) });
      await this.event(resource, 'Warning', reason, message);
    }
    throw new TerminalError(`RobustnessRun ${key}: ${message}`);
  }

  /** Status Running for run `runNumber`, with where it runs (`where`); an Event says what it will do. */
  private async markRunning(resource: RobustnessRunResource, run: RobustnessRun, cluster: EtcdCluster, runNumber: number, startTime: string, where: StatusPatch): Promise<void> {
    const clusterKey = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
    const conditions: ConditionUpdate[] = [
      { type: 'Ready', status: 'True', reason: 'TargetAvailable', message: `EtcdCluster ${clusterKey} is Available` },
      { type: 'Running', status: 'True', reason: 'RunStarted', message: `run ${runNumber} started` },
      { type: 'Succeeded', status: 'Unknown', reason: 'Running', message: `run ${runNumber} in progress` },
    ];
    await this.patchStatus(resource, {
      phase: 'Running',
      ...where,
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
      conditions: runConditions(resource, conditions),
    });
    const faults = run.spec.faults ? `faults ${run.spec.faults.choices.map((c) => c.fault).join(',')}` : 'no faults';
    await this.event(resource, 'Normal', 'RunStarted', `run ${runNumber} against EtcdCluster ${clusterKey}: ${run.spec.durationMs / 1000}s of ${run.spec.traffic.profile} traffic at ${run.spec.traffic.qps.target} QPS, ${faults}, seed ${run.spec.seed}`);
    logger.info(`RobustnessRun ${resource.metadata.namespace ?? 'default'}/${resource.metadata.name}: run ${runNumber} started`, { cluster: clusterKey, seed: run.spec.seed });
  }

  private async start(key: string, resource: RobustnessRunResource, spec: RobustnessRun, cluster: EtcdCluster): Promise<void> {
    const runNumber = (resource.status?.runNumber ?? 0) + 1;
    const { run, withFaults } = prepareRun(spec);
    const startTime = new Date().toISOString();
    const clusterKey = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
    const runners = this.options.runners;
    if (runners) {
      // Running (with the Job's name) before the Job exists: whoever leads next finds the Job through it.
      const job = runnerJob(resource, runNumber, run.spec.timeoutMs, runners.options);
      const jobName = job.metadata!.name!;
      await this.markRunning(resource, run, cluster, runNumber, startTime, { runnerJob: jobName, recording: null });
      this.trackRunner(key, jobName, runNumber, { clusterKey, withFaults });
      try {
        await runners.create(job);
      } catch (error) {
        this.inRunners.delete(key);
        const latest = (await this.runs.get(resource.metadata.namespace ?? 'default', resource.metadata.name)) ?? resource;
        await this.endInterrupted(key, latest, { reason: 'RunnerFailed', message: `its runner Job ${jobName} could not be created: ${apiErrorMessage(error)}` });
      }
      return;
    }
    // Noted in status: a replica that finds this run interrupted looks there for what was recorded.
    const workDir = mkdtempSync(path.join(this.options.workDir ?? os.tmpdir(), `robustnessrun-${resource.metadata.name}-`));
    try {
      await this.markRunning(resource, run, cluster, runNumber, startTime, { recording: { replica: this.identity, path: workDir }, runnerJob: null });
    } catch (error) {
      rmSync(workDir, { recursive: true, force: true });
      throw error;
    }
    const stopper = new RunStopper();
    const entry: ActiveRun = { runNumber, clusterKey, withFaults, stopper, done: Promise.resolve() };
    this.active.set(key, entry);
    entry.done = driveRun(this.driverDeps, { key, resource, run, cluster, runNumber, startTime, workDir }, stopper)
      .catch((error: unknown) => {
        logger.error(`RobustnessRun ${key}: run ${runNumber} failed to complete`, { error: apiErrorMessage(error) });
      })
      .finally(() => {
        this.active.delete(key);
        this.options.enqueue(key);
      });
  }

  private operatorRestarted(resource: RobustnessRunResource): RunAbort {
    const previous = resource.status?.recording?.replica;
    return {
      reason: 'OperatorRestarted',
      message: `the operator${previous === undefined ? '' : ` replica ${previous}`} running it stopped during the run (its process ended without a clean stop)`,
    };
  }

  /**
   * Ends a run whose driver is gone (`abort` says which): Aborted, with the report of what it recorded when
   * the recording is on a disk this replica reaches; otherwise the status says where the recording was.
   */
  private async endInterrupted(key: string, resource: RobustnessRunResource, abort: RunAbort): Promise<void> {
    const status = resource.status ?? {};
    const runNumber = status.runNumber ?? 1;
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
      ...finishedStatus(resource, record, run),
      recording: null,
      runnerJob: null,
      conditions: runConditions(resource, [
        { type: 'Running', status: 'False', reason: 'Interrupted', message: abort.message },
        succeededCondition({ ...outcome, message }),
      ]),
    };
    if (record.report) finished.report = record.report;
    else finished.report = null; // the previous run's report is not this one's
    await this.patchStatus(resource, finished);
    await this.event(resource, 'Warning', eventReasonOf(outcome.phase), `run ${runNumber}: ${outcome.reason}: ${message}`.slice(0, 1000));
  }

  /**
   * Stops every run of this process; each heals its faults and records its result (SIGTERM, lost lease).
   * Runs in runner Pods go on: the next leader finds them.
   */
  async close(): Promise<void> {
    const runs = [...this.active.values()];
    for (const r of runs) r.stopper.stop({ reason: 'OperatorStopped', message: 'the operator stopped (SIGTERM or a lost lease) during the run' });
    await Promise.all(runs.map((r) => r.done));
  }
}

/** True when the run names members (a fault's target member, the self-test's member): they must exist. */
function namesMembers(run: RobustnessRun): boolean {
  return (run.spec.faults?.choices ?? []).some((c) => c.member !== undefined) || run.spec.selfTest?.staleReads?.member !== undefined;
}

