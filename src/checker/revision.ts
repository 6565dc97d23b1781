/**
 * The revision-ordered checking path: linearizability in close to linear time for histories whose
 * responses carry etcd revisions (after Elle's version-order inference, Kingsbury & Alvaro, VLDB 2020).
 *
 * etcd gives every write a revision, one total order. So a history with revisions dictates its own
 * linearization: the write that created revision r sits at position (r, 0), and every other request whose
 * response shows header revision r (reads, lease grants, compactions, txns and deletes that changed
 * nothing) sits after it, at (r, 1). This module builds that order and verifies it:
 * - every operation's step through the model (model.ts) from the state before it succeeds: its response
 *   matches the exact state at its revision, and writes take the revisions they claim;
 * - real-time order holds: an operation returned before another was called never sits after it.
 * Both hold => the order is a linearization: the verdict `linearizable` carries its own witness. Either fails
 * => the search (linearize.ts) decides, over a window that starts at the last state the revision order
 * pins exactly (see fallbackWindow); the search also gives the evidence of a violation.
 *
 * Unknown outcomes. An unknown-outcome write resolved by an observation of its unique value (patch.ts
 * offline; `observe` live, from reads and watch events) becomes a known write at the revision shown. One
 * never observed is taken as never applied; that is a choice the witness may make, and when it is wrong
 * something later fails to step (in exclusive mode a revision nobody claims), and the search, where it
 * stays optional, decides. Unknown lease grants are applied just before the first request that needs the
 * lease; unknown compactions are never applied (nothing can observe them: see the notes in step()).
 *
 * Processing is incremental, for the live checker and the streaming offline check alike: `advance(t)`
 * promises that every operation called before t has been added. Any operation added later was called at
 * or after t, so (real time) it sits at or after every operation that returned before t; every position
 * below the highest of those is therefore complete and is processed in order. In exclusive mode a write
 * whose revision follows the current state's is applied as soon as it is added (revisions are contiguous,
 * so nothing else can come before it); requests at older revisions that arrive afterwards are checked
 * against the states kept for recent revisions (see lateRequest).
 */
import type { EtcdRequest, Operation, WatchEvent } from '../domain/index.ts';
import { MinHeap } from '../min-heap.ts';
import { applyWatchEvents, step } from './model.ts';
import { initialState, type ModelOptions, type ModelState, type Why } from './model-state.ts';
import { before, describe, entryFor, holdsLease, leasesUsed, noBound, ReturnIndex, type Entry, type Kept } from './revision-entries.ts';
import { explainsEvents, type Delivered } from './watch-deliveries.ts';

export interface RevisionOptions extends ModelOptions {
  initialRevision: number;
  /**
   * Live: exclusive-mode writes go in as soon as they are contiguous, requests that arrive after later
   * writes are checked against kept states, and real time is checked as operations arrive (in return
   * order, the live contract). Offline: strictly in position order, real time checked as operations are
   * placed (whatever order the file has), and `onRetired` gives the linearization.
   */
  eager: boolean;
  /** Recent states kept for requests that arrive after later writes were applied (eager mode). */
  keepStates?: number;
  /**
   * Offline: the watch's events by revision (deliveriesOf). At the end, a revision nobody claimed whose events
   * exactly one unknown-outcome operation explains is that operation's (as live does, more precisely than
   * patch.ts's elimination by key: the whole event set, from the exact state).
   */
  deliveries?: ReadonlyMap<number, Delivered>;
  /**
   * Start from this state (at `initialRevision`) instead of the empty store: the order resuming after a
   * search window closed (close-window.ts closeWindow; live.ts settleWindow).
   */
  initialState?: ModelState;
  /** Offline: the latest call among the operations linearized before the start, and which (real time across the seam). */
  afterCall?: { call: number; index: number };
}

/** Why the revision order could not be verified; the search then decides from `window`. */
export interface RevisionFailure {
  reason: string;
  /** The operation the order could not place. */
  operation: number | undefined;
  /** The revision the search window starts at (its state is `state`), every operation placed before settled; null: the start. */
  fromRevision: number | null;
  state: ModelState;
  /** Whether `state` is the only state the history allows at `fromRevision` (exclusive mode); else the search starts over. */
  pinned: boolean;
}


/**
 * The revision order, built and verified incrementally (see the header). `add` acknowledged operations
 * (patched outcomes), `addUnknown` unknown-outcome ones, then `advance`/`finish`. After a failure nothing
 * more is processed: `failure` and `windowOperations()` say where the search takes over.
 */
export class RevisionOrder {
  private readonly options: RevisionOptions;
  private state: ModelState;
  /** The revision the state is at (shared mode: the last write's, or the initial one). */
  private at: number;
  private readonly heap = new MinHeap<Entry>(before);
  private readonly returns = new ReturnIndex();
  /** Unknown-outcome operations not resolved, with the real-time bound on their position. */
  private readonly unknown = new Map<number, { op: Operation; bound: number; boundIndex: number }>();
  /** Unknown lease grants by lease id, applied when a request first needs their lease. */
  private readonly lazyGrants = new Map<string, number>();
  /**
   * Live: revisions whose state came from the watch's events before any operation claimed them (their
   * write still in flight), until the write arrives and makes the same events (verify). A search window
   * never starts after the first of them: their states are the watch's word until then.
   */
  private readonly provisional = new Map<number, { events: readonly WatchEvent[]; time: number }>();
  /** Recent states by revision (ascending), for late requests and the search window. */
  private readonly kept: Kept[] = [];
  private readonly keepStates: number;
  failure: RevisionFailure | undefined;
  private failed: { index: number; op: Operation } | undefined;
  private windowStart = 0;
  private readonly initial: ModelState;
  /** Whether kept states were dropped (retired): the initial state is gone. */
  private trimmed = false;
  /** Operations processed (placed in the order, or checked against a kept state). */
  processed = 0;
  /** Called with each processed operation's index (live lag). */
  onProcessed: ((index: number) => void) | undefined;
  /** Offline: each placed operation, in linearization order, once no failure can reach back to it (see retire). */
  onRetired: ((index: number, op: Operation) => void) | undefined;
  /** Offline real time: the latest call among placed operations, and which. */
  private maxCall = -Infinity;
  private maxCallAt = { index: -1, revision: 0 };

  constructor(options: RevisionOptions) {
    this.options = options;
    this.state = options.initialState ?? initialState(options, options.initialRevision);
    this.initial = this.state;
    this.at = options.initialRevision;
    if (options.afterCall !== undefined) {
      this.maxCall = options.afterCall.call;
      this.maxCallAt = { index: options.afterCall.index, revision: options.initialRevision };
    }
    this.keepStates = Math.max(2, options.keepStates ?? 4096);
    this.kept.push({ revision: this.at, state: this.state, placed: [] });
  }

  /** Operations added and not yet placed. */
  get pending(): number {
    return this.heap.size;
  }

  /** Unknown-outcome operations neither resolved nor applied. */
  get unresolved(): number {
    return this.unknown.size;
  }

  /** The state the order reached, and its revision. */
  get current(): { revision: number; state: ModelState } {
    return { revision: this.at, state: this.state };
  }

  /**
   * The highest revision whose writer is placed (not only shown by the watch): in exclusive mode a value seen
   * at or below it was written by a placed operation, so no unresolved unknown-outcome write can be its writer.
   */
  get placedRevision(): number {
    let placed = this.at;
    for (const revision of this.provisional.keys()) placed = Math.min(placed, revision - 1);
    return placed;
  }

  /** Adds an acknowledged operation (role `linearize`, with its patched outcome). */
  add(index: number, op: Operation): void {
    if (this.failure) return;
    const revision = (op.response as { revision?: number } | undefined)?.revision;
    if (revision === undefined || op.return === null) {
      this.fail(`${describe(op, index)} shows no revision`, { index, op }, -Infinity);
      return;
    }
    const entry = entryFor(index, op, revision);
    // Real time: everything that returned before this call sits at or before it (a revoke may sit after its write slot).
    // Offline, real time is checked as operations are placed (place): the search by call time is live-only.
    const bound = this.options.eager ? this.returns.boundBefore(op.call) : noBound;
    if (bound.pos > (entry.kind === 'revoke' ? entry.pos + 1 : entry.pos)) {
      const other = Math.floor(bound.pos / 2);
      this.fail(`${describe(op, index)} at revision ${entry.revision} was called after operation ${bound.index} had returned at revision ${other}`, { index, op }, Math.min(entry.revision, other));
      return;
    }
    this.returns.add(op.return, entry.pos, index);
    this.heap.push(entry);
    this.drainContiguous();
  }

  /**
   * Adds an unknown-outcome operation: never applied unless resolved (`resolve`), except lease grants,
   * applied when first needed; after a failure the search window takes it as optional.
   */
  addUnknown(index: number, op: Operation): void {
    if (this.failure) return;
    const bound = this.options.eager ? this.returns.boundBefore(op.call) : noBound;
    this.unknown.set(index, { op, bound: bound.pos, boundIndex: bound.index });
    if (op.request.type === 'leaseGrant') this.lazyGrants.set(op.request.id, index);
  }

  /** An unknown-outcome write whose effect was observed: known now, at the revision shown (patch.ts resolvedOperation). */
  resolve(index: number, resolved: Operation): void {
    if (this.failure) return;
    const waiting = this.unknown.get(index);
    const revision = (resolved.response as { revision?: number } | undefined)?.revision;
    if (!waiting || revision === undefined) return;
    this.unknown.delete(index);
    const entry = entryFor(index, resolved, revision);
    if (waiting.bound > entry.pos) {
      this.fail(`${describe(resolved, index)} took effect at revision ${revision}, but was called after operation ${waiting.boundIndex} had returned at revision ${Math.floor(waiting.bound / 2)}`, { index, op: resolved }, revision);
      return;
    }
    if (revision <= this.at && !this.provisional.has(revision)) {
      this.fail(`${describe(resolved, index)} was observed at revision ${revision}, after the order had passed it`, { index, op: resolved }, revision);
      return;
    }
    this.heap.push(entry);
    this.drainContiguous();
  }

  /**
   * Every operation called before `watermark` has been added: process what is complete. `cap`: do not pass
   * this revision (live shared mode, while an unknown write the watch has not shown could sit below it).
   */
  advance(watermark: number, cap = Infinity): void {
    if (this.failure) return;
    const bound = this.returns.fold(watermark);
    this.drain(Math.min(watermark === Infinity ? Infinity : bound, cap * 2 + 1));
  }

  /**
   * Live, exclusive mode: the next revision the order waits on, if it waits for one: nobody claimed it yet,
   * or a revoke that may or may not have made it waits for the watermark. The watch's events for it let
   * the order move on (applyWatched).
   */
  get waitsFor(): number | undefined {
    const next = this.heap.peek();
    if (this.options.mode !== 'exclusive' || next === undefined) return undefined;
    if (!this.ready(next) || (next.kind === 'revoke' && next.revision === this.at + 1)) return this.at + 1;
    return undefined;
  }

  /** Exclusive mode: the next operation waits for a revision nobody has claimed yet. */
  get blocked(): boolean {
    const next = this.heap.peek();
    return this.options.mode === 'exclusive' && next !== undefined && !this.ready(next);
  }

  /** Stops the revision path (live: a revision left unclaimed too long); the search takes over. */
  giveUp(reason: string): void {
    const next = this.heap.pop();
    if (next) this.fail(reason, next, this.at + 1);
  }

  /**
   * Live, exclusive mode: the order waits for revision `revision` (= the state's + 1) and a watch delivered
   * its events: the state moves on from them; the write that made them is verified when it arrives.
   */
  applyWatched(revision: number, events: readonly WatchEvent[], time: number): void {
    if (this.failure || !this.options.eager || this.options.mode !== 'exclusive' || revision !== this.at + 1) return;
    const next = applyWatchEvents(this.state, revision, events, this.options);
    this.state = next;
    this.at = revision;
    this.kept.push({ revision, state: next, placed: [] });
    this.provisional.set(revision, { events, time });
    this.drainContiguous();
  }

  /** Revisions applied from the watch whose write has not arrived yet, with when the watch delivered them. */
  get unverified(): ReadonlyMap<number, { events: readonly WatchEvent[]; time: number }> {
    return this.provisional;
  }

  /** The state at a revision, if still kept (kept states are in revision order: a binary search). */
  stateAt(revision: number): ModelState | undefined {
    const kept = this.kept;
    let lo = 0;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid]!.revision < revision) lo = mid + 1;
      else hi = mid;
    }
    return kept[lo]?.revision === revision ? kept[lo]!.state : undefined;
  }

  /** The state before a kept revision (for explaining its events), if still kept. */
  stateBefore(revision: number): ModelState | undefined {
    return this.keptAt(revision - 1)?.state;
  }

  /** Stops the revision path at a revision (live: one applied from the watch that no write made in time). */
  giveUpAt(reason: string, revision: number): void {
    this.fail(reason, this.heap.peek(), revision);
  }

  /** Processes everything added: the stream has ended. */
  finish(): void {
    this.advance(Infinity);
    while (!this.failure && this.fillGapFromWatch()) this.drain(Infinity);
    if (this.failure) return;
    const [unmade] = this.provisional.keys();
    if (unmade !== undefined) {
      this.giveUpAt(`the watch showed revision ${unmade}, and no operation of the history made it`, unmade);
      return;
    }
    // What is left waits for a revision nobody claimed (exclusive mode): only the search can fill it.
    const next = this.heap.pop();
    if (next) this.fail(`no operation claims revision ${this.at + 1}, which ${describe(next.op, next.index)} at revision ${next.revision} follows`, next, this.at + 1);
  }

  /** Offline, at the end: the gap at the next revision, filled by the one unknown operation its events explain. */
  private fillGapFromWatch(): boolean {
    const next = this.heap.peek();
    const delivered = this.options.deliveries?.get(this.at + 1);
    if (next === undefined || delivered === undefined || this.options.mode !== 'exclusive' || this.ready(next)) return false;
    const found: { index: number; op: Operation }[] = [];
    for (const [index, { op }] of this.unknown) {
      if (op.call > delivered.time || op.request.type === 'leaseGrant' || op.request.type === 'compact') continue;
      const resolved = explainsEvents(op, this.state, this.at + 1, delivered, this.options);
      if (resolved) found.push({ index, op: resolved });
    }
    if (found.length === 0 || new Set(found.map((f) => JSON.stringify(f.op.request))).size > 1) return false;
    // Identical requests are interchangeable: the earliest called took it.
    const chosen = found.sort((a, b) => a.op.call - b.op.call)[0]!;
    this.resolve(chosen.index, chosen.op);
    return this.failure === undefined;
  }

  /** Processes entries at positions up to `limit` (inclusive), stopping at a revision gap. */
  private drain(limit: number): void {
    for (;;) {
      const e = this.heap.peek();
      if (!e || this.failure || e.pos > limit || !this.ready(e)) return;
      this.heap.pop();
      this.process(e);
    }
  }

  /** Exclusive mode, live: a write that follows the state's revision goes in at once (nothing else can precede it). */
  private drainContiguous(): void {
    if (!this.options.eager || this.options.mode !== 'exclusive') return;
    for (;;) {
      const e = this.heap.peek();
      // A revoke takes its revision only if no other operation claims it, and that one may still be in
      // flight: revokes wait for the watermark (advance), which knows every claimer.
      if (!e || this.failure || !this.ready(e) || (e.kind === 'revoke' && e.revision > this.at && !this.provisional.has(e.revision))) return;
      this.heap.pop();
      this.process(e);
    }
  }

  /** Exclusive mode: a write needs the revision before its own, a request its revision. */
  private ready(e: Entry): boolean {
    if (this.options.mode !== 'exclusive') return true;
    return e.kind === 'other' ? e.revision <= this.at : e.revision <= this.at + 1;
  }

  private process(e: Entry): void {
    if (e.kind !== 'other' && this.provisional.has(e.revision) && this.verifyWatched(e)) return;
    if (e.kind === 'revoke') {
      if (e.revision > this.at && holdsLease(this.state, (e.op.request as { id: string }).id)) {
        this.place(e, true);
        return;
      }
      // It wrote nothing: it sits among the requests at its revision, in their order.
      e.kind = 'other';
      e.pos = e.revision * 2 + 1;
      this.heap.push(e);
      return;
    }
    if (e.kind === 'write') {
      if (e.revision <= this.at && this.options.mode === 'exclusive') {
        this.fail(`${describe(e.op, e.index)} claims revision ${e.revision}, which the order already passed`, e, e.revision);
        return;
      }
      this.place(e, true);
      return;
    }
    if (e.revision < this.at && this.options.mode === 'exclusive') {
      if (this.options.eager) this.lateRequest(e);
      else this.fail(`${describe(e.op, e.index)} at revision ${e.revision} came after the order passed revision ${this.at}`, e, e.revision);
    } else this.place(e, false);
  }

  /**
   * The write of a revision applied from the watch arrived: it must make exactly those events from the state
   * before (else the search decides, from before the first revision the watch alone vouched for).
   */
  private verifyWatched(e: Entry): boolean {
    const watched = this.provisional.get(e.revision)!;
    const before = this.keptAt(e.revision - 1);
    const at = this.keptAt(e.revision);
    const why: Why = { reason: '' };
    const made: WatchEvent[] = [];
    const next = before === undefined || at === undefined ? null : step(before.state, e.op.request, e.op.response, this.options, why, made);
    // The same events in any order: a revoke's deletes come in the model's key order, etcd's sorted.
    const byKey = (a: WatchEvent, b: WatchEvent): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    made.sort(byKey);
    const expected = [...watched.events].sort(byKey);
    const same =
      next !== null &&
      at !== undefined &&
      made.length === expected.length &&
      made.every((m, i) => {
        const w = expected[i]!;
        if (m.type !== w.type || m.key !== w.key) return false;
        if (m.type === 'delete') return true;
        const mine = next.keys.get(m.key);
        const theirs = at.state.keys.get(m.key);
        return mine !== undefined && theirs !== undefined && mine.value === theirs.value && mine.create === theirs.create && mine.version === theirs.version && mine.lease === theirs.lease;
      });
    if (e.kind === 'revoke' && !same) return false; // it may have written nothing, at its revision
    if (!same) {
      this.fail(`${describe(e.op, e.index)} at revision ${e.revision} does not make the events the watch showed there${why.reason ? `: ${why.reason}` : ''}`, e, e.revision);
      return true;
    }
    this.provisional.delete(e.revision);
    this.settle(at, e.index, e.op, at.state);
    return true;
  }

  /** Steps the entry from the current state and records it. */
  private place(e: Entry, writes: boolean): void {
    this.applyLazyGrants(e.op.request);
    if (!this.options.eager && e.op.return !== null && e.op.return < this.maxCall) {
      const b = this.maxCallAt;
      this.fail(`${describe(e.op, e.index)} at revision ${e.revision} returned before operation ${b.index} at revision ${b.revision} was called, yet revisions order it after`, e, Math.min(e.revision, b.revision));
      return;
    }
    const why: Why = { reason: '' };
    const next = step(this.state, e.op.request, e.op.response, this.options, why);
    if (next === null) {
      this.fail(`${describe(e.op, e.index)} at revision ${e.revision}: ${why.reason}`, e, e.revision);
      return;
    }
    this.state = next;
    if (writes) {
      this.at = e.revision;
      this.kept.push({ revision: e.revision, state: next, placed: [] });
      // Trimmed in halves, not one at a time: splicing the front of a long array on every write was costly.
      if (this.kept.length > this.keepStates * 2) this.retire(this.kept.length - this.keepStates);
    }
    this.settle(this.kept[this.kept.length - 1]!, e.index, e.op, next);
  }

  /** Hands over the operations of the oldest `count` kept revisions (no search window can start before them now). */
  retire(count: number = this.kept.length): void {
    if (count > 0) this.trimmed = true;
    for (const k of this.kept.splice(0, count)) for (const p of k.placed) this.onRetired?.(p.index, p.op);
  }

  private settle(at: Kept, index: number, op: Operation, state: ModelState): void {
    if (at === this.kept[this.kept.length - 1]) at.state = state;
    at.placed.push({ index, op });
    if (op.call > this.maxCall) {
      this.maxCall = op.call;
      this.maxCallAt = { index, revision: this.at };
    }
    this.processed++;
    this.onProcessed?.(index);
  }

  /**
   * A request at an older revision than the state's (eager mode: later writes went in first). A read is
   * checked against the kept state at its revision. A lease grant or compaction is checked there and applied
   * now: nothing can observe a lease's absence or a compaction not yet made (their failures are errors,
   * which are not checked), so applying it later changes no check. A revoke that wrote nothing is applied
   * now too, unless a write since its revision used the lease.
   */
  private lateRequest(e: Entry): void {
    const keptAt = this.keptAt(e.revision);
    const { request } = e.op;
    const why: Why = { reason: '' };
    if (keptAt === undefined) {
      this.fail(`${describe(e.op, e.index)} at revision ${e.revision} arrived after the state passed revision ${this.at} and older states were dropped`, e, e.revision);
      return;
    }
    if (request.type === 'leaseRevoke' && this.usedSince(request.id, e.revision)) {
      this.fail(`${describe(e.op, e.index)} at revision ${e.revision}: a later write used its lease`, e, e.revision);
      return;
    }
    if (step(keptAt.state, request, e.op.response, this.options, why) === null) {
      this.fail(`${describe(e.op, e.index)} at revision ${e.revision}: ${why.reason}`, e, e.revision);
      return;
    }
    if (request.type !== 'leaseGrant' && request.type !== 'compact' && request.type !== 'leaseRevoke') {
      this.settle(keptAt, e.index, e.op, keptAt.state);
      return;
    }
    const next = step(this.state, request, undefined, this.options, why);
    if (next === null) {
      this.fail(`${describe(e.op, e.index)} at revision ${e.revision} cannot apply at revision ${this.at}`, e, e.revision);
      return;
    }
    this.state = next;
    this.settle(this.kept[this.kept.length - 1]!, e.index, e.op, next);
  }

  /** The kept state at a revision (exclusive mode keeps every revision in its window). */
  private keptAt(revision: number): Kept | undefined {
    for (let i = this.kept.length - 1; i >= 0; i--) if (this.kept[i]!.revision <= revision) return this.kept[i]!.revision === revision ? this.kept[i] : undefined;
    return undefined;
  }

  /** Whether a key written after `revision` held `lease` in a kept state. */
  private usedSince(lease: string, revision: number): boolean {
    if (this.kept[0]!.revision > revision + 1) return true; // cannot tell: assume it did
    for (const k of this.kept) {
      if (k.revision <= revision) continue;
      for (const key of k.state.keys.values()) if (key.lease === lease && key.mod > revision) return true;
    }
    return false;
  }

  private applyLazyGrants(request: EtcdRequest): void {
    for (const lease of leasesUsed(request)) {
      const index = this.lazyGrants.get(lease);
      if (index === undefined || this.state.leases.has(lease)) continue;
      const grant = this.unknown.get(index)!.op;
      this.lazyGrants.delete(lease);
      this.unknown.delete(index);
      const next = step(this.state, grant.request, undefined, this.options);
      if (next === null) continue;
      this.state = next;
      this.settle(this.kept[this.kept.length - 1]!, index, grant, next);
    }
  }

  /**
   * Stops the revision path. The search window starts at the latest kept state below `revision`, which
   * exclusive mode pins exactly (every revision up to it claimed, unknown writes could not take one);
   * shared mode does not (an unobserved write may have taken a gap), so there the window is everything.
   */
  private fail(reason: string, at: { index: number; op: Operation } | undefined, revision: number): void {
    if (this.failure) return;
    // Never start a window after a state only the watch vouches for.
    for (const r of this.provisional.keys()) revision = Math.min(revision, r);
    let start = 0;
    if (this.options.mode === 'exclusive') for (let i = 0; i < this.kept.length; i++) if (this.kept[i]!.revision < revision) start = i;
    const from = this.kept[start]!;
    // The initial state is pinned in either mode (the window is then the whole stream); a later one only in
    // exclusive mode, where every revision up to it is claimed.
    const whole = start === 0 && !this.trimmed;
    const pinned = whole || (this.options.mode === 'exclusive' && from.revision < revision);
    this.failure = { reason, operation: at?.index, fromRevision: whole ? null : from.revision, state: whole ? this.initial : from.state, pinned };
    this.failed = at;
    // A whole window takes everything, the requests placed at the initial revision too.
    this.windowStart = whole ? -1 : start;
  }

  /**
   * After a failure, the operations the search window takes (with `failure.state` as its start): those placed
   * after the window's state, the one that failed, those not placed, and the unknown-outcome ones (optional).
   * Meaningful only when `failure.pinned`; otherwise the search takes the whole history.
   */
  windowOperations(): { index: number; op: Operation }[] {
    const out: { index: number; op: Operation }[] = [];
    for (let i = this.windowStart + 1; i < this.kept.length; i++) out.push(...this.kept[i]!.placed);
    if (this.failed) out.push(this.failed);
    for (const e of this.heap.values()) out.push({ index: e.index, op: e.op });
    for (const [index, { op }] of this.unknown) out.push({ index, op });
    // The failed operation may still sit in the heap (giveUpAt): each once.
    const once = new Map(out.map((o) => [o.index, o]));
    return [...once.values()].sort((a, b) => a.index - b.index);
  }

  /** After a failure: hands over what precedes the search window (through the window's own revision). */
  retireBeforeWindow(): void {
    this.retire(this.windowStart + 1);
    this.windowStart = -1;
  }
}
