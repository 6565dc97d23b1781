/**
 * The RobustnessRun spec: what a run drives, for how long and what it checks. The same YAML a user will
 * `kubectl apply` (group etcd.robustness.io, version v1alpha1) is what `etcd-robustness run --local FILE`
 * reads. One place for these types; src/run/manifest.ts validates a manifest into them and fills defaults.
 */
import type { FaultsSpec } from './faults.ts';
import type { ClusterMode } from './history.ts';
import type { RunnerPodSpec, ScheduleKind } from './run-resource.ts';

export const robustnessGroup = 'etcd.robustness.io';
export const robustnessVersion = 'v1alpha1';
export const robustnessApiVersion = `${robustnessGroup}/${robustnessVersion}`;

/** The request kinds a traffic profile mixes; each has a generator in src/probes/traffic.ts. */
export const etcdOperationKinds = [
  'get',
  'staleGet',
  'list',
  'keysOnlyList',
  'staleList',
  'put',
  'delete',
  'multiOpTxn',
  'compareAndSet',
  'putWithLease',
  'leaseRevoke',
] as const;
export type EtcdOperationKind = (typeof etcdOperationKinds)[number];

export const kubernetesOperationKinds = ['create', 'update', 'delete', 'get', 'list', 'listWatch'] as const;
export type KubernetesOperationKind = (typeof kubernetesOperationKinds)[number];

export type OperationKind = EtcdOperationKind | KubernetesOperationKind;

export const profileNames = ['etcd', 'kubernetes'] as const;
export type ProfileName = (typeof profileNames)[number];

/** A traffic profile: pure data (the weights of each operation kind and the key space). */
export interface TrafficProfile {
  name: ProfileName;
  /** Relative weights; kinds with weight 0 or absent are never drawn. */
  weights: Partial<Record<OperationKind, number>>;
  /** Size of the rotating key pool (etcd) or the number of objects per resource (kubernetes). */
  keys: number;
  /** Bytes per written value (values are unique; padded to this size). */
  valueSize: number;
  /** Kubernetes profile: resources and namespaces the object keys are spread over. */
  resources: string[];
  namespaces: string[];
  /** Kubernetes profile: objects per page in paged lists. */
  pageSize: number;
}

export interface TrafficSpec {
  profile: ProfileName;
  /** Overrides of the profile's weights (merged over them). */
  weights: Partial<Record<OperationKind, number>>;
  keys: number;
  valueSize: number;
  qps: {
    /** Requests per second over all clients (one shared limiter). */
    target: number;
    /** Tokens the limiter may accumulate. */
    burst: number;
    /** Below this achieved rate the run reports that the cluster could not be driven (0 disables). */
    min: number;
  };
  clients: {
    /** Clients pinned to each member (each talks to that member only). */
    perMember: number;
    /** Clients spread over all members. */
    spread: number;
  };
  /** Deadline of every recorded request, in milliseconds. */
  requestTimeoutMs: number;
  /** Compaction traffic (as kube-apiserver does it): off unless enabled; needs exclusive mode unless `allowShared`. */
  compaction: { enabled: boolean; intervalMs: number; allowShared: boolean };
  /** Defragmentation of one member at a time: same rules as compaction. */
  defragment: { enabled: boolean; intervalMs: number; allowShared: boolean };
}

export interface WatchSpec {
  enabled: boolean;
  /** Ask etcd for progress notifications (and request one every interval). */
  progressNotify: boolean;
  progressIntervalMs: number;
  /** One watch per member (true) or a single watch over all members. */
  perMember: boolean;
  /** Extra short-lived watches opened at past or future revisions; absent: none. */
  reopen?: WatchReopenSpec;
}

/**
 * Every interval, one extra watch (on each member when perMember, else over all members) from the newest
 * revision the run has seen plus an offset drawn from the run's seed in [min, max], as etcd's robustness
 * traffic does (RevisionOffsetRange): negative offsets watch the past (below a compaction, etcd cancels the
 * watch and the probe resumes exactly at the compaction revision), positive ones the future.
 */
export interface WatchReopenSpec {
  intervalMs: number;
  /** How long each extra watch stays open. */
  lifetimeMs: number;
  revisionOffset: { min: number; max: number };
}

export interface ChecksSpec {
  linearizability: boolean;
  watch: boolean;
  /** At the end of a run with faults, every member's HashKV must agree (a run without faults has no HashKV check). */
  hashKV: boolean;
}

/** When a RobustnessRun runs (the operator honours it; `run --local` runs once whatever it says). */
export interface ScheduleSpec {
  kind: ScheduleKind;
  /** kind cron: a five-field cron expression (minute hour day-of-month month day-of-week), UTC. */
  cron?: string;
  /** kind continuous: the traffic and check window of each run, in milliseconds. */
  windowMs?: number;
  /** Past runs kept in status.history. */
  historyLimit: number;
  /** No new runs are started while true; a run in progress finishes. */
  suspend: boolean;
}

/**
 * Deliberate breakage that proves the pipeline catches a real violation: reads are sent to a lagging
 * member as serializable but recorded as the linearizable reads the profile asked for.
 */
export interface SelfTestSpec {
  staleReads?: { member?: string };
}

export interface RobustnessRunSpec {
  clusterRef?: { name: string; namespace?: string };
  schedule: ScheduleSpec;
  /** Milliseconds of traffic. */
  durationMs: number;
  /** Give up (inconclusive) if the run, including the final check, takes longer than this. */
  timeoutMs: number;
  /** exclusive when the run owns the cluster; shared (the default against a cluster it did not create). */
  mode: ClusterMode;
  /** Key prefix of the run; default `/etcd-robustness/<name>/`. Everything under it is deleted at the end. */
  prefix?: string;
  seed: number;
  traffic: TrafficSpec;
  watch: WatchSpec;
  checks: ChecksSpec;
  abortOnViolation: boolean;
  selfTest?: SelfTestSpec;
  /** Faults injected during the run (src/faults/scheduler.ts plans them from the seed); absent: none. */
  faults?: FaultsSpec;
  /** The runner Pod's resources and placement (runs in runner Pods only). */
  runner?: RunnerPodSpec;
}

export interface RobustnessRun {
  apiVersion: typeof robustnessApiVersion;
  kind: 'RobustnessRun';
  metadata: { name: string; namespace?: string };
  spec: RobustnessRunSpec;
}
