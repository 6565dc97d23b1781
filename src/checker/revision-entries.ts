/**
 * The revision order's bookkeeping (revision.ts): an operation's entry and position in the order, how
 * entries are ordered, the index of returns that bounds where a later-called operation may sit (real
 * time), and small helpers on leases. Separate from RevisionOrder, which decides what to do with them.
 */
import type { EtcdRequest, Operation } from '../domain/index.ts';
import type { ModelState } from './model-state.ts';
import { claimedRevision } from './roles.ts';

type EntryKind = 'write' | 'revoke' | 'other';

export interface Entry {
  index: number;
  op: Operation;
  revision: number;
  /** revision * 2 (the write at revision) or revision * 2 + 1 (after it). */
  pos: number;
  kind: EntryKind;
}

/** How an acknowledged operation with a header revision sits in the revision order. */
export function entryFor(index: number, op: Operation, revision: number): Entry {
  const claimed = claimedRevision(op);
  if (claimed !== undefined) return { index, op, revision: claimed, pos: claimed * 2, kind: 'write' };
  // A revoke writes (deletes the keys it held) only if some key still held its lease: decided in order.
  if (op.request.type === 'leaseRevoke') return { index, op, revision, pos: revision * 2, kind: 'revoke' };
  return { index, op, revision, pos: revision * 2 + 1, kind: 'other' };
}

/** No real-time bound (offline: checked as operations are placed). */
export const noBound = { pos: -Infinity, index: -1 };

const kindRank: Record<EntryKind, number> = { write: 0, revoke: 1, other: 2 };

export function before(a: Entry, b: Entry): boolean {
  if (a.pos !== b.pos) return a.pos < b.pos;
  if (a.kind !== b.kind) return kindRank[a.kind] < kindRank[b.kind];
  const ra = a.op.return ?? Infinity;
  const rb = b.op.return ?? Infinity;
  if (ra !== rb) return ra < rb;
  return a.index < b.index;
}

/**
 * Returns of added operations, by time, with the highest position returned up to each: the real-time
 * bound on where a later-called operation may sit. Returns older than the watermark fold into `base`.
 */
export class ReturnIndex {
  private times: number[] = [];
  private own: number[] = [];
  private ownIds: number[] = [];
  private maxPos: number[] = [];
  private maxIds: number[] = [];
  private base = -Infinity;
  private baseId = -1;

  add(time: number, pos: number, index: number): void {
    let i = this.times.length;
    while (i > 0 && this.times[i - 1]! > time) i--;
    this.times.splice(i, 0, time);
    this.own.splice(i, 0, pos);
    this.ownIds.splice(i, 0, index);
    this.maxPos.splice(i, 0, 0);
    this.maxIds.splice(i, 0, 0);
    // Prefix maxima from i on: returns arrive almost in time order, so this touches few entries.
    for (let j = i; j < this.times.length; j++) {
      const prevPos = j === 0 ? this.base : this.maxPos[j - 1]!;
      const prevId = j === 0 ? this.baseId : this.maxIds[j - 1]!;
      const higher = this.own[j]! > prevPos;
      this.maxPos[j] = higher ? this.own[j]! : prevPos;
      this.maxIds[j] = higher ? this.ownIds[j]! : prevId;
    }
  }

  /** The highest position among operations that returned strictly before `time`, and which one. */
  boundBefore(time: number): { pos: number; index: number } {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.times[mid]! < time) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? { pos: this.base, index: this.baseId } : { pos: this.maxPos[lo - 1]!, index: this.maxIds[lo - 1]! };
  }

  /** Folds returns before `time` into the base (no operation added from now on was called before it); returns the base. */
  fold(time: number): number {
    let n = 0;
    while (n < this.times.length && this.times[n]! < time) n++;
    if (n > 0) {
      this.base = this.maxPos[n - 1]!;
      this.baseId = this.maxIds[n - 1]!;
      for (const list of [this.times, this.own, this.ownIds, this.maxPos, this.maxIds]) list.splice(0, n);
    }
    return this.base;
  }
}

/** The leases a request needs to exist. */
export function leasesUsed(request: EtcdRequest): string[] {
  switch (request.type) {
    case 'put':
      return request.lease === undefined ? [] : [request.lease];
    case 'txn':
      return [...request.success, ...request.failure].flatMap((o) => (o.type === 'put' && o.lease !== undefined ? [o.lease] : []));
    case 'leaseRevoke':
      return [request.id];
    default:
      return [];
  }
}

export function holdsLease(state: ModelState, lease: string): boolean {
  for (const k of state.keys.values()) if (k.lease === lease) return true;
  return false;
}

export function describe(op: Operation, index: number): string {
  return `operation ${index} (${op.request.type})`;
}

export interface Kept {
  revision: number;
  state: ModelState;
  /** Operations placed at this revision: its write, then requests after it. */
  placed: { index: number; op: Operation }[];
}
