/**
 * The RobustnessRun custom resource as the API server stores it: the wire form of the spec (durations
 * as strings, everything optional; src/run/manifest.ts validates it into RobustnessRunSpec and fills
 * defaults), the schedule, and the status the operator writes. The CRD schema in crds/ is generated from
 * src/api (run-schema.ts, cluster-schema.ts), which the compiler checks against these types.
 */
import type { ClusterMode, Verdict } from './history.ts';
import type { Condition, NamespacedRef, ObjectMeta } from './kube.ts';
import type { ResourceRequirements } from './cluster-spec.ts';
import type { OperationKind, ProfileName, robustnessApiVersion } from './run-spec.ts';

export const robustnessRunKind = 'RobustnessRun';
export const robustnessRunPlural = 'robustnessruns';

export const scheduleKinds = ['once', 'cron', 'continuous'] as const;
export type ScheduleKind = (typeof scheduleKinds)[number];

export interface ScheduleInput {
  /** once (default): one run. cron: a run at each time of `cron`. continuous: runs back to back, each `window` long. */
  kind?: ScheduleKind;
  /** A five-field cron expression (minute hour day-of-month month day-of-week), UTC; required for cron. */
  cron?: string;
  /** continuous: the traffic and check window of each run (a duration); required for continuous. */
  window?: string;
  /** Past runs kept in status.history (default 10). */
  historyLimit?: number;
  /** Suspends scheduling of new runs; a run in progress finishes. */
  suspend?: boolean;
}

export interface QpsInput {
  target?: number;
  burst?: number;
  min?: number;
}

export interface PeriodicInput {
  enabled?: boolean;
  interval?: string;
  allowShared?: boolean;
}

export interface TrafficInput {
  profile?: ProfileName;
  weights?: Partial<Record<OperationKind, number>>;
  keys?: number;
  valueSize?: number;
  qps?: QpsInput;
  clients?: { perMember?: number; spread?: number };
  requestTimeout?: string;
  compaction?: PeriodicInput;
  defragment?: PeriodicInput;
}

export interface FaultChoiceInput {
  fault: string;
  weight?: number;
  target?: string;
  member?: string;
  params?: Record<string, number | string>;
}

export interface FaultsInput {
  enabled?: boolean;
  allowShared?: boolean;
  maxConcurrentFaults?: number;
  interval?: { min?: string; max?: string };
  duration?: { min?: string; max?: string };
  recoveryTimeout?: string;
  /** Failed faults do not make the run Inconclusive (default false). */
  tolerateFailures?: boolean;
  /** A fault name, or a fault with weight, target and parameters. */
  choices?: (string | FaultChoiceInput)[];
}

export interface RobustnessRunSpecInput {
  clusterRef?: NamespacedRef;
  schedule?: ScheduleInput;
  duration?: string;
  timeout?: string;
  mode?: ClusterMode;
  prefix?: string;
  seed?: number;
  traffic?: TrafficInput;
  watch?: {
    enabled?: boolean;
    progressNotify?: boolean;
    progressInterval?: string;
    perMember?: boolean;
    reopen?: { interval?: string; lifetime?: string; revisionOffset?: { min?: number; max?: number } };
  };
  checks?: { linearizability?: boolean; watch?: boolean; hashKV?: boolean };
  abortOnViolation?: boolean;
  selfTest?: { staleReads?: { member?: string } };
  faults?: FaultsInput;
  runner?: RunnerPodSpec;
}

export const tolerationOperators = ['Exists', 'Equal'] as const;
export const taintEffects = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;

/** A Pod toleration, as the Pod API takes it. */
export interface Toleration {
  key?: string;
  operator?: (typeof tolerationOperators)[number];
  value?: string;
  effect?: (typeof taintEffects)[number];
  tolerationSeconds?: number;
}

/**
 * Where and with what a run's runner Pod runs (an operator with runner Pods, the kubernetes runtime):
 * passed to the Pod as given. Runs executed in the operator's process or by `run --local` ignore it.
 */
export interface RunnerPodSpec {
  resources?: ResourceRequirements;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
}

export const runPhases = ['Pending', 'Running', 'Passed', 'Failed', 'Inconclusive', 'Aborted'] as const;
export type RunPhase = (typeof runPhases)[number];

/** A violation as status shows it: bounded, with an evidence summary (the full evidence is in the report). */
export interface ViolationSummary {
  check: string;
  summary: string;
}

/** Where a run's report is stored. */
export interface StoredReportRef {
  /** configMap: a ConfigMap per run in the run's namespace; volume: a path on the operator's report volume. */
  kind: 'configMap' | 'volume';
  name: string;
  /** Bytes stored (compressed). */
  size: number;
  /** True when the history did not fit and only the verdict and HTML report were stored. */
  truncated?: boolean;
}

/** One finished run of a RobustnessRun (status.lastRun and status.history). */
export interface RunRecord {
  /** 1 for the first run of this RobustnessRun. */
  number: number;
  phase: RunPhase;
  verdict?: Verdict;
  reason?: string;
  startTime: string;
  endTime?: string;
  seed?: number;
  report?: StoredReportRef;
  /** Time from each fault to the cluster being writable again (the first write invoked after it that succeeded). */
  faultToWritable?: { faults: number; recovered: number; medianMs?: number; maxMs?: number };
}

export interface RobustnessRunStatus {
  phase?: RunPhase;
  observedGeneration?: number;
  /** The run in progress or last finished (1-based). */
  runNumber?: number;
  startTime?: string;
  endTime?: string;
  /** Scheduled runs: when the next one starts. */
  nextRunTime?: string;
  seed?: number;
  verdict?: Verdict;
  reason?: string;
  operations?: { ok: number; failed: number; unknown: number };
  achievedQps?: number;
  availability?: number;
  faults?: { injected: number; failed: number; active: number };
  /** At most 10, the first ones found. */
  violations?: ViolationSummary[];
  report?: StoredReportRef;
  /**
   * While a run goes: where its history is recorded (a folder on the operator replica running it). A
   * replica that finds the run interrupted checks and stores what was recorded there, if it can reach it.
   */
  recording?: { replica: string; path: string };
  /** While a run goes in a runner Pod: the Job that runs it (the operator watches it). */
  runnerJob?: string;
  lastRun?: RunRecord;
  /** Past runs, newest first, at most spec.schedule.historyLimit. */
  history?: RunRecord[];
  conditions?: Condition[];
}

export interface RobustnessRunResource {
  apiVersion: typeof robustnessApiVersion;
  kind: typeof robustnessRunKind;
  metadata: ObjectMeta;
  spec: RobustnessRunSpecInput;
  status?: RobustnessRunStatus;
}

export const runConditionTypes = ['Ready', 'Running', 'Succeeded'] as const;
export type RunConditionType = (typeof runConditionTypes)[number];
