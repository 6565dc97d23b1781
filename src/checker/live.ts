/**
 * The live checker: takes each operation as it completes and keeps a running verdict, with bounded memory.
 *
 * Contract with the producer (the probe recorder): push every completed operation (or one abandoned with an
 * unknown outcome) in the order they complete, then call advance(t) once no operation with a call before t
 * can still be pushed, i.e. t = the earliest call among operations still in flight (or now when none is).
 * Watch responses go to pushWatchResponse as they arrive.
 *
 * Streams with revisions (our probes record them) take the revision-ordered path (revision.ts) in its live
 * form: an operation is checked as soon as the state at its revision is known, against that exact state,
 * and real time is checked against revisions as operations arrive. Unknown-outcome writes do not hold
 * anything back: one whose unique value a read or watch event shows becomes a known write at the revision
 * shown, the moment either is seen; one nobody observed is taken as never applied. In exclusive mode a
 * revision nobody has claimed yet (a write still in flight, or an unknown write the watch has not shown)
 * holds the operations after it: those are the operations "waiting for the watch" in the stats. In shared
 * mode, while an unknown write is unresolved, the order does not pass the watch's progress (a revision the
 * watch has not delivered could be that write's).
 *
 * Where the revision path cannot place an operation (a violation, or a revision left unclaimed for the
 * resolve window), the search (live-search.ts, the engine of the offline check) takes over from the state
 * the order pins, with the operations not yet settled. In exclusive mode the window may close: once the
 * search pins a later state (closeWindow, close-window.ts), the revision order resumes from it (settleWindow);
 * otherwise the search carries on to the end of the stream. In shared
 * mode no state is pinned (an unobserved write may have taken a revision between ours): the live verdict
 * then becomes inconclusive and the offline check at the end decides.
 *
 * Stale reads (serializable, or at a past revision) are not linearized. In exclusive mode, while the
 * revision order has the stream, each is checked against the state at the revision it names once every
 * write up to that revision is placed (that state is then the only one the history allows, as the
 * offline check's certain case). A read whose state is no longer kept, or that arrives while a search
 * has the stream, is left to the offline check, which judges every stale read (check.ts).
 */
import { isWriteRequest, type ClusterMode, type EtcdResponse, type Operation, type WatchEvent, type WatchRequest, type WatchResponse } from '../domain/index.ts';
import { roleOf } from './roles.ts';
import { liveEngineOptions, SearchLiveChecker } from './live-search.ts';
import { forEachObservedValue, forEachWatchedValue, RecentObservations, resolvedOperation, writtenValues, type Observation } from './patch.ts';
import { defaultResolveWindowMs, LagWindow, type LiveCheckerOptions, type LiveStats } from './live-options.ts';
import { summarize, type ModelOptions, type ModelState } from './model-state.ts';
import { closeWindow } from './close-window.ts';
import { staleReadProblem } from './stale-reads.ts';
import { MinHeap } from '../min-heap.ts';
import { RevisionOrder } from './revision.ts';
import { explainsEvents } from './watch-deliveries.ts';
import type { Verdict, ViolationEvidence } from './result.ts';

/** A search window open on the live stream: where it starts, its operations, and what arrived since it opened. */
interface OpenWindow {
  state: ModelState;
  fromRevision: number | null;
  reason: string;
  /** The window's operations when it opened (the order's windowOperations). */
  initial: { index: number; op: Operation }[];
  /** Every operation the window holds, by index. */
  ops: Map<number, Operation>;
  /** What was pushed while it was open, in order: replayed when it closes (or handed to the search). */
  events: ({ index: number; op: Operation } | { response: WatchResponse; stream: { id: number; request?: WatchRequest } | undefined })[];
  /** The window's size at which the next attempt to close it is made (attempts cost a search of a prefix). */
  nextAttempt: number;
  /** The search over the window to the end of the stream, fed all along: the live verdict while the window is open, and the rest of the stream's if it never closes. */
  search: SearchLiveChecker;
}

/** An open window with more operations than this goes to the search for the rest of the stream. */
const liveWindowLimit = 8192;
/** Wall-clock budget of one attempt to close a window (then the search takes the window over). */
const closeAttemptMs = 5000;

/** A watch stream covers the run's keys when its range holds the whole prefix (exclusive: every key). */
function coversPrefix(request: WatchRequest, prefix: string): boolean {
  if (request.end === '\u0000') return request.key <= prefix;
  if (request.end === undefined) return false;
  return request.key <= prefix && (prefix === '' ? false : request.end >= prefixEndOf(prefix));
}

function prefixEndOf(prefix: string): string {
  const code = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(code + 1);
}

export class LiveChecker {
  private readonly options: LiveCheckerOptions;
  private readonly mode: ClusterMode;
  private order: RevisionOrder | undefined;
  /** A search window waiting to close (exclusive mode, see closeWindow in close-window.ts), or undefined. */
  private window: OpenWindow | undefined;
  /** Search windows that closed: the revision order resumed after each. */
  private windowsClosed = 0;
  /** A closed window's operations are being replayed (settleWindow): a window opening meanwhile is advanced after. */
  private replaying = false;
  /** The revision the current order resumed from after a closed window (null: it started at the beginning). */
  private resumedAt: number | null = null;
  private search: SearchLiveChecker | undefined;
  /** Set when the revision path failed in shared mode: the live verdict is inconclusive from then on. */
  private leftToOffline: string | undefined;
  private searchReason: string | undefined;
  private next = 0;
  private resolvedCount = 0;
  private readonly pushedAt = new Map<number, number>();
  private readonly lags = new LagWindow();
  private readonly resolveWindow: number;
  /** Unknown-outcome writes not resolved yet: by index, and by the values they write. */
  private readonly unresolved = new Map<number, { op: Operation; values: string[] }>();
  private readonly unresolvedByValue = new Map<string, number>();
  /** Recent observations (value -> time and revision), kept while an unpushed write could match them. */
  private readonly observations = new RecentObservations();
  /** The highest revision a watch covering the run's keys has delivered everything up to. */
  private watchRevision = -Infinity;
  private readonly covering = new Map<number, boolean>();
  /** Since when (history time) the order has been held by a revision nobody claims. */
  private stuckSince: number | undefined;
  private lastWatermark = -Infinity;
  /** Unknown-outcome writes not resolved (deletes and revokes carry no value to observe), for filling a revision gap. */
  private readonly unknownWriters = new Map<number, Operation>();
  /** Watch events by revision, as first delivered, from the revision the order is at on. */
  private readonly events = new Map<number, { time: number; events: WatchEvent[] }>();
  private readonly model: ModelOptions;
  /** Exclusive mode: stale reads waiting for every write up to the revision they name to be placed. */
  private readonly staleReads = new MinHeap<{ index: number; op: Operation; revision: number }>((a, b) => a.revision < b.revision);
  /** The first stale read that matches no state it could have read (the live verdict is then a violation). */
  private staleViolation: ViolationEvidence | undefined;

  constructor(options: LiveCheckerOptions = {}) {
    this.options = options;
    this.mode = options.mode ?? 'exclusive';
    this.resolveWindow = (options.resolveWindowMs ?? defaultResolveWindowMs) * 1e6;
    this.model = { mode: this.mode, prefix: options.prefix ?? '', trackRevision: true, trackVersion: options.trackVersion ?? true };
    const trackRevision = options.trackRevision ?? true;
    if (!trackRevision) {
      this.search = new SearchLiveChecker(options);
      this.searchReason = 'the stream carries no revisions';
      return;
    }
    this.order = this.newOrder(undefined);
  }

  /** A revision order from the start, or from the state a closed search window pinned. */
  private newOrder(start: { state: ModelState; revision: number } | undefined): RevisionOrder {
    const order = new RevisionOrder({
      mode: this.mode,
      prefix: this.options.prefix ?? '',
      initialRevision: start?.revision ?? this.options.initialRevision ?? 1,
      trackRevision: true,
      trackVersion: this.options.trackVersion ?? true,
      eager: true,
      ...(start === undefined ? {} : { initialState: start.state }),
    });
    order.onProcessed = (index) => {
      const at = this.pushedAt.get(index);
      if (at === undefined) return;
      this.pushedAt.delete(index);
      this.lags.add(performance.now() - at);
    };
    return order;
  }

  /** Adds a completed (or abandoned) operation; returns its index in the stream. */
  push(op: Operation): number {
    const index = this.next++;
    if (this.search) return this.search.pushAt(index, op);
    if (op.call < this.lastWatermark) throw new RangeError(`operation ${index} was added after the watermark passed its call (${op.call} < ${this.lastWatermark})`);
    this.dispatch(index, op);
    return index;
  }

  /** An operation to the search, the open window or the revision order, whichever has the stream now. */
  private dispatch(index: number, op: Operation): void {
    if (this.search) {
      this.search.pushAt(index, op);
      return;
    }
    if (this.window) {
      const role = roleOf(op);
      if (role === 'linearize' || role === 'optional') this.window.ops.set(index, op);
      this.window.events.push({ index, op });
      this.window.search.pushAt(index, op);
      return;
    }
    if (this.leftToOffline !== undefined) return;
    const role = roleOf(op);
    if (op.return !== null && op.response) this.observeResponse(op.response, op.return);
    if (role === 'linearize') {
      this.pushedAt.set(index, performance.now());
      this.order!.add(index, op);
    } else if (role === 'optional') {
      this.order!.addUnknown(index, op);
      if (isWriteRequest(op.request) || op.request.type === 'leaseRevoke') this.unknownWriters.set(index, op);
      this.awaitObservation(index, op);
    } else if (role === 'stale' && this.mode === 'exclusive') {
      const revision = staleReadRevision(op);
      if (revision !== undefined) this.staleReads.push({ index, op, revision });
    }
    this.fillGaps();
    this.afterChange();
  }

  /** Adds a watch response; `stream` (its id and request) lets the progress of watches over the run's keys count. */
  pushWatchResponse(response: WatchResponse, stream?: { id: number; request?: WatchRequest }): void {
    this.dispatchWatch(response, stream);
  }

  private dispatchWatch(response: WatchResponse, stream: { id: number; request?: WatchRequest } | undefined): void {
    if (this.search) {
      this.search.pushWatchResponse(response);
      return;
    }
    if (this.window) {
      this.window.events.push({ response, stream });
      this.window.search.pushWatchResponse(response);
      return;
    }
    if (this.leftToOffline !== undefined) return;
    forEachWatchedValue(response, (value, revision) => this.observe(value, response.time, revision));
    this.recordEvents(response);
    if (stream !== undefined && !response.canceled && response.error === undefined) {
      // The request comes with a stream's first response (later ones may name the stream only).
      let covers = this.covering.get(stream.id);
      if (covers === undefined) this.covering.set(stream.id, (covers = stream.request !== undefined && coversPrefix(stream.request, this.options.prefix ?? '')));
      if (covers) {
        const delivered = response.progress ? response.revision : Math.max(...response.events.map((e) => e.modRevision));
        if (delivered !== undefined && Number.isFinite(delivered)) this.watchRevision = Math.max(this.watchRevision, delivered);
      }
    }
    this.afterChange();
  }

  /** Settles everything before `watermark` (see the contract above). */
  advance(watermark: number): void {
    this.lastWatermark = Math.max(this.lastWatermark, watermark);
    if (this.search) {
      this.search.advance(watermark);
      return;
    }
    if (this.window) {
      this.window.search.advance(watermark);
      // The search found a violation or gave up: that is the verdict, the window stays with it.
      if (this.window.search.verdict !== 'linearizable') this.handOver();
      else if (this.window.ops.size >= this.window.nextAttempt) this.settleWindow(false);
      return;
    }
    if (this.leftToOffline !== undefined) return;
    const order = this.order!;
    // Unknown writes not observed within the resolve window are taken as never applied (they stay optional
    // for a search window).
    for (const [index, { op, values }] of this.unresolved) {
      if (op.call + this.resolveWindow >= watermark) continue;
      this.unresolved.delete(index);
      for (const v of values) this.unresolvedByValue.delete(v);
    }
    // Shared mode: with an unknown write unresolved, a revision the watch has not delivered may be its.
    const cap = this.mode === 'shared' && this.unresolved.size > 0 ? this.watchRevision : Infinity;
    order.advance(watermark, cap);
    this.observations.forgetBefore(watermark);
    this.fillGaps();
    this.watchStuck(watermark);
    this.afterChange();
  }

  /** Settles everything pushed: call when the stream has ended. */
  finish(): Verdict {
    for (;;) {
      if (this.search) {
        this.search.finish();
        return this.verdict;
      }
      if (this.leftToOffline !== undefined) return this.verdict;
      if (this.window) {
        this.settleWindow(true);
        continue;
      }
      this.order!.finish();
      this.afterChange();
      if (!this.handedOn()) return this.verdict;
    }
  }

  get verdict(): Verdict {
    if (this.staleViolation) return 'violation';
    if (this.search) return this.search.verdict;
    if (this.window) return this.window.search.verdict;
    return this.leftToOffline !== undefined ? 'inconclusive' : 'linearizable';
  }

  get violation(): ViolationEvidence | undefined {
    return this.staleViolation ?? (this.search ?? this.window?.search)?.violation;
  }

  get inconclusiveReason(): string | undefined {
    const search = this.search ?? this.window?.search;
    return search ? search.inconclusiveReason : this.leftToOffline;
  }

  stats(): LiveStats {
    if (this.search) return { ...this.search.stats(), received: this.next, ...(this.searchReason === undefined ? {} : { searchReason: this.searchReason }) };
    const order = this.order!;
    const windows = this.windowsClosed > 0 ? { windowsClosed: this.windowsClosed } : {};
    if (this.window) {
      const { ops, fromRevision, reason } = this.window;
      const searchReason = `a search window ${fromRevision === null ? 'from the start' : `from revision ${fromRevision}`} is open (${ops.size} operations): ${reason}`;
      return { ...this.revisionStats(order), waitingForWatch: order.pending + ops.size, method: 'search', searchReason, ...windows };
    }
    return {
      ...this.revisionStats(order),
      method: 'revision',
      ...windows,
      ...(this.leftToOffline === undefined ? (this.searchReason === undefined ? {} : { searchReason: this.searchReason }) : { searchReason: this.leftToOffline }),
    };
  }

  private revisionStats(order: RevisionOrder): Omit<LiveStats, 'method'> {
    return {
      received: this.next,
      processed: order.processed,
      pendingOperations: this.pushedAt.size,
      resolved: this.resolvedCount,
      frontier: 1,
      ...this.lags.percentiles(),
      waitingForWatch: order.pending + this.recentUnknownWriters(),
    };
  }

  /** Unknown-outcome writes still within their resolve window: the watch may yet show them. */
  private recentUnknownWriters(): number {
    let n = 0;
    for (const op of this.unknownWriters.values()) if (op.call + this.resolveWindow >= this.lastWatermark) n++;
    return n;
  }

  private awaitObservation(index: number, op: Operation): void {
    const values = writtenValues(op);
    for (const value of values) {
      const seen = this.observations.get(value);
      if (seen && seen.time >= op.call) {
        this.resolveWith(index, op, seen, value);
        return;
      }
    }
    if (values.length === 0) return;
    this.unresolved.set(index, { op, values });
    for (const v of values) this.unresolvedByValue.set(v, index);
  }

  /**
   * The values a response shows, for resolving unknown-outcome writes. In exclusive mode a value at a revision
   * whose writer the order placed cannot be an unresolved write's (values are unique): skipped, which spares a
   * list of hundreds of keys hundreds of lookups.
   */
  private observeResponse(response: EtcdResponse, time: number): void {
    const placed = this.mode === 'exclusive' && this.order !== undefined && !this.order.failure ? this.order.placedRevision : -Infinity;
    forEachObservedValue(response, (value, revision) => {
      if (revision === undefined || revision > placed) this.observe(value, time, revision);
    });
  }

  private observe(value: string | undefined, time: number, revision: number | undefined): void {
    if (value === undefined) return;
    const waiting = this.unresolvedByValue.get(value);
    if (waiting !== undefined) {
      const { op, values } = this.unresolved.get(waiting)!;
      if (time >= op.call) {
        this.unresolved.delete(waiting);
        for (const v of values) this.unresolvedByValue.delete(v);
        this.resolveWith(waiting, op, { time, revision }, value);
        return;
      }
    }
    this.observations.add(value, time, revision);
  }

  private resolveWith(index: number, op: Operation, seen: Observation, value: string): void {
    this.unknownWriters.delete(index);
    this.resolvedCount++;
    this.pushedAt.set(index, performance.now());
    this.order!.resolve(index, resolvedOperation(op, seen, value));
  }

  private recordEvents(response: WatchResponse): void {
    const at = this.order?.current.revision ?? 0;
    for (const event of response.events) {
      if (event.modRevision <= at) continue;
      const seen = this.events.get(event.modRevision);
      if (seen === undefined) this.events.set(event.modRevision, { time: response.time, events: [event] });
      else if (seen.time === response.time) seen.events.push(event);
    }
    this.fillGaps();
  }

  /**
   * Exclusive mode: the order waits for a revision nobody claimed, and a watch delivered its events. An
   * unknown-outcome write whose step from the current state makes exactly those events took it (patch.ts
   * does the same offline for deletes, by elimination); with several different candidates nothing is decided.
   */
  private fillGaps(): void {
    const order = this.order;
    if (!order) return;
    // Revisions the state took from the watch: their writer, if it is an unknown-outcome operation.
    for (const [revision, watched] of order.unverified) {
      if (order.failure) return;
      const before = order.stateBefore(revision);
      if (before !== undefined) this.attribute(revision, before, watched);
    }
    while (!order.failure && order.waitsFor !== undefined) {
      const { revision, state } = order.current;
      for (const r of this.events.keys()) if (r <= revision) this.events.delete(r);
      const delivered = this.events.get(revision + 1);
      if (delivered === undefined) return;
      if (this.attribute(revision + 1, state, delivered)) continue;
      if (this.options.watchEventsCarryLeases !== true) return;
      // The write is still in flight, or the watch alone can say what it did: the state moves on from its
      // events, and the write is verified against them when it arrives.
      order.applyWatched(revision + 1, delivered.events, delivered.time);
    }
  }

  /**
   * An unknown-outcome write whose step from `before` makes exactly the events delivered at `revision` took
   * it (patch.ts does the same offline for deletes, by elimination). An operation still in flight may be the
   * writer, unless it was called after the events were delivered: only once the watermark passed the
   * delivery is every possible writer known. With several different candidates nothing is decided.
   */
  private attribute(revision: number, before: RevisionOrder['current']['state'], delivered: { time: number; events: readonly WatchEvent[] }): boolean {
    if (delivered.time >= this.lastWatermark) return false;
    const found: { index: number; op: Operation }[] = [];
    for (const [index, op] of this.unknownWriters) {
      if (op.call > delivered.time) continue;
      const resolved = explainsEvents(op, before, revision, delivered, this.model);
      if (resolved) found.push({ index, op: resolved });
    }
    const distinct = new Set(found.map((f) => JSON.stringify(f.op.request)));
    if (found.length === 0 || distinct.size > 1) return false;
    // Identical requests are interchangeable: the earliest called took it.
    const chosen = found.sort((a, b) => a.op.call - b.op.call)[0]!;
    this.unknownWriters.delete(chosen.index);
    const waiting = this.unresolved.get(chosen.index);
    if (waiting) {
      this.unresolved.delete(chosen.index);
      for (const v of waiting.values) this.unresolvedByValue.delete(v);
    }
    this.resolvedCount++;
    this.order!.resolve(chosen.index, chosen.op);
    return true;
  }

  /** A revision nobody claims for longer than the resolve window: only the search can fill it. */
  private watchStuck(watermark: number): void {
    const order = this.order!;
    // A revision the watch showed whose write has not arrived within the window: only the search can tell.
    for (const [revision, watched] of order.unverified) {
      if (watermark - watched.time > this.resolveWindow) order.giveUpAt(`no operation made revision ${revision}, which the watch showed, within ${this.resolveWindow / 1e6} ms`, revision);
      break;
    }
    if (order.pending === 0 || !order.blocked) {
      this.stuckSince = undefined;
      return;
    }
    this.stuckSince ??= watermark;
    if (watermark - this.stuckSince > this.resolveWindow) order.giveUp(`no operation or watch event claimed revision ${order.current.revision + 1} within ${this.resolveWindow / 1e6} ms`);
  }

  /**
   * After any change: if the revision path failed, a search window opens (exclusive mode: it may close and
   * hand back to the revision order, see settleWindow), the search takes over (shared mode with a pinned
   * state), or the offline check decides (shared mode, no state pinned).
   */
  private afterChange(): void {
    const order = this.order;
    if (order && !order.failure && !this.search && !this.window) this.checkStaleReads(order);
    if (!order?.failure || this.search || this.window || this.leftToOffline !== undefined) return;
    const { failure } = order;
    if (!failure.pinned) {
      this.leftToOffline = `the revision order could not place an operation (${failure.reason}) and no state before it is pinned (shared mode): the offline check decides`;
      return;
    }
    const fromRevision = failure.fromRevision ?? this.resumedAt;
    this.searchReason = `${fromRevision === null ? 'from the start' : `from revision ${fromRevision}`}: ${failure.reason}`;
    const initial = order.windowOperations();
    // The search takes the window over at once, as if it were to run to the end of the stream: its verdict is the live one while the window is open.
    const search = new SearchLiveChecker(this.options, failure.state);
    // The window's operations in the order a recorder pushes them: acknowledged ones by return, unknown ones by call.
    const arrival = [...initial].sort((a, b) => (a.op.return ?? a.op.call) - (b.op.return ?? b.op.call) || a.index - b.index);
    for (const { index, op } of arrival) search.pushAt(index, this.unresolved.get(index)?.op ?? op);
    // While a closed window's operations are replayed, older calls are still to come: the replay advances it after.
    if (!this.replaying) search.advance(this.lastWatermark);
    this.window = { state: failure.state, fromRevision, reason: failure.reason, initial, ops: new Map(initial.map((o) => [o.index, o.op])), events: [], nextAttempt: 0, search };
    if (this.mode !== 'exclusive' || search.verdict !== 'linearizable') this.handOver();
  }

  /**
   * Tries to close the open window (closeWindow, close-window.ts): the search places its operations up to a
   * revision whose state it pins, and the revision order resumes from there with the rest. When the
   * search finds a violation or gives up on a prefix, at the end of the stream, or when the window has
   * grown past liveWindowLimit, the window's own search (fed all along) keeps the stream to its end, as
   * before windows closed.
   */
  private settleWindow(final: boolean): void {
    const w = this.window!;
    // The revision path tracks revisions whatever the options say (it is only taken when the history has them).
    const engineOptions = { ...liveEngineOptions(this.options, { trackPaths: true, deadline: Date.now() + closeAttemptMs }), trackRevision: true };
    const closed = closeWindow([...w.ops.keys()].sort((a, b) => a - b), (i) => w.ops.get(i)!, w.state, engineOptions, final ? Infinity : this.lastWatermark, true);
    if (closed === undefined && !final && w.ops.size <= liveWindowLimit) {
      w.nextAttempt = w.ops.size + Math.max(16, w.ops.size >> 2);
      return;
    }
    if (closed === undefined || closed === 'search') {
      this.handOver();
      return;
    }
    this.window = undefined;
    this.windowsClosed++;
    this.searchReason = `${w.fromRevision === null ? 'from the start' : `from revision ${w.fromRevision}`}: ${w.reason} (the window closed at revision ${closed.toRevision} after ${closed.operations} operations)`;
    const placed = new Set(closed.path);
    for (const index of placed) this.forgetUnknown(index);
    this.order = this.newOrder({ state: closed.state, revision: closed.toRevision });
    this.resumedAt = closed.toRevision;
    // The window's operations from before it opened and not placed, in the order a recorder pushes them
    // (through dispatch: if the order fails on one, a new window takes the rest).
    const arrival = (o: { op: Operation; index: number }): number => o.op.return ?? o.op.call;
    this.replaying = true;
    try {
      for (const { index, op } of w.initial.filter((o) => !placed.has(o.index)).sort((a, b) => arrival(a) - arrival(b) || a.index - b.index)) this.dispatch(index, op);
      // What arrived while the window was open, as it arrived (a new window may open on the way).
      for (const e of w.events) {
        if ('response' in e) this.dispatchWatch(e.response, e.stream);
        else if (!placed.has(e.index)) this.dispatch(e.index, e.op);
        else if (e.op.return !== null && e.op.response) this.observeResponse(e.op.response, e.op.return);
      }
    } finally {
      this.replaying = false;
    }
    // Whatever has the stream now (the new order, a new window or the search) catches up with the watermark;
    // at the end of the stream, finish() settles it.
    if (!final) this.advance(this.lastWatermark);
  }

  /** Whether a window opened or the search took over (a method, so that checks after calls that change it are not narrowed away). */
  private handedOn(): boolean {
    return this.window !== undefined || this.search !== undefined;
  }

  /** An unknown-outcome operation the search placed: nothing waits for its observation any more. */
  private forgetUnknown(index: number): void {
    this.unknownWriters.delete(index);
    const waiting = this.unresolved.get(index);
    if (waiting === undefined) return;
    this.unresolved.delete(index);
    for (const v of waiting.values) this.unresolvedByValue.delete(v);
  }

  /** The open window's search keeps the stream to its end (as before windows closed). */
  private handOver(): void {
    this.search = this.window!.search;
    this.window = undefined;
    this.pushedAt.clear();
    this.staleReads.clear();
  }

  /** Checks the stale reads whose revision every placed write has reached (see the header). */
  private checkStaleReads(order: RevisionOrder): void {
    const placed = order.placedRevision;
    for (let next = this.staleReads.peek(); next !== undefined && next.revision <= placed; next = this.staleReads.peek()) {
      this.staleReads.pop();
      const state = order.stateAt(next.revision);
      // No longer kept (or before the order's start): the offline check judges it.
      if (state === undefined || this.staleViolation) continue;
      const { reason } = staleReadProblem(next.op, [state], 1, { ...this.model, initialRevision: this.options.initialRevision ?? 1 });
      if (reason !== undefined) this.staleViolation = { prefix: [], unplaceable: [next.index], states: [summarize(state)], reason: `${reason} (operation ${next.index})` };
    }
  }

}

/** The revision whose state a stale read shows: the one it asked for, else (serializable) its header's. */
function staleReadRevision(op: Operation): number | undefined {
  if (op.request.type !== 'range' || op.response === undefined || op.return === null) return undefined;
  const revision = op.request.revision || (op.response as { revision?: number }).revision;
  return revision === undefined || revision <= 0 ? undefined : revision;
}
