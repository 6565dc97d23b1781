/**
 * The run engine: probes drive a cluster under a RobustnessRun spec, every operation and watch response
 * is recorded (to the history files and to the live checker), metrics and progress follow, and at the
 * end the full history is re-checked offline for the report. Nothing here knows whether the members are
 * local processes or pods: the caller passes their endpoints (see MemberRuntime).
 *
 * Data flows one way: clients -> recorder -> {history file, live checker, metrics}; watch probes ->
 * {history file, live checker}; progress and the final verdict are read from the checker.
 *
 * The linearizability search, live and offline, runs in worker threads (checker-worker.ts): this thread
 * is the operator's, which must stay free to renew its Lease, reconcile and answer probes while the
 * search grinds (a two-node failover's unknown outcomes once held it for seconds).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import type { CheckReport, Verdict } from '../checker/index.ts';
import { defaultResolveWindowMs, LiveWatchChecker } from '../checker/index.ts';
import type { EtcdRequest, FaultEvent, History, HistoryMeta, Operation, RuntimeMember, WatchResponse, WatchStream } from '../domain/index.ts';
import { defaultMaxTtlMs, isErrorResponse, isWriteRequest } from '../domain/index.ts';
import { compactionRevision, FaultExecutor } from '../faults/executor.ts';
import { AgentClient } from '../faults/agent-client.ts';
import { GofailClient } from '../faults/gofail.ts';
import { planFaults } from '../faults/scheduler.ts';
import { logger } from '../log.ts';
import { HistoryFileWriter } from '../probes/history-file.ts';
import { runCompactions, runDefragmentation } from '../probes/maintenance.ts';
import { resolveProfile } from '../probes/profiles.ts';
import { RateLimiter } from '../probes/rate-limiter.ts';
import { HistoryRecorder } from '../probes/recorder.ts';
import { RecordingClient, recordingEtcdClient, type Outcome } from '../probes/recording-client.ts';
import { KeyPool, newClientMemory, runClient, seededRandom, UniqueValues, type TrafficClient, type TrafficEnvironment } from '../probes/traffic.ts';
import { WatchProbe } from '../probes/watch-probe.ts';
import { runWatchReopens } from '../probes/watch-reopen.ts';
import { checkHistoryInWorker, HistoryReadBackError, LiveCheckerWorker } from './checker-worker.ts';
import { clearPrefix, memberNamesById } from './cluster.ts';
import { RecoveryTracker, summarizeRecoveries, type FaultRecovery } from './recovery.ts';
import type { OperationCounts, RunOptions, RunResult } from './types.ts';

export type { OperationCounts, RunOptions, RunProgress, RunResult } from './types.ts';

export class ClusterUnreachableError extends Error {
  override name = 'ClusterUnreachableError';
  readonly endpoints: string[];
  constructor(endpoints: string[], cause: string) {
    super(`cannot reach etcd at ${endpoints.join(', ')}: ${cause}`);
    this.endpoints = endpoints;
  }
}

const sec = (ns: number): number => ns / 1e9;

/** The watch properties LiveWatchChecker counts while the run goes. */
const liveWatchProperties = new Set<string>(['filtered', 'ordered', 'unique', 'atomic', 'bookmarkable', 'resumable']);

/**
 * Whether the self-test can make `member` lag: its gofail API is reachable (local members), or its fault
 * agent is and we hold the agent's token (a Pod's gofail port listens on the Pod's loopback only).
 */
const canLag = (member: RuntimeMember, agentToken: string | undefined): boolean => member.failpointUrl !== undefined || (member.agentUrl !== undefined && agentToken !== undefined);

/** The self-test's lag: a 300 ms sleep before the member's raft saves entries. */
const selfTestFailpoint = { name: 'raftBeforeSave', term: 'sleep("300ms")' } as const;

/**
 * Makes `member` lag; returns the heal. Through the agent the failpoint is a lease (at most the agent's
 * maximum TTL): a run that dies without healing it leaves no member lagging for long.
 */
async function lagMember(member: RuntimeMember, agentToken: string | undefined, ttlMs: number): Promise<() => Promise<void>> {
  if (member.failpointUrl !== undefined) {
    const gofail = new GofailClient(member.failpointUrl);
    await gofail.activate(selfTestFailpoint.name, selfTestFailpoint.term);
    return () => gofail.deactivate(selfTestFailpoint.name);
  }
  if (member.agentUrl === undefined || agentToken === undefined) throw new Error(`selfTest.staleReads: member ${member.name} has neither a gofail API nor a fault agent this run may use`);
  const agent = new AgentClient(member.agentUrl, agentToken, { ca: member.agentCa });
  const fault = await agent.inject({ type: 'failpoint', ...selfTestFailpoint, ttlMs: Math.min(ttlMs, defaultMaxTtlMs) });
  return async () => {
    await agent.heal(fault.id);
  };
}

/** Picks the member whose reads the self-test makes stale: the named one, else a follower. */
async function selfTestMember(admin: Etcd3, members: RuntimeMember[], named: string | undefined, agentToken: string | undefined): Promise<RuntimeMember> {
  if (named !== undefined) {
    const found = members.find((m) => m.name === named);
    if (!found) throw new Error(`spec.selfTest.staleReads.member: no member named ${named} (members: ${members.map((m) => m.name).join(', ')})`);
    return found;
  }
  const status = await admin.maintenance.status({ deadline: Date.now() + 5000 });
  const leaderId = status.leader;
  const list = await admin.cluster.memberList({}, { deadline: Date.now() + 5000 });
  const leaderName = list.members.find((m) => m.ID === leaderId)?.name;
  const follower = members.find((m) => m.name !== leaderName && canLag(m, agentToken));
  if (!follower) throw new Error('selfTest.staleReads needs a follower with gofail failpoints, reachable directly or through its fault agent (run --local starts such members; an EtcdCluster needs image.failpoints and agent.enabled)');
  return follower;
}

class Counters {
  readonly total: OperationCounts = { ok: 0, failed: 0, unknown: 0, byType: {} };
  intervalOk = 0;
  intervalAll = 0;

  add(type: string, outcome: 'ok' | 'failed' | 'unknown'): void {
    this.total[outcome]++;
    const t = (this.total.byType[type] ??= { ok: 0, failed: 0, unknown: 0 });
    t[outcome]++;
    this.intervalAll++;
    if (outcome === 'ok') this.intervalOk++;
  }

  get operations(): number {
    return this.total.ok + this.total.failed + this.total.unknown;
  }
}

function outcomeOf(op: Operation): 'ok' | 'failed' | 'unknown' {
  if (op.return === null) return isWriteRequest(op.request) ? 'unknown' : 'failed';
  return op.response && isErrorResponse(op.response) ? 'failed' : 'ok';
}

/** Drives and checks one run; returns when the run has stopped and its history has been checked. */
export async function executeRun(options: RunOptions): Promise<RunResult> {
  const { run, members, metrics } = options;
  const { spec } = run;
  const prefix = spec.prefix ?? `/etcd-robustness/${run.metadata.name}/`;
  const endpoints = members.map((m) => m.endpoint);
  // Spread clients and watches: through the service when there is one (it outlives member replacements).
  const spreadHosts = options.serviceEndpoint === undefined ? endpoints : [options.serviceEndpoint];
  const started = new Date();
  const startedAt = performance.now();
  const etcds: Etcd3[] = [];
  const tls = options.clientTls ?? options.runtime?.clientTls;
  const client = (hosts: string[]): Etcd3 => {
    const etcd = recordingEtcdClient(hosts, { tls });
    etcds.push(etcd);
    return etcd;
  };
  const admin = client(endpoints);
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    let initialRevision: number;
    let memberNames: Map<string, string>;
    try {
      memberNames = await memberNamesById(admin, members);
      initialRevision = await clearPrefix(admin, prefix);
    } catch (error) {
      throw new ClusterUnreachableError(endpoints, (error as Error).message);
    }
    const profile = resolveProfile(spec.traffic);
    const recorder = new HistoryRecorder({ keep: false, ...(options.clock ? { clock: options.clock } : {}) });
    // Fault to writable: faults are registered as the executor puts them in place, operations as they complete.
    const recoveries = new RecoveryTracker(recorder.clock());
    const reportRecovery = (recovery: FaultRecovery): void => {
      if (recovery.writableAfterMs === undefined) return;
      metrics.faultWritable(recovery.fault, recovery.writableAfterMs / 1000);
      options.onFaultRecovery?.(recovery);
    };
    const meta: HistoryMeta = {
      kind: 'meta',
      seed: spec.seed,
      cluster: options.clusterName,
      profile: profile.name,
      startTime: started.toISOString(),
      prefix,
      mode: spec.mode,
    };
    if (spec.mode === 'exclusive') meta.initialRevision = initialRevision;
    const writer = HistoryFileWriter.open(options.historyDir);
    cleanups.push(() => {
      writer.close();
    });
    writer.writeMeta(meta);
    const keepLimit = options.keepOperations ?? 2_000_000;
    const history: History = { meta, operations: [], watches: [] };
    const keep = { all: true };
    // A write held by a paused or partitioned member can take effect as late as the fault lasts: the
    // live checker must wait that long for an observation before treating the write as unobserved.
    const resolveWindowMs = Math.max(defaultResolveWindowMs, (spec.faults?.durationMs.max ?? 0) + 5000);
    // The search runs in a worker thread (checker-worker.ts): this thread also renews the operator's
    // Lease and reconciles. Its verdict comes back as a message, and checkLive() runs then.
    const live = new LiveCheckerWorker({ mode: spec.mode, prefix, initialRevision, resolveWindowMs, watchEventsCarryLeases: true, onUpdate: () => checkLive() });
    cleanups.push(() => live.close());
    const counters = new Counters();
    const liveFigures = { worstLagP99Ms: 0, peakWaitingForWatch: 0 };
    const leases = new Set<string>();
    let maxRevision = initialRevision;
    // Mutated from callbacks: an object keeps TypeScript from narrowing the flags to their initial values.
    const flags = { stopped: false, violationReported: false, checkerFailureReported: false };
    // When the live checks first saw a violation (of any check), for the time-to-detection figure.
    const firstViolation: { atMs?: number } = {};
    const noteViolation = (): void => {
      firstViolation.atMs ??= Math.round(performance.now() - startedAt);
    };
    const isStopped = (): boolean => flags.stopped;
    const stop = new AbortController();
    let stopReason: string | undefined;
    const stopRun = (reason: string): void => {
      if (stop.signal.aborted) return;
      stopReason = reason;
      stop.abort();
    };

    const checkLive = (): void => {
      if (!flags.violationReported && live.verdict === 'violation') {
        flags.violationReported = true;
        noteViolation();
        metrics.violation('linearizability');
        logger.error('linearizability violation', { run: run.metadata.name, reason: live.violation?.reason });
        options.onViolation?.('linearizability', live.violation?.reason ?? 'not linearizable');
        if (spec.abortOnViolation) stopRun('violation found (abortOnViolation)');
      }
      if (!flags.checkerFailureReported && live.failed !== undefined) {
        flags.checkerFailureReported = true;
        logger.error('the live checker stopped: the offline check at the end still decides', { run: run.metadata.name, reason: live.failed });
      }
    };

    // Each operation's invocation is written when it is sent, so a crash of this process leaves the writes in
    // flight in the history (as unknown outcomes) even when a watch already delivered them. The live checker
    // and the counters take each operation once, when it completes.
    recorder.onInvocation((invocation) => {
      writer.writeInvoke(invocation);
    });
    recorder.onOperation((op) => {
      // The file's line is the live checker's payload too: each operation is encoded once.
      const line = writer.writeOperation(op);
      if (keep.all) {
        if (history.operations.length < keepLimit) history.operations.push(op);
        else {
          keep.all = false;
          history.operations.length = 0;
          logger.warn('history too long to keep in memory: the final offline check is skipped', { limit: keepLimit });
        }
      }
      const outcome = outcomeOf(op);
      counters.add(op.request.type, outcome);
      metrics.operation(op.request.type, outcome, op.return === null ? undefined : sec(op.return - op.call));
      if (op.response && !isErrorResponse(op.response) && op.response.revision !== undefined) maxRevision = Math.max(maxRevision, op.response.revision);
      if (op.request.type === 'leaseGrant') leases.add(op.request.id);
      live.push(op, line);
      live.advance(recorder.watermark());
      for (const recovery of recoveries.operation(op)) reportRecovery(recovery);
    });

    // Watch probes, one per member (or one over all members).
    const watchCounts = { streams: 0, events: 0, resumes: 0, liveViolations: 0 };
    let nextStream = 1;
    const streams = new Map<number, WatchStream>();
    const liveWatch = new LiveWatchChecker();
    const reportedWatchProperties = new Set<string>();
    const onStreamOpened = (stream: WatchStream): void => {
      liveWatch.open(stream.id, stream.request);
      watchCounts.streams++;
      streams.set(stream.id, stream);
      writer.openWatch(stream);
      if (keep.all) history.watches.push(stream);
    };
    const onResponse = (id: number, response: WatchResponse): void => {
      const line = writer.writeWatchResponse(id, response);
      const stream = streams.get(id);
      live.pushWatchResponse(response, stream === undefined ? undefined : { id, request: stream.request }, line);
      if (spec.checks.watch) {
        for (const violation of liveWatch.push(id, response)) {
          metrics.violation(`watch_${violation.property}`);
          noteViolation();
          watchCounts.liveViolations++;
          if (!reportedWatchProperties.has(violation.property)) {
            reportedWatchProperties.add(violation.property);
            logger.error(`watch guarantee violated: ${violation.property}`, { run: run.metadata.name, watch: violation.watch, message: violation.message });
            options.onViolation?.(`watch_${violation.property}`, violation.message);
            if (spec.abortOnViolation) stopRun(`watch ${violation.property} violated (abortOnViolation)`);
          }
        }
      }
      watchCounts.events += response.events.length;
      metrics.watchEvents(response.events.length);
      if (!keep.all) {
        // Bounded memory when the history is not keep.all (emptied in place: splice would copy what it removes).
        const kept = streams.get(id)?.responses;
        if (kept !== undefined) kept.length = 0;
      }
    };
    const startWatch = (etcd: Etcd3, watchPrefix: string, startRevision: number, member: string | undefined): WatchProbe =>
      WatchProbe.start(etcd, {
        prefix: watchPrefix,
        startRevision,
        ...(member === undefined ? {} : { member }),
        clock: recorder.clock,
        progressNotify: spec.watch.progressNotify,
        progressIntervalMs: spec.watch.progressNotify ? spec.watch.progressIntervalMs : 0,
        nextStreamId: () => nextStream++,
        onStreamOpened,
        onResponse,
      });
    const watches: WatchProbe[] = [];
    if (spec.watch.enabled) {
      const targets = spec.watch.perMember ? members.map((m) => ({ hosts: [m.endpoint], member: m.name })) : [{ hosts: spreadHosts, member: undefined }];
      for (const t of targets) watches.push(startWatch(client(t.hosts), prefix, initialRevision + 1, t.member));
    }

    // Faults: a seeded plan carried out by the executor while the traffic runs.
    const faultEvents: FaultEvent[] = [];
    const faultCounts = { planned: 0, injected: 0, failed: 0 };
    const activeFaults = new Map<number, string>();
    let faultsSkipped: string | undefined;
    let executor: FaultExecutor | undefined;
    let plan: ReturnType<typeof planFaults> = [];
    if (spec.faults && spec.faults.choices.length > 0) {
      if (!options.runtime) faultsSkipped = 'no member runtime to inject faults through';
      else {
        plan = planFaults(spec.faults, { seed: spec.seed, runDurationMs: spec.durationMs, startDelayMs: 1000 });
        faultCounts.planned = plan.length;
      }
    }

    // Self-test: make one member lag and send reads through it as serializable while recording them as
    // the linearizable reads the profile asked for. The checker must catch it.
    let selfTest: string | undefined;
    let lagging: string | undefined;
    let healSelfTest: (() => Promise<void>) | undefined;
    if (spec.selfTest?.staleReads) {
      const target = await selfTestMember(admin, members, spec.selfTest.staleReads.member, options.agentToken);
      lagging = target.name;
      if (canLag(target, options.agentToken)) {
        const heal = await lagMember(target, options.agentToken, spec.timeoutMs);
        let healed = false;
        healSelfTest = async () => {
          if (healed) return;
          healed = true;
          await heal().catch((error: unknown) => {
            logger.warn('could not remove the self-test failpoint', { member: target.name, error: (error as Error).message });
          });
        };
        cleanups.push(healSelfTest);
      }
      selfTest = `staleReads via ${target.name}`;
      logger.warn('self-test: reads through this member are sent serializable but recorded linearizable', { member: target.name });
    }
    const lieAboutReads = (request: EtcdRequest): EtcdRequest =>
      request.type === 'range' && !request.serializable && !request.revision ? { ...request, serializable: true } : request;

    // Clients: pinned to each member, and spread over all of them, sharing one rate limiter.
    const limiter = new RateLimiter({ target: spec.traffic.qps.target, burst: spec.traffic.qps.burst });
    metrics.target(spec.traffic.qps.target);
    const stoppedResult: Outcome = { kind: 'failed', error: 'run stopped' };
    const recordingClient = (hosts: string[], member: string | undefined): RecordingClient =>
      new RecordingClient(client(hosts), recorder, {
        timeoutMs: spec.traffic.requestTimeoutMs,
        memberNames,
        ...(member === undefined ? {} : { member }),
        ...(member !== undefined && member === lagging ? { sendAs: lieAboutReads } : {}),
      });
    const recordingClients: RecordingClient[] = [];
    for (const m of members) for (let i = 0; i < spec.traffic.clients.perMember; i++) recordingClients.push(recordingClient([m.endpoint], m.name));
    for (let i = 0; i < spec.traffic.clients.spread; i++) recordingClients.push(recordingClient(spreadHosts, undefined));

    const listWatches = new Set<Promise<void>>();
    const env: TrafficEnvironment = {
      prefix,
      profile,
      keys: new KeyPool(prefix, profile.keys),
      values: new UniqueValues(profile.valueSize),
      leaseTtlSeconds: Math.ceil(spec.durationMs / 1000) + 600,
      watchFrom: (key, _end, startRevision) => {
        // An informer's list-then-watch, keep.all short so streams do not pile up.
        if (flags.stopped || listWatches.size >= 4 || !spec.watch.enabled) return;
        const pending = (async () => {
          const probe = startWatch(client(spreadHosts), key, startRevision, undefined);
          await sleep(1000, undefined, { signal: stop.signal }).catch(() => undefined);
          await probe.close();
        })().catch((error: unknown) => {
          logger.warn('list-watch failed', { error: (error as Error).message });
        });
        listWatches.add(pending);
        void pending.finally(() => listWatches.delete(pending));
      },
    };
    const loops = recordingClients.map((rc, i) => {
      const random = seededRandom(spec.seed * 1009 + i);
      const trafficClient: TrafficClient = {
        random,
        memory: newClientMemory(initialRevision),
        execute: async (request) => {
          if (isStopped()) return stoppedResult;
          await limiter.acquire();
          if (isStopped()) return stoppedResult;
          return rc.execute(request);
        },
      };
      return runClient(env, trafficClient, isStopped);
    });

    if (options.runtime && plan.length > 0) {
      const triggerClient = recordingClient(spreadHosts, undefined);
      const pinned = new Map(members.map((m) => [m.name, recordingClient([m.endpoint], m.name)]));
      executor = new FaultExecutor({
        runtime: options.runtime,
        agentToken: options.agentToken,
        clock: recorder.clock,
        recoveryTimeoutMs: spec.faults?.recoveryTimeoutMs ?? 30_000,
        // Requests a fault needs go through recorded clients: the checker must see every write.
        triggers: {
          write: async (avoid) => {
            const through = avoid ? members.find((m) => !avoid.includes(m.name)) : undefined;
            const writer = (through && pinned.get(through.name)) ?? triggerClient;
            await writer.execute({ type: 'put', key: `${prefix}fault-trigger`, value: env.values.next() });
          },
          defragment: async (member) => {
            await (pinned.get(member) ?? triggerClient).execute({ type: 'defragment' });
          },
          compact: async (at) => {
            await triggerClient.execute({ type: 'compact', revision: compactionRevision(at, maxRevision) });
          },
        },
        onApplied: ({ id, fault, targets, time }) => recoveries.fault({ id, fault, targets, injectedAt: time }),
        onEvent: (event) => {
          if (event.phase === 'verified') {
            const recovery = recoveries.confirm(event.id);
            if (recovery) reportRecovery(recovery);
          } else if (event.phase === 'failed') recoveries.abandon(event.id);
          faultEvents.push(event);
          options.onFault?.(event);
          writer.writeFault(event);
          if (event.phase === 'inject') {
            faultCounts.injected++;
            activeFaults.set(event.id, event.fault);
            const planned = plan.find((p) => p.fault === event.fault);
            metrics.faultInjected(event.fault, planned?.target ?? 'unknown');
          } else if (event.phase === 'heal' || event.phase === 'failed') {
            activeFaults.delete(event.id);
            if (event.phase === 'failed') {
              faultCounts.failed++;
              metrics.faultFailed(event.fault);
            }
          }
          metrics.faultsActive(activeFaults.size);
        },
      });
    }
    cleanups.push(async () => {
      await executor?.healAll();
      if (executor) metrics.faultsPastTtl(executor.faultsPastTtl()); // the ticker has stopped: the last word
      executor?.close();
    });
    const faultRun = executor?.runPlan(plan, startedAt, stop.signal).catch((error: unknown) => {
      logger.error('fault executor failed', { error: (error as Error).message });
    });

    const maintenance: Promise<void>[] = [];
    const { compaction, defragment } = spec.traffic;
    const maintenanceAllowed = (rule: { allowShared: boolean }): boolean => spec.mode === 'exclusive' || rule.allowShared;
    if (compaction.enabled && maintenanceAllowed(compaction)) {
      maintenance.push(
        runCompactions({
          client: recordingClient(spreadHosts, undefined),
          compactKey: `${prefix}compact_rev_key`,
          values: env.values,
          intervalMs: compaction.intervalMs,
          stopped: isStopped,
          signal: stop.signal,
          onCompacted: (revision) => logger.debug('compacted', { revision }),
        }),
      );
    }
    if (defragment.enabled && maintenanceAllowed(defragment)) {
      maintenance.push(
        runDefragmentation({
          clients: members.map((m) => recordingClient([m.endpoint], m.name)),
          intervalMs: defragment.intervalMs,
          stopped: isStopped,
          signal: stop.signal,
        }),
      );
    }

    // Extra short-lived watches at past or future revisions (spec.watch.reopen), from the run's seed.
    const reopen = spec.watch.enabled ? spec.watch.reopen : undefined;
    // One client per target, shared by its reopened watches (each watch is its own gRPC Watch call).
    const reopenTargets: { etcd: Etcd3; member: string | undefined }[] =
      reopen === undefined ? [] : spec.watch.perMember ? members.map((m) => ({ etcd: client([m.endpoint]), member: m.name })) : [{ etcd: client(spreadHosts), member: undefined }];
    const reopens =
      reopen === undefined
        ? Promise.resolve(0)
        : runWatchReopens({
            spec: reopen,
            random: seededRandom(spec.seed * 7919 + 17),
            newestRevision: () => maxRevision,
            targets: reopenTargets,
            open: (t, startRevision) => startWatch(t.etcd, prefix, startRevision, t.member),
            signal: stop.signal,
            maxOpen: 64,
          }).catch((error: unknown) => {
            logger.warn('reopened watches failed', { error: (error as Error).message });
            return 0;
          });

    // Progress, QPS guard and metrics every interval.
    const intervalMs = options.progressIntervalMs ?? 1000;
    let lastTick = performance.now();
    let belowMinIntervals = 0;
    let ticks = 0;
    // A replaced member comes back under a new id: keep naming the member that answered each request.
    const refreshMemberNames = (): void => {
      memberNamesById(admin, members).then(
        (fresh) => {
          for (const [id, name] of fresh) memberNames.set(id, name);
        },
        () => undefined,
      );
    };
    const tick = (): void => {
      if (executor && ticks % 5 === 4) refreshMemberNames();
      const now = performance.now();
      const seconds = (now - lastTick) / 1000;
      lastTick = now;
      const qps = seconds > 0 ? counters.intervalAll / seconds : 0;
      const availability = counters.intervalAll > 0 ? counters.intervalOk / counters.intervalAll : undefined;
      // The first interval includes start-up; judge the rate from the second on.
      const belowMin = ++ticks > 1 && !flags.stopped && spec.traffic.qps.min > 0 && qps < spec.traffic.qps.min;
      if (belowMin) belowMinIntervals++;
      counters.intervalAll = 0;
      counters.intervalOk = 0;
      const stats = live.stats();
      metrics.interval(qps, availability, belowMin);
      if (executor) metrics.faultsPastTtl(executor.faultsPastTtl());
      metrics.checker(stats.lagP50Ms, stats.lagP99Ms, stats.pendingOperations, stats.waitingForWatch);
      liveFigures.worstLagP99Ms = Math.max(liveFigures.worstLagP99Ms, stats.lagP99Ms);
      liveFigures.peakWaitingForWatch = Math.max(liveFigures.peakWaitingForWatch, stats.waitingForWatch);
      metrics.verdict(live.verdict);
      options.onProgress?.({
        elapsedMs: now - startedAt,
        operations: counters.operations,
        intervalQps: qps,
        failed: counters.total.failed,
        unknown: counters.total.unknown,
        availability,
        verdict: live.verdict,
        lagP50Ms: stats.lagP50Ms,
        lagP99Ms: stats.lagP99Ms,
        pending: stats.pendingOperations,
        waitingForWatch: stats.waitingForWatch,
        checkMethod: stats.method,
        watchEvents: watchCounts.events,
        belowMinQps: belowMin,
        activeFaults: [...activeFaults.values()],
      });
    };
    const ticker = setInterval(tick, intervalMs);
    cleanups.push(() => {
      clearInterval(ticker);
    });

    metrics.active(true);
    // The caller may say why it stopped the run (the operator: its target deleted, the operator stopping).
    const onAbort = (): void => stopRun(typeof options.signal?.reason === 'string' ? options.signal.reason : 'stopped by the user');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    await sleep(spec.durationMs, undefined, { signal: stop.signal }).catch(() => undefined);
    options.signal?.removeEventListener('abort', onAbort);
    // Stop: no new requests; in-flight ones end by their deadline.
    flags.stopped = true;
    stop.abort();
    limiter.close();
    const phase = (name: string): void => {
      logger.debug(`run ${run.metadata.name}: ${name}`, { elapsedMs: Math.round(performance.now() - startedAt) });
    };
    phase('stopping traffic');
    await Promise.all([...loops, ...maintenance]);
    await faultRun;
    phase('traffic stopped');
    // Heal the self-test's failpoint before waiting on the cluster for anything else.
    if (healSelfTest) await healSelfTest();
    phase('waiting for watches');
    await Promise.all(listWatches);
    await reopens;
    metrics.active(false);
    const trafficMs = performance.now() - startedAt;

    // Let the watches catch up with the last write before closing them (a progress notification or an
    // event at or past it), so the reliable/bookmarkable checks see the whole run.
    const catchUpDeadline = Date.now() + Math.max(5000, 5 * spec.watch.progressIntervalMs);
    while (watches.some((w) => w.lastRevision < maxRevision) && Date.now() < catchUpDeadline) await sleep(50);
    let hashKv: { equal: boolean; detail: string } | undefined;
    if (executor) {
      // Faults are healed; the members must come back and (unless spec.checks.hashKV is false) agree on their data.
      await executor.waitRecovery(spec.faults?.recoveryTimeoutMs ?? 30_000);
      if (spec.checks.hashKV) {
        hashKv = await executor.hashKvCheck();
        if (!hashKv.equal) {
          metrics.violation('hash_kv');
          logger.error('members disagree on their data (HashKV)', { detail: hashKv.detail });
        }
      }
      executor.close();
    }
    phase('closing watches');
    for (const w of watches) {
      await w.close();
      watchCounts.resumes += w.resumes;
    }
    const liveVerdict = await live.finish();
    tick(); // after finish(): the last progress shows the final live state
    checkLive();
    const liveStats = live.stats();
    await live.close(); // its memory is free before the offline check starts
    writer.close();

    // Clean up the run's keys and leases (not recorded: the history has ended).
    clearInterval(ticker);
    phase('cleaning up');
    await clearPrefix(admin, prefix).catch((error: unknown) => logger.warn('could not delete the run prefix', { prefix, error: (error as Error).message }));
    for (const id of leases) await admin.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + 2000 }).catch(() => undefined);

    // The offline re-check: the same engine with evidence paths, plus the watch checks.
    let report: CheckReport | undefined;
    if (keep.all) {
      const remaining = Math.max(10_000, spec.timeoutMs - (performance.now() - startedAt));
      phase('checking the full history offline');
      // In a worker thread too, on the history files just closed: the same history as `history` (the writer
      // got every line the history did), read back by the thread instead of copied to it.
      report = await checkHistoryInWorker({ dir: options.historyDir }, { timeoutMs: remaining }).catch((error: unknown) => {
        if (!(error instanceof HistoryReadBackError)) throw error;
        logger.warn('could not read the history back for the offline check: checking the one in memory', { error: error.message });
        return checkHistoryInWorker({ history }, { timeoutMs: remaining });
      });
      phase('checked');
      if (!spec.checks.watch) report = { ...report, watch: { checked: 0, violations: [] } };
      // The stream-local properties were counted live; the offline check adds the history-based ones.
      for (const v of report.watch.violations) if (!liveWatchProperties.has(v.property)) metrics.violation(`watch_${v.property}`);
      const stale = report.linearizability.staleReadViolations?.length ?? 0;
      if (stale > 0) metrics.violation('stale_read', stale);
      if (report.linearizability.verdict === 'violation' && !flags.violationReported) metrics.violation('linearizability');
    }
    if (keep.all) history.faults = faultEvents;
    const verdict = hashKv && !hashKv.equal ? 'violation' : finalVerdict(liveVerdict, report, spec.checks);
    metrics.verdict(verdict);
    metrics.finished(verdict);
    const faultRecoveryList = recoveries.results();
    const ended = new Date();
    return {
      verdict,
      reason: hashKv && !hashKv.equal ? `members' HashKV differ: ${hashKv.detail}` : reasonFor(report, live.violation?.reason ?? live.inconclusiveReason),
      live: {
        verdict: liveVerdict,
        reason: live.violation?.reason ?? live.inconclusiveReason,
        lagP50Ms: liveStats.lagP50Ms,
        lagP99Ms: liveStats.lagP99Ms,
        worstLagP99Ms: Math.max(liveFigures.worstLagP99Ms, liveStats.lagP99Ms),
        peakWaitingForWatch: liveFigures.peakWaitingForWatch,
        resolved: liveStats.resolved,
        method: liveStats.method,
        ...(liveStats.searchReason === undefined ? {} : { searchReason: liveStats.searchReason }),
        ...(firstViolation.atMs === undefined ? {} : { firstViolationMs: firstViolation.atMs }),
      },
      report,
      history: keep.all ? history : undefined,
      operations: counters.total,
      watch: watchCounts,
      achievedQps: counters.operations / (trafficMs / 1000),
      belowMinQpsIntervals: belowMinIntervals,
      startTime: started.toISOString(),
      endTime: ended.toISOString(),
      durationMs: ended.getTime() - started.getTime(),
      stoppedEarly: stopReason,
      seed: spec.seed,
      prefix,
      mode: spec.mode,
      selfTest,
      faults: {
        ...faultCounts,
        events: faultEvents,
        ...(faultsSkipped === undefined ? {} : { skipped: faultsSkipped }),
        recovery: { summary: summarizeRecoveries(faultRecoveryList), faults: faultRecoveryList },
      },
      ...(hashKv === undefined ? {} : { hashKv }),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.warn('cleanup failed', { error: (error as Error).message });
      }
    }
    for (const etcd of etcds) etcd.close();
  }
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
