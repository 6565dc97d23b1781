/**
 * History patching (after etcd's tests/robustness/validate/patch_history.go): resolves operations whose
 * outcome is unknown using what the rest of the history observed, before the search.
 *
 * Values written by puts are unique in recorded histories, so a value seen in a read or a watch event
 * identifies the one write that made it: that write certainly took effect, before the observation
 * returned, and at the revision the observation shows. It becomes a known operation with that return
 * time and revision, which is sound and removes its "applied or not, and when" branching. With a watch
 * that covered the key over the whole run, a write whose value it never delivered certainly did not
 * take effect and is dropped (the watch itself is checked for reliability separately).
 *
 * Values that several requests write are left alone: their observations prove nothing about one of them.
 */
import type { EtcdResponse, History, Operation, TxnOp, WatchResponse } from '../domain/index.ts';
import { roleOf } from './linearize.ts';
import { inWatchRange } from './watch.ts';

/**
 * What an unknown-outcome write's value becomes when nothing else in the history mentions it: no
 * response, watch event or compare can tell such values apart, so they are one value to the model, and
 * identical unknown writes are interchangeable in the search (see linearize.ts, symmetry).
 */
export const unobservedValue = '\u0000unobserved';

export interface PatchResult {
  operations: Operation[];
  /** Unknown-outcome writes whose values nothing mentions (now written as unobservedValue). */
  anonymized: number;
  /** Unknown-outcome writes whose value was observed (now known, with their return and revision). */
  observed: number;
  /** Unknown-outcome writes a complete watch proves never happened (now definite errors). */
  neverApplied: number;
}

export interface Observation {
  time: number;
  revision: number | undefined;
}

type PutOp = TxnOp & { type: 'put' };

/** The puts a write makes: a put itself, or the puts of both txn branches. */
function putsOf(op: Operation): PutOp[] {
  const { request } = op;
  if (request.type === 'put') return [request];
  if (request.type !== 'txn') return [];
  return [...request.success, ...request.failure].filter((o): o is PutOp => o.type === 'put');
}

function observe(seen: Map<string, Observation>, value: string | undefined, time: number, revision: number | undefined): void {
  if (value === undefined) return;
  const prior = seen.get(value);
  if (!prior || time < prior.time) seen.set(value, { time, revision: revision ?? prior?.revision });
  else if (prior.revision === undefined && revision !== undefined) prior.revision = revision;
}

/** A value a response or watch event shows, with the revision it shows it at. */
export type ObservationVisitor = (value: string | undefined, revision: number | undefined) => void;

/** Calls visit for every value an operation's response shows (kvs, and kvs inside txn results). */
export function forEachObservedValue(response: EtcdResponse, visit: ObservationVisitor): void {
  const r = response as { kvs?: { value?: string; modRevision?: number }[]; results?: { kvs?: { value?: string; modRevision?: number }[] }[] };
  for (const kv of r.kvs ?? []) visit(kv.value, kv.modRevision);
  for (const res of r.results ?? []) for (const kv of res.kvs ?? []) visit(kv.value, kv.modRevision);
}

/** Calls visit for every value a watch response shows (put events and previous values). */
export function forEachWatchedValue(response: WatchResponse, visit: ObservationVisitor): void {
  for (const event of response.events) {
    if (event.type === 'put') visit(event.value, event.modRevision);
    if (event.prevKV) visit(event.prevKV.value, event.prevKV.modRevision);
  }
}

/** The values a write puts: a put's, and those of the puts in both txn branches. */
export function writtenValues(op: Operation): string[] {
  return putsOf(op).map((put) => put.value);
}

/**
 * The unknown-outcome write `op` resolved by an observation of `value`: it took effect before the
 * observation returned, at the revision it showed; a txn took the branch that holds that put.
 */
export function resolvedOperation(op: Operation, at: Observation, value: string): Operation {
  const revision = at.revision !== undefined ? { revision: at.revision } : {};
  const response: EtcdResponse =
    op.request.type === 'txn' ? { succeeded: op.request.success.some((o) => o.type === 'put' && o.value === value), ...revision } : revision;
  return { ...op, return: at.time, response };
}

function collectObservations(history: History): Map<string, Observation> {
  const seen = new Map<string, Observation>();
  for (const op of history.operations) {
    if (op.return === null || !op.response || roleOf(op) === 'skip') continue;
    const time = op.return;
    forEachObservedValue(op.response, (value, revision) => observe(seen, value, time, revision));
  }
  for (const stream of history.watches) {
    for (const response of stream.responses) forEachWatchedValue(response, (value, revision) => observe(seen, value, response.time, revision));
  }
  return seen;
}

/** The highest revision any response shows: a complete watch must have reached it. */
function finalRevision(history: History): number {
  let max = 0;
  for (const op of history.operations) {
    const r = (op.response as { revision?: number } | undefined)?.revision;
    if (r !== undefined && r > max) max = r;
  }
  return max;
}

/** Keys whose every write a watch delivered over the whole run (exclusive mode only). */
function completeWatchCovers(history: History): (key: string) => boolean {
  if ((history.meta?.mode ?? 'exclusive') !== 'exclusive' || history.watches.length === 0) return () => false;
  const start = (history.meta?.initialRevision ?? 1) + 1;
  const end = finalRevision(history);
  const complete = history.watches.filter((w) => {
    if ((w.request.startRevision ?? Infinity) > start) return false;
    if (w.responses.some((r) => r.canceled === true || r.error !== undefined)) return false;
    let reached = 0;
    for (const r of w.responses) {
      if (r.progress && r.revision !== undefined) reached = Math.max(reached, r.revision);
      for (const e of r.events) reached = Math.max(reached, e.modRevision);
    }
    return reached >= end;
  });
  return (key) => complete.some((w) => inWatchRange(w.request, key));
}

export function patchHistory(history: History): PatchResult {
  // How many requests write each value: only a value written once identifies its writer.
  const writers = new Map<string, number>();
  for (const op of history.operations) for (const value of writtenValues(op)) writers.set(value, (writers.get(value) ?? 0) + 1);
  const unique = (value: string): boolean => writers.get(value) === 1;
  const seen = collectObservations(history);
  const covered = completeWatchCovers(history);
  const compared = new Set<string>();
  for (const op of history.operations) {
    if (op.request.type !== 'txn') continue;
    for (const c of op.request.compare) if (c.target === 'value') compared.add(String(c.value));
  }
  const unmentioned = (value: string): boolean => unique(value) && !seen.has(value) && !compared.has(value);
  let observed = 0;
  let neverApplied = 0;
  let anonymized = 0;
  const operations = history.operations.map((op) => {
    if (roleOf(op) !== 'optional') return op;
    const values = writtenValues(op).filter(unique);
    for (const value of values) {
      const at = seen.get(value);
      if (at && at.time >= op.call) {
        observed++;
        return resolvedOperation(op, at, value);
      }
    }
    // A plain put the complete watch never delivered did not happen.
    if (op.request.type === 'put' && values.length === 1 && !seen.has(op.request.value) && covered(op.request.key)) {
      neverApplied++;
      return { ...op, return: op.call, response: { error: 'never applied: a complete watch never delivered its value' } };
    }
    const request = anonymize(op.request, unmentioned);
    if (request === op.request) return op;
    anonymized++;
    return { ...op, request };
  });
  return { operations, observed, neverApplied, anonymized };
}

/** The request with the values `unmentioned` selects replaced by unobservedValue (the same object if none). */
export function anonymize(request: Operation['request'], unmentioned: (value: string) => boolean): Operation['request'] {
  const op = (o: TxnOp): TxnOp => (o.type === 'put' && unmentioned(o.value) ? { ...o, value: unobservedValue } : o);
  if (request.type === 'put') return unmentioned(request.value) ? { ...request, value: unobservedValue } : request;
  if (request.type !== 'txn') return request;
  const success = request.success.map(op);
  const failure = request.failure.map(op);
  const changed = success.some((o, i) => o !== request.success[i]) || failure.some((o, i) => o !== request.failure[i]);
  return changed ? { ...request, success, failure } : request;
}
