/**
 * Faults: the catalog's names, how a run asks for them (spec), the fault agent's HTTP API messages,
 * and the `kind: "fault"` lines that put injections and heals on a history's timeline. One place for
 * these types: the scheduler, the executor, the agent, the manifest and the reports share them.
 */

/** Every fault in the catalog (src/faults/catalog.ts gives each its parameters, target rule and check). */
export const faultNames = [
  // process faults (through the member's agent)
  'kill',
  'crash',
  'pause',
  // peer network faults (through the agents' peer proxies)
  'blackhole',
  'delay',
  'drop',
  'partition',
  // disk
  'diskPressure',
  // cluster-level faults (through the member runtime and the etcd API)
  'memberReplace',
  'leaderTransfer',
  'defragment',
  'compact',
  'rollingRestart',
  // gofail failpoints (need a gofail-enabled etcd): the member panics at that point, then restarts
  'raftBeforeSavePanic',
  'raftAfterSavePanic',
  'backendBeforeCommitPanic',
  'backendAfterCommitPanic',
  'defragBeforeCopyPanic',
  'defragBeforeRenamePanic',
  'compactBeforeCommitBatchPanic',
  'compactAfterCommitBatchPanic',
  'compactBeforeSetFinishedCompactPanic',
  'raftBeforeApplySnapPanic',
] as const;
export type FaultName = (typeof faultNames)[number];

/** Which members a fault hits. `member` names one (the choice's `member` field). */
export const targetRules = ['random', 'leader', 'follower', 'member', 'minority', 'majority', 'all'] as const;
export type TargetRule = (typeof targetRules)[number];

/** One fault a run may use, with its weight in the draw. */
export interface FaultChoice {
  fault: FaultName;
  weight: number;
  target: TargetRule;
  /** With target `member`. */
  member?: string;
  /** Fault parameters (e.g. delayMs, jitterMs, percent, mode, bytes); the catalog validates them. Durations come from FaultsSpec.durationMs. */
  params: Record<string, number | string>;
}

export interface FaultsSpec {
  choices: FaultChoice[];
  /** Faults active at once (a round draws between 1 and this many). */
  maxConcurrentFaults: number;
  /** Pause between rounds, drawn in [min, max] ms. */
  intervalMs: { min: number; max: number };
  /** How long a fault with a duration stays before it is healed, drawn in [min, max] ms. */
  durationMs: { min: number; max: number };
  /** Wait this long at most for the cluster to be healthy again after a round. */
  recoveryTimeoutMs: number;
  /** A fault that fails to apply leaves the run's verdict standing (default false: the run is Inconclusive, FaultsFailed). */
  tolerateFailures?: boolean;
}

/** A planned injection: what the seeded scheduler produces (deterministic for a seed and spec). */
export interface PlannedFault {
  round: number;
  /** Offset from the start of the run, ms. */
  atMs: number;
  fault: FaultName;
  target: TargetRule;
  member?: string;
  params: Record<string, number | string>;
  /** How long it stays (ms) before heal; 0 for instantaneous faults (kill, leader transfer...). */
  durationMs: number;
  /** A number in [0, 1) the executor uses to pick among the members the target rule allows. */
  pick: number;
}

/** A fault's life on the history timeline. */
export type FaultPhase = 'inject' | 'verified' | 'heal' | 'failed';

export interface FaultEvent {
  kind: 'fault';
  /** Same id for every line of one injection. */
  id: number;
  /** Nanoseconds on the history's clock. */
  time: number;
  phase: FaultPhase;
  fault: FaultName;
  /** Member names the fault hit (resolved from the target rule). */
  targets: string[];
  params?: Record<string, number | string>;
  /** What was checked (verified), why it failed, how it healed. */
  detail?: string;
}

// ---- The fault agent's HTTP API (JSON; `Authorization: Bearer <token>` on every request) ----

/** A rule on the peer traffic from one member to another, applied by the proxies on that link. */
export interface LinkRule {
  from: string;
  to: string;
  action: 'blackhole' | 'delay' | 'drop';
  delayMs?: number;
  jitterMs?: number;
  /** 0..100: share of chunks dropped. */
  dropPercent?: number;
}

/** The longest TTL a fault agent grants by default (its --max-ttl): a lease outlives no crash by more. */
export const defaultMaxTtlMs = 10 * 60_000;

export type AgentFaultRequest =
  | { type: 'kill' }
  /** SIGKILL etcd and keep it down until the TTL (or a heal): a hold file tells its supervisor not to restart it. */
  | { type: 'crash'; ttlMs: number }
  | { type: 'pause'; ttlMs: number }
  | { type: 'failpoint'; name: string; term: string; ttlMs: number }
  | {
      type: 'network';
      rules: LinkRule[];
      ttlMs: number;
      /** Member ids (hex, as etcd's peer headers carry them) to names, so the proxy can tell which peer a connection comes from. */
      peers?: Record<string, string>;
    }
  | { type: 'diskPressure'; bytes: number; ttlMs: number };

export interface AgentFault {
  id: string;
  type: AgentFaultRequest['type'];
  request: AgentFaultRequest;
  /** ISO time the agent heals it by itself. */
  expiresAt: string;
  /** ISO time it was healed (at its TTL, on request, or on the agent's shutdown); absent while active. */
  healedAt?: string;
  /** What went wrong while healing, if anything (the fault is dropped either way). */
  healError?: string;
}

export interface AgentStatus {
  member: string;
  /** The etcd process the agent acts on, if it found one. */
  pid: number | undefined;
  faults: AgentFault[];
}

export interface AgentError {
  error: string;
}
