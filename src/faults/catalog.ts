/**
 * The fault catalog: for every name in `faultNames`, what kind of fault it is, what it needs (a
 * gofail-enabled etcd, a fault agent beside the member), which members it may hit, whether it lasts,
 * and its parameters. Pure data plus the parameter validation the manifest and the executor share.
 */
import { faultNames } from '../domain/faults.ts';
import type { FaultName, TargetRule } from '../domain/faults.ts';

export type FaultKind = 'process' | 'network' | 'disk' | 'cluster' | 'failpoint';

/** When the code path a failpoint sits on runs: what the executor must cause (or wait for) to trigger it. */
export type FailpointTrigger = 'write' | 'defragment' | 'compact' | 'snapshot';

export interface FaultParam {
  type: 'number' | 'string';
  default?: number | string;
  /** Numbers: inclusive bounds. */
  min?: number;
  max?: number;
  /** Numbers: whole numbers only. */
  integer?: boolean;
  /** Strings: the values allowed. */
  values?: readonly string[];
  description: string;
}

export interface FaultDefinition {
  name: FaultName;
  description: string;
  kind: FaultKind;
  /** Needs an etcd built with gofail and started with GOFAIL_HTTP. */
  needsGofail: boolean;
  /** Needs the fault agent beside the member (process signals, peer proxies, disk, failpoints). */
  needsAgent: boolean;
  defaultTarget: TargetRule;
  allowedTargets: readonly TargetRule[];
  /** No duration, nothing to heal: kill, leader transfer, member replace, defragment, compact, rolling restart, panics. */
  instantaneous: boolean;
  params: Readonly<Record<string, FaultParam>>;
  failpoint?: {
    /** The gofail variable name in etcd's server sources, e.g. raftBeforeSave. */
    name: string;
    /** The gofail term that activates it. */
    term: string;
    trigger: FailpointTrigger;
  };
}

const oneMember: readonly TargetRule[] = ['random', 'leader', 'follower', 'member'];
const someMembers: readonly TargetRule[] = ['random', 'leader', 'follower', 'member', 'minority', 'majority'];
const anyMembers: readonly TargetRule[] = [...someMembers, 'all'];

/**
 * Where compactions a fault sends land. trailing (the default) stays behind the writes in flight; latest
 * may compact a tombstone that is the store's newest revision, the case of etcd issue 17780.
 */
const compactRevision: FaultParam = {
  type: 'string',
  default: 'trailing',
  values: ['trailing', 'latest'],
  description: 'the revision compactions are at: trailing, the newest revision seen minus 10; latest, the newest revision seen',
};

function failpointPanic(
  name: FaultName,
  failpoint: string,
  trigger: FailpointTrigger,
  where: string,
): FaultDefinition {
  return {
    name,
    description: `The member panics ${where} (gofail failpoint ${failpoint}), then is restarted.`,
    kind: 'failpoint',
    needsGofail: true,
    needsAgent: true,
    defaultTarget: 'random',
    allowedTargets: oneMember,
    instantaneous: true,
    params: trigger === 'compact' ? { revision: compactRevision } : {},
    failpoint: { name: failpoint, term: 'panic', trigger },
  };
}

const definitions: Record<FaultName, FaultDefinition> = {
  kill: {
    name: 'kill',
    description: 'SIGKILL the member process; it is restarted on its data directory right away.',
    kind: 'process',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'random',
    allowedTargets: anyMembers,
    instantaneous: true,
    params: {},
  },
  crash: {
    name: 'crash',
    description:
      'SIGKILL the member and keep it down for the fault duration; it is restarted on its data when the fault heals ' +
      "(the agent's hold file beside the data dir tells the supervisor to wait).",
    kind: 'process',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'random',
    // A minority down tests the cluster serving on; a majority down, losing and regaining quorum (in a
    // two-member pair one member is already a majority: random, leader, follower or member do it).
    allowedTargets: someMembers,
    instantaneous: false,
    params: {},
  },
  pause: {
    name: 'pause',
    description: 'SIGSTOP the member process for the fault duration, then SIGCONT.',
    kind: 'process',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'random',
    allowedTargets: someMembers,
    instantaneous: false,
    params: {},
  },
  blackhole: {
    name: 'blackhole',
    description: "Drop all of the member's peer traffic, both ways, for the fault duration (clients still reach it).",
    kind: 'network',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'random',
    allowedTargets: someMembers,
    instantaneous: false,
    params: {},
  },
  delay: {
    name: 'delay',
    description: "Delay the member's peer traffic, both ways, for the fault duration.",
    kind: 'network',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'random',
    allowedTargets: anyMembers,
    instantaneous: false,
    params: {
      // etcd's robustness tests: 75 ms +- 50 ms.
      delayMs: { type: 'number', default: 75, min: 0, max: 10_000, integer: true, description: 'added latency per chunk, ms' },
      jitterMs: { type: 'number', default: 50, min: 0, max: 10_000, integer: true, description: 'random variation of the delay (+-), ms' },
    },
  },
  drop: {
    name: 'drop',
    description: "Drop a share of the member's peer traffic, both ways, for the fault duration.",
    kind: 'network',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'random',
    allowedTargets: anyMembers,
    instantaneous: false,
    params: {
      percent: { type: 'number', default: 50, min: 1, max: 100, description: 'share of chunks dropped, percent' },
    },
  },
  partition: {
    name: 'partition',
    description: 'Cut peer links between the targets and the other members for the fault duration.',
    kind: 'network',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'minority',
    allowedTargets: ['random', 'leader', 'follower', 'member', 'minority'],
    instantaneous: false,
    params: {
      mode: {
        type: 'string',
        default: 'split',
        values: ['isolate', 'split', 'asymmetric'],
        description:
          'split: the targets and the others form two sides, links within a side stay; isolate: every link of every target is cut, ' +
          'also between targets; asymmetric: only traffic from the targets to the others is dropped',
      },
    },
  },
  diskPressure: {
    name: 'diskPressure',
    description: "Fill the member's data volume with a file of the given size for the fault duration.",
    kind: 'disk',
    needsGofail: false,
    needsAgent: true,
    defaultTarget: 'random',
    allowedTargets: oneMember,
    instantaneous: false,
    params: {
      bytes: { type: 'number', default: 1024 ** 3, min: 1024 ** 2, max: 1024 ** 4, integer: true, description: 'size of the filler file, bytes' },
    },
  },
  memberReplace: {
    name: 'memberReplace',
    description: 'Remove the member from the cluster, wipe its data and add it back as a new member.',
    kind: 'cluster',
    needsGofail: false,
    needsAgent: false,
    defaultTarget: 'random',
    allowedTargets: oneMember,
    instantaneous: true,
    params: {},
  },
  leaderTransfer: {
    name: 'leaderTransfer',
    description: 'Move leadership to the target member (MoveLeader).',
    kind: 'cluster',
    needsGofail: false,
    needsAgent: false,
    defaultTarget: 'follower',
    allowedTargets: ['follower', 'member'],
    instantaneous: true,
    params: {},
  },
  defragment: {
    name: 'defragment',
    description: "Defragment the member's backend (it stalls its clients while it runs).",
    kind: 'cluster',
    needsGofail: false,
    needsAgent: false,
    defaultTarget: 'random',
    allowedTargets: anyMembers,
    instantaneous: true,
    params: {},
  },
  compact: {
    name: 'compact',
    description: 'Compact the key-value store near its current revision (see the revision parameter), through the target member.',
    kind: 'cluster',
    needsGofail: false,
    needsAgent: false,
    defaultTarget: 'random',
    allowedTargets: oneMember,
    instantaneous: true,
    params: { revision: compactRevision },
  },
  rollingRestart: {
    name: 'rollingRestart',
    description: 'Restart every member, one at a time, waiting for the cluster to be healthy between them.',
    kind: 'cluster',
    needsGofail: false,
    needsAgent: false,
    defaultTarget: 'all',
    allowedTargets: ['all'],
    instantaneous: true,
    params: {},
  },
  raftBeforeSavePanic: failpointPanic('raftBeforeSavePanic', 'raftBeforeSave', 'write', 'before raft saves entries to its WAL'),
  raftAfterSavePanic: failpointPanic('raftAfterSavePanic', 'raftAfterSave', 'write', 'after raft saves entries to its WAL'),
  backendBeforeCommitPanic: failpointPanic('backendBeforeCommitPanic', 'beforeCommit', 'write', 'before the backend commits a batch'),
  backendAfterCommitPanic: failpointPanic('backendAfterCommitPanic', 'afterCommit', 'write', 'after the backend commits a batch'),
  defragBeforeCopyPanic: failpointPanic('defragBeforeCopyPanic', 'defragBeforeCopy', 'defragment', 'during a defragmentation, before copying the database'),
  defragBeforeRenamePanic: failpointPanic('defragBeforeRenamePanic', 'defragBeforeRename', 'defragment', 'during a defragmentation, before renaming the new database'),
  compactBeforeCommitBatchPanic: failpointPanic('compactBeforeCommitBatchPanic', 'compactBeforeCommitBatch', 'compact', 'during a compaction, before committing a batch'),
  compactAfterCommitBatchPanic: failpointPanic('compactAfterCommitBatchPanic', 'compactAfterCommitBatch', 'compact', 'during a compaction, after committing a batch'),
  // Native from etcd v3.5.14; v3.5.13 needs the patched build (test/bin/etcd-release/patches/). etcd issue 17780.
  compactBeforeSetFinishedCompactPanic: failpointPanic(
    'compactBeforeSetFinishedCompactPanic',
    'compactBeforeSetFinishedCompact',
    'compact',
    'during a compaction, after its last full batch, before it records the compaction as finished',
  ),
  raftBeforeApplySnapPanic: failpointPanic('raftBeforeApplySnapPanic', 'raftBeforeApplySnap', 'snapshot', 'before applying a raft snapshot'),
};

/** Every definition, in `faultNames` order. */
export const faultCatalog: readonly FaultDefinition[] = faultNames.map((name) => definitions[name]);

export function isFaultName(name: string): name is FaultName {
  return (faultNames as readonly string[]).includes(name);
}

export function faultDefinition(name: FaultName): FaultDefinition {
  return definitions[name];
}

/** The choices `faults: {}` means (weight 1 each, the fault's default target, default parameters). */
export const defaultFaultChoices: readonly FaultName[] = [
  'kill',
  'pause',
  'blackhole',
  'delay',
  'partition',
  'leaderTransfer',
  'raftBeforeSavePanic',
  'raftAfterSavePanic',
];

export type FaultParams = Record<string, number | string>;

/** What a value must be, for messages: "an integer between 0 and 10000", "one of isolate, split". */
export function describeParam(param: FaultParam): string {
  if (param.type === 'string') return param.values === undefined ? 'a string' : `one of ${param.values.join(', ')}`;
  const noun = param.integer === true ? 'an integer' : 'a number';
  if (param.min !== undefined && param.max !== undefined) return `${noun} between ${param.min} and ${param.max}`;
  if (param.min !== undefined) return `${noun} >= ${param.min}`;
  if (param.max !== undefined) return `${noun} <= ${param.max}`;
  return noun;
}

/**
 * Checks one parameter of a fault. `unknown` for a name the fault does not take (the message lists the
 * ones it does), `expected` for a value of the wrong type or out of range (the message says what it must be).
 */
export function checkFaultParam(
  name: FaultName,
  field: string,
  value: unknown,
): { value: number | string } | { unknown: string } | { expected: string } {
  const params = definitions[name].params;
  const param = Object.hasOwn(params, field) ? params[field] : undefined;
  if (param === undefined) {
    const allowed = Object.keys(params);
    return { unknown: allowed.length === 0 ? `${name} takes no parameters` : `unknown parameter of ${name} (allowed: ${allowed.join(', ')})` };
  }
  if (param.type === 'string') {
    const ok = typeof value === 'string' && (param.values === undefined || param.values.includes(value));
    return ok ? { value } : { expected: describeParam(param) };
  }
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (param.integer !== true || Number.isInteger(value)) &&
    (param.min === undefined || value >= param.min) &&
    (param.max === undefined || value <= param.max);
  return ok ? { value } : { expected: describeParam(param) };
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `a value of type ${typeof value}`;
}

/**
 * Validates a fault's parameters and fills the defaults. The first problem is returned with the parameter
 * it is about (`field`); the manifest checks parameters one by one with checkFaultParam to report them all.
 */
export function validateFaultParams(name: FaultName, params: Readonly<Record<string, unknown>>): { params: FaultParams } | { problem: string; field: string } {
  const result: FaultParams = {};
  for (const [field, value] of Object.entries(params)) {
    const checked = checkFaultParam(name, field, value);
    if ('unknown' in checked) return { problem: checked.unknown, field };
    if ('expected' in checked) return { problem: `must be ${checked.expected}, got ${describeValue(value)}`, field };
    result[field] = checked.value;
  }
  for (const [field, param] of Object.entries(definitions[name].params)) {
    if (!(field in result) && param.default !== undefined) result[field] = param.default;
  }
  return { params: result };
}
