/**
 * Closing a search window early (exclusive mode): where the search over a window linearizes a prefix of
 * it and its frontier pins the state again, the revision order resumes from there. Separate from
 * check.ts because the offline check and the live checker (live.ts) both close windows.
 */
import type { Operation } from '../domain/index.ts';
import { LinearizationEngine } from './linearize.ts';
import { InconclusiveError, type EngineOptions } from './linearize-options.ts';
import { step } from './model.ts';
import type { ModelOptions, ModelState } from './model-state.ts';
import { claimedRevision, roleOf } from './roles.ts';

/** The revision an acknowledged operation sits at in the revision order: the one it claims, else its header's. */
function orderRevision(op: Operation): number | undefined {
  return claimedRevision(op) ?? (op.response as { revision?: number } | undefined)?.revision;
}

/** A search window closed early (closeWindow): its prefix is linearized, the revision order resumes after it. */
export interface ClosedWindow {
  /** The linearization of the window's prefix, from the window's state. */
  path: number[];
  /** The state after it, exact (replayed), at `toRevision`. */
  state: ModelState;
  toRevision: number;
  /** Operations the search took. */
  operations: number;
  /** The window's operations left to the revision order: acknowledged ones above toRevision, unknown ones not placed. */
  rest: number[];
}

/** The smallest prefix (acknowledged operations, in revision order) closeWindow tries first; it doubles from there. */
const firstClosingSize = 4;

/**
 * Tries to close a search window (exclusive mode) instead of searching it to the end of the history:
 * for growing R, searches from `from` the window's acknowledged operations at revisions up to R, with
 * the unknown-outcome ones called before the last of them returned (the only ones that can precede any
 * of them). It closes at the first R where the search linearizes them and its frontier collapses (one
 * configuration, or several with the same keys: see collapsed) with the first one's (replayed) state at
 * revision R: the state there is pinned again, and the order resumes from it. Revisions are exact and
 * contiguous in exclusive mode, so every acknowledged operation above R sits after every one at or below
 * it in any linearization. `watermark` (live): every operation called before it is in the window
 * already; the prefix must have returned before it, and so must an operation above R (then one at or
 * below R that comes later is a violation the order reports). Returns 'search' when the search finds a
 * violation or gives up on a prefix, or an operation above R returned before one in the prefix was
 * called (the search over the window then decides, as without closing); undefined when no R closes yet,
 * or the prefix would hold more than half of the window. `exact` (live): close only on a frontier of one
 * configuration. Several with the same keys may differ in leases or in the unknown-outcome operations
 * they used, and resuming from one of them could make a later operation look impossible: offline, any
 * violation after a closed window is decided again by the search from the first window; live, a
 * violation is reported as found, so only an exact state may be resumed from.
 */
export function closeWindow(
  window: readonly number[],
  get: (index: number) => Operation,
  from: ModelState,
  engineOptions: EngineOptions,
  watermark = Infinity,
  exact = false,
): ClosedWindow | 'search' | undefined {
  if (engineOptions.mode !== 'exclusive' || !engineOptions.trackRevision) return undefined;
  const known: { index: number; revision: number }[] = [];
  const unknown: number[] = [];
  for (const index of window) {
    const op = get(index);
    const role = roleOf(op);
    if (role === 'optional') unknown.push(index);
    if (role !== 'linearize') continue;
    const revision = orderRevision(op);
    if (revision === undefined) return undefined;
    known.push({ index, revision });
  }
  known.sort((a, b) => a.revision - b.revision || a.index - b.index);
  for (let size = firstClosingSize; size <= known.length / 2; size *= 2) {
    const toRevision = known[size - 1]!.revision;
    let n = size;
    while (n < known.length && known[n]!.revision <= toRevision) n++;
    if (n === known.length) return undefined;
    let lastReturn = -Infinity;
    let lastCall = -Infinity;
    for (let i = 0; i < n; i++) {
      const op = get(known[i]!.index);
      lastReturn = Math.max(lastReturn, op.return!);
      lastCall = Math.max(lastCall, op.call);
    }
    if (lastReturn >= watermark) return undefined;
    let aboveReturned = false;
    for (let i = n; i < known.length; i++) {
      const ret = get(known[i]!.index).return!;
      if (ret < lastCall) return 'search';
      if (ret < watermark) aboveReturned = true;
    }
    if (!aboveReturned) return undefined;
    const taken = [...known.slice(0, n).map((k) => k.index), ...unknown.filter((i) => get(i).call <= lastReturn)].sort((a, b) => a - b);
    const engine = new LinearizationEngine({ ...engineOptions, trackPaths: true, initialState: from });
    for (const index of taken) engine.add(index, get(index), roleOf(get(index)));
    try {
      engine.advance(Infinity);
    } catch (error) {
      if (!(error instanceof InconclusiveError)) throw error;
      return 'search';
    }
    // A beam's frontier (linearize.ts) is a cut: it pins no state.
    if (engine.violation || engine.inconclusive !== undefined || !engine.complete) return 'search';
    if (exact ? engine.frontierSize !== 1 : !collapsed(engine)) continue;
    const path = engine.linearization() ?? [];
    const state = replayFrom(from, get, path, engineOptions);
    if (state === undefined || state.revision !== toRevision) continue;
    const placed = new Set(path);
    const rest = [...known.slice(n).map((k) => k.index), ...unknown.filter((i) => !placed.has(i))];
    return { path, state, toRevision, operations: taken.length, rest };
  }
  return undefined;
}

/** Candidate configurations closeWindow compares at most (more: the state is taken as not pinned). */
const collapseLimit = 16;

/**
 * Whether the search's frontier pins the keys: every candidate configuration has the same keys, revision
 * and compaction. They may differ in leases (an unknown-outcome grant applied in one and not in another:
 * nothing observes a lease until a request uses it, and the revision order applies an unknown grant when
 * one first does) and in which unknown-outcome operations they used (those left go on to the order).
 */
function collapsed(engine: LinearizationEngine): boolean {
  const n = engine.frontierSize;
  if (n === 1) return true;
  if (n > collapseLimit) return false;
  const keys = engine.candidateStates(n).map((s) => JSON.stringify([s.revision, s.compactRevision, s.kvs]));
  return keys.every((k) => k === keys[0]);
}

/** The state after applying `path` from `from`, or undefined if some operation does not step. */
function replayFrom(from: ModelState, get: (index: number) => Operation, path: readonly number[], opts: ModelOptions): ModelState | undefined {
  let state = from;
  for (const index of path) {
    const op = get(index);
    const next = step(state, op.request, op.response, opts);
    if (next === null) return undefined;
    state = next;
  }
  return state;
}
