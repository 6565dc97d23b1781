/**
 * Watch deliveries as evidence for the revision order: the first delivery of each revision's events over
 * a history's watch streams, and whether an unknown-outcome write explains the events delivered at a
 * revision (then it took effect there). Separate from RevisionOrder (revision.ts), which uses them to
 * fill gaps, and shared with the live checker (live.ts).
 */
import type { EtcdResponse, Operation, TxnOpResponse, TxnResponse, WatchEvent } from '../domain/index.ts';
import { step } from './model.ts';
import { keyInRange, type ModelOptions, type ModelState } from './model-state.ts';

/** What a watch delivered at one revision, and when it first did. */
export interface Delivered {
  time: number;
  events: readonly WatchEvent[];
}

/**
 * The unknown-outcome operation as a known write at `revision`, if stepping it from `state` makes exactly the
 * events a watch delivered there (in any order: a revoke's deletes come in the model's key order, etcd's
 * sorted); else undefined. It then took effect before the delivery, at that revision.
 */
export function explainsEvents(op: Operation, state: ModelState, revision: number, delivered: Delivered, opts: ModelOptions): Operation | undefined {
  const responses: EtcdResponse[] = op.request.type === 'txn' ? [{ succeeded: true, revision }, { succeeded: false, revision }] : [{ revision }];
  const byKey = (a: WatchEvent, b: WatchEvent): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const expected = [...delivered.events].sort(byKey);
  for (const response of responses) {
    const made: WatchEvent[] = [];
    if (step(state, op.request, response, opts, undefined, made) === null) continue;
    made.sort(byKey);
    const same = made.length === expected.length && made.every((e, i) => e.type === expected[i]!.type && e.key === expected[i]!.key && (e.type === 'delete' || e.value === expected[i]!.value));
    if (same) return { ...op, return: delivered.time, response: withDeletes(op, response, made) };
  }
  return undefined;
}

/** The counts of deleted keys the response of a write explained by watch events shows (what claimedRevision reads). */
function withDeletes(op: Operation, response: EtcdResponse, made: readonly WatchEvent[]): EtcdResponse {
  const deletes = made.filter((e) => e.type === 'delete');
  const { request } = op;
  if (request.type === 'delete') return { ...response, deleted: deletes.length };
  if (request.type !== 'txn') return response;
  const branch = (response as TxnResponse).succeeded ? request.success : request.failure;
  // What a range returned nobody saw: undefined, not checked.
  const results: (TxnOpResponse | undefined)[] = branch.map((o) => (o.type === 'delete' ? { deleted: deletes.filter((e) => keyInRange(e.key, o.key, o.end)).length } : o.type === 'range' ? undefined : {}));
  return { ...response, results };
}

/** The first delivery of each revision's events over a history's watch streams (offline gap filling). */
export function deliveriesOf(streams: readonly { responses: readonly { time: number; events: readonly WatchEvent[] }[] }[]): Map<number, Delivered> {
  const byRevision = new Map<number, Delivered>();
  for (const stream of streams) {
    const seen = new Map<number, { time: number; events: WatchEvent[] }>();
    for (const response of stream.responses) {
      for (const event of response.events) {
        let mine = seen.get(event.modRevision);
        if (mine === undefined) seen.set(event.modRevision, (mine = { time: response.time, events: [] }));
        mine.events.push(event);
      }
    }
    for (const [revision, mine] of seen) {
      const known = byRevision.get(revision);
      if (known === undefined || mine.time < known.time) byRevision.set(revision, mine);
    }
  }
  return byRevision;
}
