/**
 * The run's public types: what executeRun takes (RunOptions), reports while it goes (RunProgress) and
 * returns (RunResult). engine.ts re-exports them: importers keep reading them from there.
 */
import type { CheckReport, Verdict } from '../checker/index.ts';
import type { Clock } from '../probes/recorder.ts';
import type { EtcdClientTls, FaultEvent, History, MemberRuntime, RobustnessRun, RuntimeMember } from '../domain/index.ts';
import type { RunMetrics } from './metrics.ts';
import type { FaultRecovery, RecoverySummary } from './recovery.ts';

export interface RunProgress {
  elapsedMs: number;
  operations: number;
  intervalQps: number;
  failed: number;
  unknown: number;
  availability: number | undefined;
  verdict: Verdict;
  lagP50Ms: number;
  lagP99Ms: number;
  pending: number;
  /** Operations the live checker holds until the watch (or a response) shows a revision, and unknown writes it has not seen. */
  waitingForWatch: number;
  /** Whether the live check is on the revision-ordered path or the search took over. */
  checkMethod: 'revision' | 'search';
  watchEvents: number;
  belowMinQps: boolean;
  /** Names of the faults in place. */
  activeFaults: string[];
}

export interface RunOptions {
  run: RobustnessRun;
  clusterName: string;
  members: RuntimeMember[];
  /** Folder for the history segments (created). */
  historyDir: string;
  metrics: RunMetrics;
  /**
   * Stops the run early (Ctrl-C, a deleted RobustnessRun): the history so far is still checked. A string
   * reason given to abort() is the result's stoppedEarly (default "stopped by the user").
   */
  signal?: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
  progressIntervalMs?: number;
  /**
   * Where faults go: the member runtime (restarts, member agents). Without it a spec's faults are not
   * injected (and the result says so).
   */
  runtime?: MemberRuntime;
  agentToken?: string;
  /** Each fault event as it happens (the operator turns them into Kubernetes Events). */
  onFault?: (event: FaultEvent) => void;
  /**
   * A fault's time to writable, as soon as it is known: when the first successful write invoked after
   * the fault returns (or when the fault is verified, if that write returned first). Faults with no such
   * write by the end of the run are only in the result (faults.recovery), without writableAfterMs.
   */
  onFaultRecovery?: (recovery: FaultRecovery) => void;
  /** The first violation of each check, as the live checkers find it. */
  onViolation?: (check: string, reason: string) => void;
  /**
   * A client endpoint that follows membership changes (a Kubernetes Service, the local placement's
   * service address): the clients spread over the cluster and the watches use it instead of the
   * members' own URLs, so traffic survives a member's replacement (a two-node failover).
   */
  serviceEndpoint?: string;
  /**
   * The cluster's client TLS (its CA; a client certificate if it asks for one): every probe, watch and
   * admin client of the run uses it. Default: the runtime's (MemberRuntime.clientTls), so a caller that
   * passes no runtime (a run without faults) passes the runtime's clientTls here.
   */
  clientTls?: EtcdClientTls;
  /** Keep at most this many operations in memory for the final offline check (default 2,000,000). */
  keepOperations?: number;
  clock?: Clock;
}

export interface OperationCounts {
  ok: number;
  failed: number;
  unknown: number;
  byType: Record<string, { ok: number; failed: number; unknown: number }>;
}

export interface RunResult {
  verdict: Verdict;
  /** Why the verdict is not linearizable, in one line. */
  reason: string | undefined;
  /**
   * The live check: its verdict; lag p50/p99 over the last operations it settled and the worst p99 any
   * progress interval saw; the most operations it held for the watch at once; and whether the search took
   * over from the revision-ordered path (searchReason says from where and why).
   */
  live: {
    verdict: Verdict;
    reason: string | undefined;
    lagP50Ms: number;
    lagP99Ms: number;
    worstLagP99Ms: number;
    peakWaitingForWatch: number;
    resolved: number;
    method: 'revision' | 'search';
    searchReason?: string;
    /** Milliseconds from the start of the run to the first violation the live checks saw (absent: none). */
    firstViolationMs?: number;
  };
  /** The offline re-check of the full history (absent when it was not keep.all in memory). */
  report: CheckReport | undefined;
  history: History | undefined;
  operations: OperationCounts;
  /** liveViolations: stream-local watch violations seen while the run went (the first of each kind is logged). */
  watch: { streams: number; events: number; resumes: number; liveViolations: number };
  achievedQps: number;
  belowMinQpsIntervals: number;
  startTime: string;
  endTime: string;
  durationMs: number;
  stoppedEarly: string | undefined;
  seed: number;
  prefix: string;
  mode: 'exclusive' | 'shared';
  selfTest: string | undefined;
  faults: {
    planned: number;
    injected: number;
    failed: number;
    events: FaultEvent[];
    skipped?: string;
    /**
     * Time from each fault to the cluster being writable again (src/run/recovery.ts), for the faults whose
     * effect was verified. executeRun always sets it (optional for results built by hand).
     */
    recovery?: { summary: RecoverySummary; faults: FaultRecovery[] };
  };
  /** Every member's HashKV at a common revision after the run (absent when not checked). */
  hashKv?: HashKvComparison;
}

/**
 * The members' HashKV compared after a run. `compared` false: not every member answered (a member still
 * being replaced when the run ended), so nothing was compared, which is no evidence of divergence.
 */
export interface HashKvComparison {
  equal: boolean;
  compared: boolean;
  detail: string;
}

/** Members that answered with different data: a violation (unlike members that could not be asked). */
export function hashKvDiffers(hashKv: HashKvComparison | undefined): boolean {
  return hashKv !== undefined && hashKv.compared && !hashKv.equal;
}
