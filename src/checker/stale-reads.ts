/**
 * The stale-read check: whether a serializable or past-revision read matches a state it could have read,
 * and whether a mismatch is certain or depends on unknown-outcome writes the history leaves unresolved.
 * Separate from check.ts because the offline check, the streaming check (stream.ts) and the live
 * checker (live.ts) all use it on states they keep in their own ways.
 */
import type { History, Operation, RangeRequest, RangeResponse } from '../domain/index.ts';
import { step } from './model.ts';
import type { ModelOptions, ModelState } from './model-state.ts';
import { roleOf } from './roles.ts';
import { copyKvs } from './written-kvs.ts';

/**
 * What a stale-read check may take as exact. The states come from one linearization; where the history
 * leaves unknown-outcome writes unresolved, another linearization (the write applied, or not) may give a
 * read another state, so a mismatch there is not evidence.
 */
export interface StaleReadCertainty {
  /** states[0..certainStates) follow from acknowledged (or resolved) operations only; later ones include a write the search applied by choice. */
  certainStates: number;
  /** An unknown-outcome write the history leaves unresolved was called before the read returned (it may have taken effect before the read, whether the linearization applied it or not). */
  unresolvedBefore: boolean;
}

/** What checking a stale read found: no reason (it matches), or why not, and whether that is certain. */
export interface StaleReadFinding {
  reason: string | undefined;
  /** The search reached states[0] without a match (the streaming check, which keeps only recent states, then cannot tell). */
  exhausted: boolean;
  /** The mismatch may be an artifact of the linearization's choice for unresolved unknown writes (see StaleReadCertainty). */
  uncertain: boolean;
}

/**
 * Whether a stale read matches one of states[0..visible) (oldest first), searched newest first: the state
 * at the revision it names (or its header revision, for a serializable read), or else any of them.
 */
export function staleReadProblem(op: Operation, states: readonly ModelState[], visible: number, opts: ModelOptions & { initialRevision?: number }, certainty?: StaleReadCertainty): StaleReadFinding {
  const request = op.request as RangeRequest;
  const response = op.response as RangeResponse;
  const fresh: RangeRequest = { type: 'range', key: request.key };
  if (request.end !== undefined) fresh.end = request.end;
  if (request.limit !== undefined) fresh.limit = request.limit;
  if (request.keysOnly !== undefined) fresh.keysOnly = request.keysOnly;
  // The key-values as the response holds them (still as text, when they are: see written-kvs.ts).
  const body = {} as RangeResponse;
  copyKvs(response, body);
  if (response.count !== undefined) body.count = response.count;
  // Exact revisions exist only in exclusive mode; in shared mode any visible state of the own keys may match.
  const wanted = opts.trackRevision && opts.mode === 'exclusive' ? request.revision || response.revision : undefined;
  // A revision before the history's start (a run's: before it cleared its prefix) names a state the history
  // does not hold, so there is nothing to judge the read against: neither evidence nor a doubt.
  if (wanted !== undefined && wanted < (opts.initialRevision ?? 1)) return { reason: undefined, exhausted: false, uncertain: false };
  const unresolved = certainty?.unresolvedBefore ?? false;
  const certainStates = certainty?.certainStates ?? Infinity;
  let previous: ModelState | undefined;
  // Newest first: a fresh read is the common case. Consecutive states are often one object.
  const newest = Math.min(visible, states.length) - 1;
  let i = newest;
  for (; i >= 0; i--) {
    const state = states[i]!;
    if (state === previous) continue;
    previous = state;
    if (wanted !== undefined && state.revision !== wanted) {
      if (state.revision < wanted) {
        // The linearization had not reached the read's revision when the read returned: certain only if no
        // unresolved write could have taken it, and the state's own revision follows from known writes.
        const uncertain = unresolved || i >= certainStates;
        return { reason: mismatch(request, wanted), exhausted: false, uncertain };
      }
      continue;
    }
    if (step(state, fresh, body, opts) !== null) return { reason: undefined, exhausted: false, uncertain: false };
    // In exclusive mode the state at a revision that follows from known writes only is the one state the
    // history allows there: every revision up to it is claimed, so no unknown write fits in between.
    if (wanted !== undefined) return { reason: mismatch(request, wanted), exhausted: false, uncertain: i >= certainStates };
  }
  return { reason: mismatch(request, wanted), exhausted: true, uncertain: unresolved || newest >= certainStates };
}

function mismatch(request: RangeRequest, wanted: number | undefined): string {
  return wanted !== undefined
    ? `stale read of ${request.key} does not match the state at revision ${wanted}`
    : `stale read of ${request.key} matches no state that was visible before it returned`;
}

/** Stale reads that match no state they could have read; `uncertain` ones may match under another linearization. */
export interface StaleReadProblems {
  problems: { operation: number; reason: string }[];
  /** The first stale read whose mismatch depends on unresolved unknown-outcome writes (the verdict is then inconclusive, unless a certain problem makes it a violation). */
  uncertain: string | undefined;
}

/**
 * Adds one stale read's finding: a certain mismatch is a problem (a violation); an uncertain one only gives
 * the reason of an inconclusive verdict, the first one kept.
 */
export function addStaleReadFinding(into: StaleReadProblems, index: number, finding: StaleReadFinding): void {
  if (finding.reason === undefined) return;
  if (finding.uncertain) {
    into.uncertain ??= `${finding.reason} (operation ${index}), but the state it read depends on unknown-outcome writes the history does not resolve (applied or not, and where): it may match under another linearization`;
  } else into.problems.push({ operation: index, reason: finding.reason });
}

/** The earliest call among the unknown-outcome writes still unresolved (role 'optional'), or Infinity. */
export function firstUnresolvedCall(operations: Iterable<Operation>): number {
  let first = Infinity;
  for (const op of operations) if (roleOf(op) === 'optional' && op.call < first) first = op.call;
  return first;
}

/** An operation the linearization applied by choice alone: its outcome is still unknown after patching. */
export function appliedByChoice(op: Operation): boolean {
  return op.return === null || op.response === undefined;
}

/**
 * A stale read is valid if some state it could have read matches it (staleReadProblem): the states
 * linearized before the first operation called after the read returned.
 */
export function staleReadProblems(history: History, order: number[], states: ModelState[], opts: ModelOptions): StaleReadProblems {
  const found: StaleReadProblems = { problems: [], uncertain: undefined };
  // prefixMaxCall[i]: the latest call among the first i+1 linearized operations (non-decreasing, so
  // "the first operation called after T" is a binary search).
  const prefixMaxCall: number[] = [];
  let maxCall = -Infinity;
  // states[k + 1] is the state after order[k]: the first one a write applied by choice made.
  let certainStates = Infinity;
  order.forEach((index, k) => {
    const op = history.operations[index]!;
    prefixMaxCall.push((maxCall = Math.max(maxCall, op.call)));
    if (certainStates === Infinity && appliedByChoice(op) && states[k + 1] !== states[k]) certainStates = k + 1;
  });
  const firstCalledAfter = (t: number): number => {
    let lo = 0;
    let hi = prefixMaxCall.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (prefixMaxCall[mid]! > t) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const unresolvedFrom = firstUnresolvedCall(history.operations);
  history.operations.forEach((op: Operation, index) => {
    if (roleOf(op) !== 'stale') return;
    // Visible: the initial state and the states after each operation linearized before the first
    // operation that was called after this read returned.
    addStaleReadFinding(found, index, staleReadProblem(op, states, firstCalledAfter(op.return!) + 1, opts, { certainStates, unresolvedBefore: unresolvedFrom < op.return! }));
  });
  return found;
}
