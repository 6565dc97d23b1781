/**
 * Offline checking of a whole history: linearizability (linearize.ts), then what needs the
 * linearization: stale reads against the states they could have read, and watch streams against the
 * committed revisions it implies (watch.ts).
 */
import type { History, Operation, RangeResponse, WatchEvent } from '../domain/index.ts';
import { closeWindow } from './close-window.ts';
import { LinearizationEngine } from './linearize.ts';
import { InconclusiveError, type EngineOptions } from './linearize-options.ts';
import { roleOf } from './roles.ts';
import { step } from './model.ts';
import { initialState, type ModelOptions, type ModelState } from './model-state.ts';
import { patchHistory, unknownDeleter } from './patch.ts';
import { RevisionOrder } from './revision.ts';
import { deliveriesOf } from './watch-deliveries.ts';
import type { CheckReport, LinearizabilityResult, SearchWindow, Verdict, ViolationEvidence } from './result.ts';
import { appliedByChoice, staleReadProblems } from './stale-reads.ts';
import { checkWatches, type CommittedRevision } from './watch.ts';

export interface CheckOptions {
  /** Give up (inconclusive) after this long; default 60 s. */
  timeoutMs?: number;
  /** Unknown-outcome operations may take effect up to this long after their call; default 5 min. */
  unknownHorizonMs?: number;
  /** Bound on candidate configurations; default 20,000 (the search may visit 4x that per step). */
  maxFrontier?: number;
  /** Search even when the history has revisions (the revision-ordered path is then skipped): for comparisons. */
  searchOnly?: boolean;
}

export const defaultUnknownHorizonMs = 5 * 60 * 1000;
export const defaultMaxFrontier = 20_000;

/** Why a history without operations is inconclusive, not linearizable. */
export const noOperations = 'the history has no operations';

/** Which fields the history ever shows: the model tracks only those (see model.ts). */
export function observedFields(history: History): { trackRevision: boolean; trackVersion: boolean } {
  let trackRevision = history.watches.length > 0 || history.meta?.initialRevision !== undefined;
  let trackVersion = history.watches.some((w) => w.responses.some((r) => r.events.some((e) => e.version !== undefined)));
  const seeKvs = (kvs: RangeResponse['kvs']): void => {
    for (const kv of kvs) {
      if (kv.modRevision !== undefined || kv.createRevision !== undefined) trackRevision = true;
      if (kv.version !== undefined) trackVersion = true;
    }
  };
  for (const op of history.operations) {
    const { request, response } = op;
    if (request.type === 'compact' || (request.type === 'range' && request.revision)) trackRevision = true;
    if (request.type === 'txn') {
      for (const c of request.compare) {
        if (c.target === 'mod' || c.target === 'create') trackRevision = true;
        if (c.target === 'version') trackVersion = true;
      }
    }
    if (!response) continue;
    if ((response as { revision?: number }).revision !== undefined) trackRevision = true;
    if ('kvs' in response) seeKvs(response.kvs);
    if ('results' in response) for (const r of response.results ?? []) if (r !== undefined && 'kvs' in r) seeKvs(r.kvs);
    if (trackRevision && trackVersion) break;
  }
  return { trackRevision, trackVersion };
}

export function modelOptionsFor(history: History): ModelOptions & { initialRevision: number } {
  return {
    mode: history.meta?.mode ?? 'exclusive',
    prefix: history.meta?.prefix ?? '',
    initialRevision: history.meta?.initialRevision ?? 1,
    ...observedFields(history),
  };
}

/**
 * Re-applies linearized operations one at a time, collecting committed revisions (for watches) and the
 * state after each (for stale reads). The offline check replays the whole linearization at once; the
 * streaming check (stream.ts) replays each settled prefix as the search hands it over.
 */
export class Replayer {
  state: ModelState;
  readonly committed: CommittedRevision[] = [];
  private readonly opts: ModelOptions;
  private readonly keepCommitted: boolean;

  constructor(opts: ModelOptions & { initialRevision: number }, keepCommitted = true) {
    this.opts = opts;
    this.keepCommitted = keepCommitted;
    this.state = initialState(opts, opts.initialRevision);
  }

  /** Applies the next linearized operation; returns the state after it. */
  apply(op: Operation, index: number): ModelState {
    const events: WatchEvent[] = [];
    const next = step(this.state, op.request, op.response, this.opts, undefined, events);
    if (next === null) throw new Error(`internal error: the linearization does not replay at operation ${index}`);
    if (this.keepCommitted && events.length > 0 && next.revision > this.state.revision) {
      // An unknown outcome still unknown after patching: applied here by the search's choice alone.
      this.committed.push(appliedByChoice(op) ? { revision: next.revision, events, uncertain: true } : { revision: next.revision, events });
    }
    return (this.state = next);
  }
}


/** The single key an operation touches, or undefined when it touches several (or leases). */
export function singleKey(op: Operation): string | undefined {
  const { request } = op;
  switch (request.type) {
    case 'range':
    case 'delete':
      return request.end === undefined ? request.key : undefined;
    case 'put':
      return request.lease === undefined ? request.key : undefined;
    case 'txn': {
      const keys = new Set<string>();
      for (const c of request.compare) keys.add(c.key);
      for (const o of [...request.success, ...request.failure]) {
        if (o.type !== 'put' && o.end !== undefined) return undefined;
        if (o.type === 'put' && o.lease !== undefined) return undefined;
        keys.add(o.key);
      }
      return keys.size === 1 ? [...keys][0] : undefined;
    }
    case 'leaseGrant':
    case 'leaseRevoke':
    case 'compact':
    case 'defragment':
      return undefined;
  }
}

/**
 * Operation indices per key, when keys are independent: no revisions tracked (they are global) and
 * every operation that takes part touches one key. Undefined otherwise, or when there is one key.
 */
export function partitionByKey(history: History, trackRevision: boolean): number[][] | undefined {
  if (trackRevision || history.watches.length > 0) return undefined;
  const parts = new Map<string, number[]>();
  for (let i = 0; i < history.operations.length; i++) {
    const op = history.operations[i]!;
    const role = roleOf(op);
    if (role === 'skip') continue;
    if (role === 'stale') return undefined; // validated against one global linearization
    const key = singleKey(op);
    if (key === undefined) return undefined;
    const list = parts.get(key);
    if (list) list.push(i);
    else parts.set(key, [i]);
  }
  return parts.size > 1 ? [...parts.values()] : undefined;
}

function runEngine(history: History, indices: Iterable<number>, engineOptions: EngineOptions): LinearizationEngine {
  const engine = new LinearizationEngine(engineOptions);
  for (const index of indices) {
    const op = history.operations[index]!;
    engine.add(index, op, roleOf(op));
  }
  try {
    engine.advance(Infinity);
  } catch (error) {
    if (!(error instanceof InconclusiveError)) throw error;
    engine.inconclusive = error.message;
  }
  return engine;
}

/** What checkLinearizability hands the watch check: the committed revisions, and the patched operations. */
interface ForWatches {
  committed?: CommittedRevision[];
  patchedOperations?: Operation[];
}

/** What one way of ordering the history found: a linearization, or a violation, or why neither. */
interface Ordered {
  method: 'revision' | 'search';
  searchWindow?: SearchWindow;
  searchWindows?: SearchWindow[];
  linearization?: number[];
  violation?: ViolationEvidence;
  inconclusive?: string;
}

function searchWhole(history: History, engineOptions: EngineOptions, window?: SearchWindow): Ordered {
  const engine = runEngine(history, history.operations.keys(), engineOptions);
  const how = window ? { method: 'search' as const, searchWindow: window } : { method: 'search' as const };
  if (engine.violation) return { ...how, violation: engine.violation };
  if (engine.inconclusive !== undefined) return { ...how, inconclusive: engine.inconclusive };
  return { ...how, linearization: engine.linearization() ?? [] };
}

/** Which operation's arrival the revision order expects first: acknowledged ones by return, unknown ones by call (as a recorder pushes them). */
function arrivalOrder(history: History, indices: Iterable<number>): number[] {
  const arrivals: { time: number; index: number }[] = [];
  for (const index of indices) {
    const op = history.operations[index]!;
    const role = roleOf(op);
    if (role === 'linearize') arrivals.push({ time: op.return!, index });
    else if (role === 'optional') arrivals.push({ time: op.call, index });
  }
  arrivals.sort((a, b) => a.time - b.time || a.index - b.index);
  return arrivals.map((a) => a.index);
}

/**
 * Why `linearization` is not a linearization of the history, or undefined if it is: every acknowledged
 * operation once, unknown-outcome ones at most once and nothing else, each stepping from the state before
 * it (from the initial state), and real time (no operation sits after one called after it returned). An
 * independent check of a linearization pieced together from several parts (closed search windows, or a
 * window after the revision order), which no single search verified whole.
 */
export function witnessProblem(history: History, linearization: readonly number[], opts: ModelOptions & { initialRevision: number }): string | undefined {
  const seen = new Set<number>();
  let state = initialState(opts, opts.initialRevision);
  let maxCall = -Infinity;
  let maxCallIndex = -1;
  for (const index of linearization) {
    const op = history.operations[index];
    if (op === undefined || seen.has(index)) return `operation ${index} is not in the history or is placed twice`;
    seen.add(index);
    const role = roleOf(op);
    if (role !== 'linearize' && role !== 'optional') return `operation ${index} cannot be linearized (${role})`;
    if (op.return !== null && op.return < maxCall) return `operation ${index} returned before operation ${maxCallIndex}, placed before it, was called`;
    if (op.call > maxCall) {
      maxCall = op.call;
      maxCallIndex = index;
    }
    const next = step(state, op.request, op.response, opts);
    if (next === null) return `operation ${index} does not step from the state before it`;
    state = next;
  }
  for (let index = 0; index < history.operations.length; index++) {
    if (!seen.has(index) && roleOf(history.operations[index]!) === 'linearize') return `operation ${index} is not placed`;
  }
  return undefined;
}

/** The latest call among the operations linearized so far, and which (real time across a closed window). */
function latestCall(history: History, linearization: readonly number[]): { call: number; index: number } {
  let latest = { call: -Infinity, index: -1 };
  for (const index of linearization) {
    const call = history.operations[index]!.call;
    if (call > latest.call) latest = { call, index };
  }
  return latest;
}

/** The search over a window from its pinned state, after the `prefix` the revision order linearized before it. */
function searchWindowed(history: History, window: readonly number[], state: ModelState, prefix: readonly number[], searchWindow: SearchWindow, engineOptions: EngineOptions): Ordered {
  const engine = runEngine(history, window, { ...engineOptions, initialState: state });
  if (engine.violation) return { method: 'search', searchWindow, violation: { ...engine.violation, prefix: [...prefix, ...engine.violation.prefix] } };
  if (engine.inconclusive !== undefined) return { method: 'search', searchWindow, inconclusive: engine.inconclusive };
  return { method: 'search', searchWindow, linearization: [...prefix, ...(engine.linearization() ?? [])] };
}

/**
 * The revision-ordered path (revision.ts): the order the revisions dictate, verified. Where it cannot be
 * verified, the search decides over the window from the last state the order pins (exclusive mode), or
 * over the whole history. A window closes early where the state is pinned again (closeWindow), and the
 * order resumes from there; that may happen several times. A linearization pieced together so is checked
 * whole (witnessProblem). Anything else after a window closed -- a later window the search finds not
 * linearizable or cannot decide, a failure that pins no state, a piece that does not fit -- goes back to
 * the search of the first window to the end of the history, as without closing: only a linearizable
 * verdict ever rests on a closed window.
 */
function checkByRevisions(history: History, opts: ModelOptions & { initialRevision: number }, engineOptions: EngineOptions): Ordered {
  const deliveries = deliveriesOf(history.watches);
  const linearization: number[] = [];
  const windows: SearchWindow[] = [];
  /** The first window, searched to the end if closing it leads nowhere. */
  let first: { window: number[]; state: ModelState; prefix: number; searchWindow: SearchWindow } | undefined;
  const toTheEnd = (): Ordered => searchWindowed(history, first!.window, first!.state, linearization.slice(0, first!.prefix), first!.searchWindow, engineOptions);
  /** A result pieced together over closed windows: checked whole, else the first window to the end. */
  const pieced = (ordered: Ordered): Ordered => {
    if (ordered.linearization === undefined || witnessProblem(history, ordered.linearization, opts) !== undefined) return toTheEnd();
    const largest = windows.reduce((a, b) => (b.operations > a.operations ? b : a));
    return { method: 'search', searchWindow: largest, searchWindows: windows, linearization: ordered.linearization };
  };
  let order = new RevisionOrder({ ...opts, eager: false, deliveries });
  let pending = arrivalOrder(history, history.operations.keys());
  /** The revision the current order started from (after a closed window), for the next window's report. */
  let resumedAt: number | null = null;
  for (;;) {
    const retired = new Set<number>();
    order.onRetired = (index) => {
      linearization.push(index);
      retired.add(index);
    };
    for (const index of pending) {
      const op = history.operations[index]!;
      if (roleOf(op) === 'linearize') order.add(index, op);
      else order.addUnknown(index, op);
      if (order.failure) break;
    }
    order.finish();
    const failure = order.failure;
    if (!failure) {
      order.retire();
      return windows.length === 0 ? { method: 'revision', linearization } : pieced({ method: 'search', linearization });
    }
    if (!failure.pinned) {
      if (first !== undefined) return toTheEnd();
      return searchWhole(history, engineOptions, { reason: failure.reason, fromRevision: null, operations: history.operations.length });
    }
    order.retireBeforeWindow();
    const inWindow = new Set(order.windowOperations().map((w) => w.index));
    // Operations the revision pass never reached (it stops at the failure) belong to the window too.
    for (const index of pending) if (!retired.has(index)) inWindow.add(index);
    const window = [...inWindow].sort((a, b) => a - b);
    const fromRevision = failure.fromRevision ?? resumedAt;
    const searchWindow: SearchWindow = { reason: failure.reason, fromRevision, operations: window.length };
    first ??= { window, state: failure.state, prefix: linearization.length, searchWindow };
    const found = closeWindow(window, (index) => history.operations[index]!, failure.state, engineOptions);
    const closed = found === 'search' ? undefined : found;
    if (closed === undefined) {
      const searched = searchWindowed(history, window, failure.state, linearization, searchWindow, engineOptions);
      if (windows.length === 0) {
        // As before closing existed, but a linearization is checked whole: real time against what the order placed before the window.
        if (searched.linearization !== undefined && witnessProblem(history, searched.linearization, opts) !== undefined) {
          return searchWhole(history, engineOptions, { ...searchWindow, fromRevision: null, operations: history.operations.length });
        }
        return searched;
      }
      windows.push(searchWindow);
      return pieced(searched);
    }
    windows.push({ ...searchWindow, operations: closed.operations, toRevision: closed.toRevision });
    linearization.push(...closed.path);
    order = new RevisionOrder({ ...opts, eager: false, deliveries, initialRevision: closed.toRevision, initialState: closed.state, afterCall: latestCall(history, linearization) });
    pending = arrivalOrder(history, closed.rest);
    resumedAt = closed.toRevision;
  }
}

export function checkLinearizability(original: History, options: CheckOptions = {}): LinearizabilityResult & ForWatches {
  const opts = modelOptionsFor(original);
  const engineOptions: EngineOptions = {
    ...opts,
    trackPaths: true,
    unknownHorizon: (options.unknownHorizonMs ?? defaultUnknownHorizonMs) * 1e6,
    maxFrontier: options.maxFrontier ?? defaultMaxFrontier,
    deadline: Date.now() + (options.timeoutMs ?? 60_000),
  };
  const operations = original.operations.length;
  // Nothing was checked: a run that recorded nothing (or a truncated or wrong file) must not pass.
  if (operations === 0) return { verdict: 'inconclusive', operations, inconclusive: noOperations };
  // Resolve unknown outcomes that reads and watches observed (patch.ts); indices stay the same.
  const patch = patchHistory(original);
  const history: History = { ...original, operations: patch.operations };
  const patched = patch.observed + patch.neverApplied > 0 ? { patched: { observed: patch.observed, neverApplied: patch.neverApplied } } : {};
  const partitions = partitionByKey(history, opts.trackRevision);
  if (partitions) {
    // Each key on its own; the first violation (in history order) is the evidence.
    let inconclusive: string | undefined;
    const violations = [];
    for (const part of partitions) {
      const engine = runEngine(history, part, engineOptions);
      if (engine.violation) violations.push(engine.violation);
      else if (engine.inconclusive !== undefined) inconclusive ??= engine.inconclusive;
    }
    if (violations.length > 0) {
      violations.sort((a, b) => history.operations[a.unplaceable[0]!]!.call - history.operations[b.unplaceable[0]!]!.call);
      return { verdict: 'violation', operations, ...patched, partitions: partitions.length, violation: violations[0]! };
    }
    if (inconclusive !== undefined) return { verdict: 'inconclusive', operations, ...patched, partitions: partitions.length, inconclusive };
    return { verdict: 'linearizable', operations, ...patched, partitions: partitions.length };
  }
  const ordered = opts.trackRevision && options.searchOnly !== true ? checkByRevisions(history, opts, engineOptions) : searchWhole(history, engineOptions);
  const how = {
    method: ordered.method,
    ...(ordered.searchWindow ? { searchWindow: ordered.searchWindow } : {}),
    ...(ordered.searchWindows ? { searchWindows: ordered.searchWindows } : {}),
  };
  if (ordered.violation) return { verdict: 'violation', operations, ...patched, ...how, violation: ordered.violation };
  if (ordered.inconclusive !== undefined) return { verdict: 'inconclusive', operations, ...patched, ...how, inconclusive: ordered.inconclusive };
  const linearization = ordered.linearization ?? [];
  const hasStale = history.operations.some((op) => roleOf(op) === 'stale');
  const replayer = new Replayer(opts);
  const states = hasStale ? [replayer.state] : [];
  for (const index of linearization) {
    const state = replayer.apply(history.operations[index]!, index);
    if (hasStale) states.push(state);
  }
  const committed = replayer.committed;
  const stale = hasStale ? staleReadProblems(history, linearization, states, opts) : { problems: [], uncertain: undefined };
  const staleReadViolations = stale.problems;
  if (staleReadViolations.length === 0 && stale.uncertain !== undefined) return { verdict: 'inconclusive', operations, ...patched, ...how, inconclusive: stale.uncertain };
  const result: LinearizabilityResult & ForWatches = {
    verdict: staleReadViolations.length > 0 ? 'violation' : 'linearizable',
    operations,
    ...patched,
    ...how,
    linearization,
    committed,
    patchedOperations: patch.operations,
  };
  if (staleReadViolations.length > 0) result.staleReadViolations = staleReadViolations;
  return result;
}

function worst(a: Verdict, b: Verdict): Verdict {
  if (a === 'violation' || b === 'violation') return 'violation';
  if (a === 'inconclusive' || b === 'inconclusive') return 'inconclusive';
  return 'linearizable';
}

/** Checks a whole history: linearizability, stale reads and watch guarantees. */
/**
 * The highest revision the history may have compacted to: every compaction that did not fail for sure
 * (an unknown outcome may have applied). Watches may then leave prevKV out at or below it.
 */
function highestCompaction(history: History): number | undefined {
  let highest: number | undefined;
  for (const op of history.operations) highest = compactionOf(op, highest);
  return highest;
}

/** The highest compaction so far, with this operation (see highestCompaction). */
export function compactionOf(op: Operation, highest: number | undefined): number | undefined {
  if (op.request.type !== 'compact' || (op.response !== undefined && 'error' in op.response)) return highest;
  return Math.max(highest ?? 0, op.request.revision);
}

export function checkHistory(history: History, options: CheckOptions = {}): CheckReport {
  const started = performance.now();
  const { committed, patchedOperations, ...linearizability } = checkLinearizability(history, options);
  return finishCheck(history, linearizability, committed, patchedOperations, highestCompaction(history), started);
}

/**
 * The watch checks and the report, once linearizability is known: `history` gives the meta and the watch
 * streams (its operations are not read), `committed` the revisions the linearization commits (undefined
 * without one), `patchedOperations` at least every operation whose outcome stayed unknown (and the lease
 * puts), for unknownDeleter. Shared by checkHistory and the streaming check (stream.ts).
 */
export function finishCheck(
  history: History,
  linearizability: LinearizabilityResult,
  committed: CommittedRevision[] | undefined,
  patchedOperations: Operation[] | undefined,
  compactRevision: number | undefined,
  started: number,
): CheckReport {
  const input: Parameters<typeof checkWatches>[0] = { streams: history.watches, committed };
  // Deletes whose outcome patching could not resolve may account for delete events (see watch.ts).
  const deleter = patchedOperations && history.watches.length > 0 ? unknownDeleter(patchedOperations) : undefined;
  if (deleter !== undefined) input.unknownDeleter = deleter;
  if (history.meta?.mode === 'shared' && history.meta.prefix !== undefined) input.prefix = history.meta.prefix;
  if ((history.meta?.mode ?? 'exclusive') === 'exclusive') input.historyStart = (history.meta?.initialRevision ?? 1) + 1;
  if (compactRevision !== undefined) input.compactRevision = compactRevision;
  const violations = history.watches.length > 0 ? checkWatches(input) : [];
  return {
    verdict: worst(linearizability.verdict, violations.length > 0 ? 'violation' : 'linearizable'),
    linearizability,
    watch: { checked: history.watches.length, violations },
    elapsedMs: performance.now() - started,
  };
}
