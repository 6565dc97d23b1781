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
 *
 * Deletes carry no value, so a delete event is tied to its writer by elimination instead: a watch's delete
 * of key K at revision R proves that some write deleted K at R. Only the run's own clients write its keys
 * (all keys in exclusive mode, those under the prefix in shared mode), so when exactly one unknown-outcome
 * operation of the history could have deleted K (a delete of K or of a range holding K, a txn with a branch
 * that does, a leaseRevoke of a lease K was put with), was called before the event was delivered, and no
 * acknowledged operation at R (or of unknown revision) could have, that operation took effect at R: it
 * becomes known, returning when the event was first delivered, with revision R (resolveDeletes). With
 * several candidates nothing is resolved; the watch check then does not blame the event on the watch
 * (unknownDeleter, which check.ts hands to watch.ts). Leases are assumed not to expire during a run (the
 * probes grant them for longer than the run), as the model assumes.
 */
import type { EtcdResponse, History, Operation, TxnOp, TxnOpResponse, WatchResponse } from '../domain/index.ts';
import { roleOf } from './roles.ts';
import { keyInRange } from './model-state.ts';
import { inWatchRange } from './watch-common.ts';

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
  /**
   * Unknown-outcome writes whose value was observed, or that are the only possible writer of a delete a
   * watch delivered (now known, with their return and revision).
   */
  observed: number;
  /** Unknown-outcome writes a complete watch proves never happened (now definite errors). */
  neverApplied: number;
}

export interface Observation {
  time: number;
  revision: number | undefined;
}

/**
 * The live checkers' recent observations (value -> first time and revision seen), kept while a write pushed
 * later could still match them: one called before the watermark cannot be pushed any more.
 */
export class RecentObservations {
  private readonly byValue = new Map<string, Observation>();
  private order: { time: number; value: string }[] = [];
  private head = 0;

  get(value: string): Observation | undefined {
    return this.byValue.get(value);
  }

  /** Records the first observation of a value. */
  add(value: string, time: number, revision: number | undefined): void {
    if (this.byValue.has(value)) return;
    this.byValue.set(value, { time, revision });
    this.order.push({ time, value });
  }

  /** Forgets observations made before the watermark. */
  forgetBefore(watermark: number): void {
    while (this.head < this.order.length && this.order[this.head]!.time < watermark) {
      this.byValue.delete(this.order[this.head]!.value);
      this.head++;
    }
    if (this.head > 65_536) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
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
  const r = response as { kvs?: { value?: string; modRevision?: number }[]; results?: ({ kvs?: { value?: string; modRevision?: number }[] } | undefined)[] };
  for (const kv of r.kvs ?? []) visit(kv.value, kv.modRevision);
  for (const res of r.results ?? []) for (const kv of res?.kvs ?? []) visit(kv.value, kv.modRevision);
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
  observed += resolveDeletes(history, operations);
  return { operations, observed, neverApplied, anonymized };
}

// ---- unknown-outcome deletes, resolved by elimination from the delete events watches delivered

/** What an operation may delete: key ranges (with the txn branch holding each), or a lease's keys. */
interface Deleter {
  index: number;
  op: Operation;
  ranges: { key: string; end: string | undefined; branch: boolean | undefined }[];
  lease: string | undefined;
}

function deleterOf(op: Operation, index: number): Deleter | undefined {
  const { request } = op;
  if (request.type === 'delete') return { index, op, ranges: [{ key: request.key, end: request.end, branch: undefined }], lease: undefined };
  if (request.type === 'leaseRevoke') return { index, op, ranges: [], lease: request.id };
  if (request.type !== 'txn') return undefined;
  const ranges: Deleter['ranges'] = [];
  for (const o of request.success) if (o.type === 'delete') ranges.push({ key: o.key, end: o.end, branch: true });
  for (const o of request.failure) if (o.type === 'delete') ranges.push({ key: o.key, end: o.end, branch: false });
  return ranges.length > 0 ? { index, op, ranges, lease: undefined } : undefined;
}

/**
 * What an acknowledged operation may have deleted: only its txn's taken branch, and not a delete whose
 * response says it deleted nothing (a delete of a missing key shows the current revision, not its own).
 */
function knownDeleterOf(op: Operation, index: number): Deleter | undefined {
  const d = deleterOf(op, index);
  if (d === undefined || d.lease !== undefined) return d;
  const response = op.response as { deleted?: number; succeeded?: boolean; results?: { deleted?: number }[] } | undefined;
  if (op.request.type === 'delete') return response?.deleted === 0 ? undefined : d;
  if (op.request.type !== 'txn' || response?.succeeded === undefined) return d;
  const branch = response.succeeded ? op.request.success : op.request.failure;
  const ranges: Deleter['ranges'] = [];
  branch.forEach((o, i) => {
    if (o.type === 'delete' && response.results?.[i]?.deleted !== 0) ranges.push({ key: o.key, end: o.end, branch: response.succeeded });
  });
  return ranges.length > 0 ? { ...d, ranges } : undefined;
}

/** The keys each lease had some key put with, anywhere in the history (a superset of what a revoke deletes). */
function keysByLease(operations: Operation[]): Map<string, Set<string>> {
  const byLease = new Map<string, Set<string>>();
  for (const op of operations) {
    const { request } = op;
    const puts = request.type === 'put' ? [request] : request.type === 'txn' ? [...request.success, ...request.failure] : [];
    for (const o of puts) {
      if (o.type !== 'put' || o.lease === undefined) continue;
      let keys = byLease.get(o.lease);
      if (keys === undefined) byLease.set(o.lease, (keys = new Set()));
      keys.add(o.key);
    }
  }
  return byLease;
}

function canDelete(d: Deleter, key: string, leaseKeys: Map<string, Set<string>>): boolean {
  if (d.lease !== undefined) return leaseKeys.get(d.lease)?.has(key) ?? false;
  return d.ranges.some((r) => keyInRange(key, r.key, r.end));
}

/** The deleters among operations whose outcome is unknown. */
function unknownDeletersOf(operations: Operation[]): Deleter[] {
  const found: Deleter[] = [];
  operations.forEach((op, index) => {
    if (roleOf(op) !== 'optional') return;
    const d = deleterOf(op, index);
    if (d !== undefined) found.push(d);
  });
  return found;
}

/**
 * Whether some operation whose outcome is still unknown (after patching) could have deleted `key`, having
 * been called by `time`: then a delete event of `key` the linearization does not hold may be that
 * operation's, at a revision the history cannot place. Undefined when there is no such operation at all.
 */
export function unknownDeleter(operations: Operation[]): ((key: string, time: number) => boolean) | undefined {
  const deleters = unknownDeletersOf(operations);
  if (deleters.length === 0) return undefined;
  const leaseKeys = keysByLease(operations);
  return (key, time) => deleters.some((d) => d.op.call <= time && canDelete(d, key, leaseKeys));
}

/** The delete events watches delivered on keys the history accounts for: "revision\0key" -> first delivery. */
function deleteEvents(history: History): Map<string, { key: string; revision: number; time: number }> {
  const shared = (history.meta?.mode ?? 'exclusive') === 'shared';
  const prefix = history.meta?.prefix ?? '';
  const start = shared ? -Infinity : (history.meta?.initialRevision ?? 1) + 1;
  const events = new Map<string, { key: string; revision: number; time: number }>();
  for (const stream of history.watches) {
    for (const response of stream.responses) {
      for (const event of response.events) {
        if (event.type !== 'delete' || event.modRevision < start || (shared && !event.key.startsWith(prefix))) continue;
        const id = `${event.modRevision}\u0000${event.key}`;
        const prior = events.get(id);
        if (prior === undefined) events.set(id, { key: event.key, revision: event.modRevision, time: response.time });
        else if (response.time < prior.time) prior.time = response.time;
      }
      // A cancel or error ends the stream (watch.ts ignores what follows).
      if (response.canceled === true || response.error !== undefined) break;
    }
  }
  return events;
}

/**
 * Makes known the unknown-outcome operations that are the only possible writer of a delete event (see the
 * header); returns how many. `operations` (already patched for puts) is updated in place.
 */
function resolveDeletes(history: History, operations: Operation[]): number {
  if (history.watches.length === 0) return 0;
  const unknown = unknownDeletersOf(operations);
  if (unknown.length === 0) return 0;
  const events = deleteEvents(history);
  if (events.size === 0) return 0;
  const leaseKeys = keysByLease(operations);
  // Acknowledged operations that may delete: by the revision their response shows, or with none shown.
  const knownAt = new Map<number, Deleter[]>();
  const knownSomewhere: Deleter[] = [];
  operations.forEach((op, index) => {
    if (roleOf(op) !== 'linearize') return;
    const d = knownDeleterOf(op, index);
    if (d === undefined) return;
    const revision = (op.response as { revision?: number } | undefined)?.revision;
    if (revision === undefined) knownSomewhere.push(d);
    else {
      const list = knownAt.get(revision);
      if (list) list.push(d);
      else knownAt.set(revision, [d]);
    }
  });
  const resolutions = new Map<number, { revision: number; time: number; response: EtcdResponse }>();
  for (const { key, revision, time } of events.values()) {
    if (knownAt.get(revision)?.some((d) => canDelete(d, key, leaseKeys))) continue;
    if (knownSomewhere.some((d) => d.op.call <= time && canDelete(d, key, leaseKeys))) continue;
    let only: Deleter | undefined;
    let count = 0;
    for (const d of unknown) {
      if (d.op.call > time || !canDelete(d, key, leaseKeys)) continue;
      only = d;
      if (++count > 1) break;
    }
    if (count !== 1) continue;
    const response = resolvedDeleteResponse(only!, key, revision);
    if (response === undefined) continue;
    const prior = resolutions.get(only!.index);
    if (prior === undefined || time < prior.time) resolutions.set(only!.index, { revision, time, response });
  }
  for (const [index, { time, response }] of resolutions) operations[index] = { ...operations[index]!, return: time, response };
  return resolutions.size;
}

/** The response of a deleter that deleted `key` at `revision` (undefined when a txn's branch cannot be told). */
function resolvedDeleteResponse(d: Deleter, key: string, revision: number): EtcdResponse | undefined {
  const { request } = d.op;
  if (request.type === 'leaseRevoke') return { revision };
  if (request.type === 'delete') return request.end === undefined ? { revision, deleted: 1 } : { revision };
  const branches = new Set(d.ranges.filter((r) => keyInRange(key, r.key, r.end)).map((r) => r.branch));
  if (branches.size !== 1) return undefined;
  const succeeded = [...branches][0] === true;
  const results = request.type === 'txn' ? deleteResults(succeeded ? request.success : request.failure, key) : undefined;
  return results === undefined ? { succeeded, revision } : { succeeded, revision, results };
}

/**
 * The results of a txn branch that deleted `key`, as far as the event shows them: the one single-key delete
 * of `key` deleted it (so the txn claims its revision, see claimedRevision); what the other ops returned is
 * unknown (undefined: not checked).
 */
function deleteResults(branch: readonly TxnOp[], key: string): (TxnOpResponse | undefined)[] | undefined {
  const deleters = branch.filter((o) => o.type === 'delete' && keyInRange(key, o.key, o.end));
  if (deleters.length !== 1 || deleters[0]!.type !== 'delete' || deleters[0]!.end !== undefined) return undefined;
  return branch.map((o) => (o === deleters[0] ? { deleted: 1 } : undefined));
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
