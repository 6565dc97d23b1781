/**
 * The operator process: a probe server (/metrics, /healthz, /readyz) from the start, leader election on
 * a coordination.k8s.io Lease, and, only while leading, informers that enqueue keys and two controllers
 * (EtcdCluster, RobustnessRun) that reconcile them. Losing the lease stops the controllers (runs heal
 * their faults) before anything else can act; close() does the same and releases the lease.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { KubeConfig, V1Job } from '@kubernetes/client-node';
import type { EtcdCluster, MemberPlacement, RobustnessRunResource } from '../domain/index.ts';
import { etcdClusterPlural, robustnessGroup, robustnessRunPlural, robustnessVersion } from '../domain/index.ts';
import { logger } from '../log.ts';
import { Registry } from '../run/index.ts';
import { EtcdClusterReconciler } from './etcdcluster/reconciler.ts';
import {
  CachingReviewer,
  Controller,
  ControllerMetrics,
  EventRecorder,
  Informer,
  keyOf,
  KubeReviewer,
  metadataChanged,
  LeaderElector,
  ProbeServer,
  type KubeObject,
  type Reviewer,
  type ServingCertificate,
} from './kit/index.ts';
import type { ReportStore } from './report-store/index.ts';
import { gateAttributes, gatesHandler } from './gates/index.ts';
import { CustomResources } from './kube-api.ts';
import { RobustnessRunReconciler } from './robustnessrun/reconciler.ts';
import { RunnerJobs, runnerLabelKeys, type RunnerPodOptions } from './robustnessrun/runner-jobs.ts';

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  placement: MemberPlacement<EtcdCluster>;
  reports: ReportStore;
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  /** This replica's name (the Lease holder identity and the Events' reportingInstance). */
  identity: string;
  /** Absent: no leader election (a single replica). */
  leaderElection?: { namespace: string; name: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  host: string;
  metricsPort: number;
  healthPort: number;
  /**
   * Secure serving of /metrics and the gates: HTTPS with `tls`, every request authenticated with a
   * TokenReview and authorized with a SubjectAccessReview (by `reviewer`; default: the API server of
   * kubeConfig, answers cached for a minute). Absent: plain HTTP without authentication, which only a
   * loopback `host` should serve (the operator command refuses anything else).
   */
  secureMetrics?: { tls: ServingCertificate; reviewer?: Reviewer };
  /** Called when leadership is lost (the operator command exits, as controller-runtime does). */
  onLostLeadership?: () => void;
  /** Requeue period of a steady EtcdCluster (default 5 s). */
  clusterResyncMs?: number;
  workDir?: string;
  /** Leaves each finished run's folder, history included, in workDir (RobustnessRunReconcilerOptions.keepRunFolders). */
  keepRunFolders?: boolean;
  /** Each run in a runner Pod of its own (a Job in this namespace); absent: runs execute in this process. */
  runners?: RunnerPodOptions;
}

/** The controllers and informers that run while this replica leads. */
class LeadingControllers {
  readonly clusters: Controller;
  readonly runs: Controller;
  readonly runReconciler: RobustnessRunReconciler;
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly clusterReconciler: EtcdClusterReconciler;

  /** `term`: this replica's leader-election term (the witness refuses writes from older terms). */
  constructor(options: OperatorOptions, registry: Registry, metrics: ControllerMetrics, term: number) {
    const events = new EventRecorder({ kubeConfig: options.kubeConfig, controller: `${robustnessGroup}/operator`, instance: options.identity });
    // Runner Jobs wake their run (a runner that ended without reporting ends the run), and their cache
    // answers the reconciler's reads of a running Job (one a watch has not brought yet is read from the API).
    let runners: RunnerJobs | undefined;
    if (options.runners) {
      const { namespace } = options.runners;
      const jobs = new Informer<KubeObject>({
        kubeConfig: options.kubeConfig,
        path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
        labelSelector: runnerLabelKeys.run,
        onEvent: (_type, job) => {
          const labels = job.metadata?.labels ?? {};
          const run = labels[runnerLabelKeys.run];
          const runNamespace = labels[runnerLabelKeys.runNamespace];
          if (run !== undefined && runNamespace !== undefined) this.runs.enqueue(keyOf({ metadata: { namespace: runNamespace, name: run } }));
        },
      });
      this.informers.push(jobs);
      runners = new RunnerJobs(options.kubeConfig, options.runners, (name) => jobs.get(namespace, name) as V1Job | undefined);
    }
    this.runReconciler = new RobustnessRunReconciler({
      kubeConfig: options.kubeConfig,
      placement: options.placement,
      events,
      reports: options.reports,
      registry,
      enqueue: (key) => this.runs.enqueue(key),
      identity: options.identity,
      ...(runners === undefined ? {} : { runners }),
      ...(options.workDir === undefined ? {} : { workDir: options.workDir }),
      ...(options.keepRunFolders === undefined ? {} : { keepRunFolders: options.keepRunFolders }),
    });
    const clusterReconciler = new EtcdClusterReconciler({
      kubeConfig: options.kubeConfig,
      placement: options.placement,
      events,
      repairsPaused: this.runReconciler.faultsActiveOn,
      stopRuns: this.runReconciler.stopRunsOn,
      resyncMs: options.clusterResyncMs ?? 5000,
      identity: () => ({ identity: options.identity, term }),
      registry,
    });
    this.clusterReconciler = clusterReconciler;
    this.clusters = new Controller({ name: 'etcdcluster', reconcile: clusterReconciler.reconcile, concurrency: 2, metrics });
    this.runs = new Controller({ name: 'robustnessrun', reconcile: this.runReconciler.reconcile, concurrency: 4, metrics });

    const paths = (plural: string): string[] =>
      options.namespaces.length === 0
        ? [`/apis/${robustnessGroup}/${robustnessVersion}/${plural}`]
        : options.namespaces.map((ns) => `/apis/${robustnessGroup}/${robustnessVersion}/namespaces/${ns}/${plural}`);
    for (const path of paths(etcdClusterPlural)) {
      // Not on its own status writes (etcd's revision in it moves with every client write): spec, metadata,
      // member Pods and the resync wake a cluster.
      this.informers.push(new Informer<KubeObject>({ kubeConfig: options.kubeConfig, path, onEvent: (_type, object) => this.clusters.enqueue(keyOf(object)), shouldNotify: metadataChanged }));
    }
    for (const path of paths(robustnessRunPlural)) {
      this.informers.push(new Informer<KubeObject>({ kubeConfig: options.kubeConfig, path, onEvent: (_type, object) => this.runs.enqueue(keyOf(object)) }));
    }
    // Member Pods (kubernetes runtime) wake their cluster: a Pod that fails or turns Ready changes the plan.
    const podPaths = options.namespaces.length === 0 ? ['/api/v1/pods'] : options.namespaces.map((ns) => `/api/v1/namespaces/${ns}/pods`);
    for (const path of podPaths) {
      this.informers.push(
        new Informer<KubeObject>({
          kubeConfig: options.kubeConfig,
          path,
          labelSelector: 'etcd.robustness.io/cluster',
          onEvent: (_type, pod) => {
            const cluster = pod.metadata?.labels?.['etcd.robustness.io/cluster'];
            if (cluster !== undefined) this.clusters.enqueue(keyOf({ metadata: { namespace: pod.metadata?.namespace ?? 'default', name: cluster } }));
          },
        }),
      );
    }
  }

  get synced(): boolean {
    return this.informers.every((i) => i.hasSynced);
  }

  async start(): Promise<void> {
    this.clusters.start();
    this.runs.start();
    await Promise.all(this.informers.map((i) => i.start()));
  }

  async stop(): Promise<void> {
    for (const i of this.informers) i.stop();
    // Runs first: each heals its faults and records its result while the cluster controller still runs.
    await this.runReconciler.close();
    await this.runs.stop();
    await this.clusters.stop();
    await this.clusterReconciler.close();
  }
}

/**
 * Warns when the event loop was blocked for over a second: everything here shares it (Lease renewals,
 * reconciles, runs and their live checkers), and a long stall costs the Lease. Returns the stopper.
 */
function watchEventLoopStalls(): () => void {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  const timer = setInterval(() => {
    const maxMs = delay.max / 1e6;
    if (maxMs > 1000) logger.warn('the event loop was blocked', { maxMs: Math.round(maxMs) });
    delay.reset();
  }, 5000);
  timer.unref();
  return () => {
    clearInterval(timer);
    delay.disable();
  };
}

export class Operator {
  readonly registry: Registry;
  readonly metricsUrl: string;
  readonly healthUrl: string;
  private readonly options: OperatorOptions;
  private readonly probes: ProbeServer;
  private readonly elector: LeaderElector | undefined;
  private readonly metrics: ControllerMetrics;
  private leading: LeadingControllers | undefined;
  private leadingStopped: Promise<void> = Promise.resolve();
  private electorDone: Promise<void> = Promise.resolve();
  private closed = false;
  /** Without leader election this replica leads until close(). */
  private readonly selfLead = new AbortController();
  private readonly stallWatch: () => void;

  private constructor(options: OperatorOptions, registry: Registry, probes: ProbeServer, metrics: ControllerMetrics) {
    this.options = options;
    this.stallWatch = watchEventLoopStalls();
    this.registry = registry;
    this.probes = probes;
    this.metrics = metrics;
    this.metricsUrl = probes.metricsUrl;
    this.healthUrl = probes.healthUrl;
    const le = options.leaderElection;
    if (le) {
      this.elector = new LeaderElector({
        kubeConfig: options.kubeConfig,
        namespace: le.namespace,
        name: le.name,
        identity: options.identity,
        metrics,
        ...(le.leaseDurationMs === undefined ? {} : { leaseDurationMs: le.leaseDurationMs }),
        ...(le.renewDeadlineMs === undefined ? {} : { renewDeadlineMs: le.renewDeadlineMs }),
        ...(le.retryPeriodMs === undefined ? {} : { retryPeriodMs: le.retryPeriodMs }),
      });
    }
  }

  static async start(options: OperatorOptions): Promise<Operator> {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    const clusters = new CustomResources<EtcdCluster>(options.kubeConfig, etcdClusterPlural);
    const runs = new CustomResources<RobustnessRunResource>(options.kubeConfig, robustnessRunPlural);
    const self: { operator?: Operator } = {};
    const probes = await ProbeServer.start({
      host: options.host,
      metricsPort: options.metricsPort,
      healthPort: options.healthPort,
      registry,
      // A replica waiting for the lease is ready (it is up and campaigning); a leader once its caches synced.
      readiness: { 'informers-synced': () => self.operator?.leading?.synced ?? true },
      // Any replica answers: the gates read the objects from the API server, not from the leader's state.
      gates: gatesHandler({ cluster: (ns, name) => clusters.get(ns, name), run: (ns, name) => runs.get(ns, name) }),
      gateAttributes,
      ...(options.secureMetrics === undefined
        ? {}
        : { secure: { tls: options.secureMetrics.tls, reviewer: options.secureMetrics.reviewer ?? new CachingReviewer(new KubeReviewer(options.kubeConfig)) } }),
    });
    const operator = new Operator(options, registry, probes, metrics);
    self.operator = operator;
    operator.begin();
    return operator;
  }

  /** This replica runs the controllers now. */
  get isLeader(): boolean {
    return this.leading !== undefined;
  }

  private begin(): void {
    if (!this.elector) {
      void this.lead(this.selfLead.signal);
      return;
    }
    this.electorDone = this.elector.run({
      onStartedLeading: (signal) => this.lead(signal),
      onNewLeader: (identity) => logger.info('leader election: the leader is now', { identity }),
    });
  }

  private async lead(signal: AbortSignal): Promise<void> {
    logger.info('leading: starting the controllers', { identity: this.options.identity });
    const leading = new LeadingControllers(this.options, this.registry, this.metrics, this.elector?.term ?? 0);
    this.leading = leading;
    let release!: () => void;
    this.leadingStopped = new Promise<void>((resolve) => (release = resolve));
    try {
      const aborted = signal.aborted ? Promise.resolve() : new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      // The informers sync only once the API server answers: a stop (SIGTERM, a lost lease) must not wait for
      // that, or an operator whose API server is gone never exits. stop() then rejects the pending start.
      const started = leading.start().catch((error: unknown) => {
        if (!signal.aborted) throw error;
      });
      await Promise.race([started, aborted]);
      await aborted;
    } finally {
      logger.info('no longer leading: stopping the controllers (runs heal their faults)', { identity: this.options.identity });
      await leading.stop();
      this.leading = undefined;
      release();
      if (!this.closed) this.options.onLostLeadership?.();
    }
  }

  /** Stops the controllers (healing faults), releases the lease, stops local members and the probe server. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.elector) {
      await this.elector.close();
      await this.electorDone;
    } else {
      this.selfLead.abort();
    }
    await this.leadingStopped;
    await this.options.placement.close();
    await this.probes.close();
    this.stallWatch();
  }
}
