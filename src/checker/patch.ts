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
import type { EtcdResponse, History, Operation, TxnOp } from '../domain/index.ts';
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

interface Observation {
  time: number;
  revision: number | undefined;
}

interface Written {
  count: number;
  /** The branch the put is in, for txns. */
  branch: 'success' | 'failure' | undefined;
}

function putsOf(op: Operation): { put: TxnOp & { type: 'put' }; branch: Written['branch'] }[] {
  const { request } = op;
  if (request.type === 'put') return [{ put: request, branch: undefined }];
  if (request.type !== 'txn') return [];
  const out: { put: TxnOp & { type: 'put' }; branch: Written['branch'] }[] = [];
  for (const p of request.success) if (p.type === 'put') out.push({ put: p, branch: 'success' });
  for (const p of request.failure) if (p.type === 'put') out.push({ put: p, branch: 'failure' });
  return out;
}

function observe(seen: Map<string, Observation>, value: string | undefined, time: number, revision: number | undefined): void {
  if (value === undefined) return;
  const prior = seen.get(value);
  if (!prior || time < prior.time) seen.set(value, { time, revision: revision ?? prior?.revision });
  else if (prior.revision === undefined && revision !== undefined) prior.revision = revision;
}

function collectObservations(history: History): Map<string, Observation> {
  const seen = new Map<string, Observation>();
  for (const op of history.operations) {
    if (op.return === null || !op.response || roleOf(op) === 'skip') continue;
    const response = op.response as { kvs?: { value?: string; modRevision?: number }[]; results?: { kvs?: { value?: string; modRevision?: number }[] }[] };
    for (const kv of response.kvs ?? []) observe(seen, kv.value, op.return, kv.modRevision);
    for (const r of response.results ?? []) for (const kv of r.kvs ?? []) observe(seen, kv.value, op.return, kv.modRevision);
  }
  for (const stream of history.watches) {
    for (const response of stream.responses) {
      for (const event of response.events) {
        if (event.type === 'put') observe(seen, event.value, response.time, event.modRevision);
        if (event.prevKV) observe(seen, event.prevKV.value, response.time, event.prevKV.modRevision);
      }
    }
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
  const writers = new Map<string, Written>();
  for (const op of history.operations) {
    for (const { put, branch } of putsOf(op)) {
      const w = writers.get(put.value);
      if (w) w.count++;
      else writers.set(put.value, { count: 1, branch });
    }
  }
  const seen = collectObservations(history);
  const covered = completeWatchCovers(history);
  const compared = new Set<string>();
  for (const op of history.operations) {
    if (op.request.type !== 'txn') continue;
    for (const c of op.request.compare) if (c.target === 'value') compared.add(String(c.value));
  }
  const unmentioned = (value: string): boolean => writers.get(value)?.count === 1 && !seen.has(value) && !compared.has(value);
  let observed = 0;
  let neverApplied = 0;
  let anonymized = 0;
  const operations = history.operations.map((op) => {
    if (roleOf(op) !== 'optional') return op;
    const puts = putsOf(op).filter(({ put }) => writers.get(put.value)?.count === 1);
    const hit = puts.map((p) => ({ ...p, at: seen.get(p.put.value) })).find((p) => p.at !== undefined && p.at.time >= op.call);
    if (hit?.at) {
      const response: EtcdResponse =
        op.request.type === 'txn'
          ? { succeeded: hit.branch === 'success', ...(hit.at.revision !== undefined ? { revision: hit.at.revision } : {}) }
          : hit.at.revision !== undefined
            ? { revision: hit.at.revision }
            : {};
      observed++;
      return { ...op, return: hit.at.time, response };
    }
    // A plain put the complete watch never delivered did not happen.
    if (op.request.type === 'put' && puts.length === 1 && !seen.has(op.request.value) && covered(op.request.key)) {
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
