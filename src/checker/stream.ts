/**
 * The streaming offline check: the same verdicts as checkHistory (check.ts), with memory that follows the
 * live window of the history instead of its length, so histories of any size can be checked.
 *
 * Three passes over the source (a file or segment directory read line by line, never whole):
 * 1. scan: validates every line (as parseHistory does), keeps what is small (meta, watch streams, faults,
 *    the operations whose outcome is unknown) and summaries of the rest: the fields the model must track,
 *    per chunk of operations the earliest call among them, whether any read is stale, the highest
 *    compaction and response revision.
 * 2. observations (only when some write's outcome is unknown): collects the few operations that patching
 *    (patch.ts) looks at for those writes -- the other writers of their values, the reads that observed
 *    them, the compares that name them, deletes that may explain a watch's delete event -- and patches the
 *    unknown writes exactly as patchHistory does on the whole history.
 *    Passes 1 and 2 read list reads without building their key-values (kvs-elision.ts elideKvs): the scan needs
 *    none, the observation pass only those showing an unknown write's value. Most bytes are key-values, so
 *    only pass 3 parses them: the one JSON.parse of a whole history.
 * 3. check: feeds the operations, patched, to one LinearizationEngine (linearize.ts, the engine of the
 *    offline and live checks) chunk by chunk. After a chunk, every later operation is called at or after
 *    the earliest call of the chunks still to come (the suffix minimum from pass 1), so the engine may
 *    process every event before it (the watermark). Whenever the frontier holds one configuration its path
 *    is settled: the engine hands it over (takeSettledPrefix), and it is replayed at once (committed
 *    revisions for the watch checks, recent states for stale reads) and dropped, with the operations it
 *    names.
 *
 * The search itself is unchanged, and the engine processes the same events in the same order, so the
 * linearization, committed revisions and verdicts are those of checkHistory (test/unit/checker-stream.test.ts
 * checks this on random histories). What still takes memory in proportion to the history: watch streams
 * and the committed revisions they are checked against (kept whole, only when the history has watches),
 * the states stale reads may match (the last `staleStates` distinct ones; a stale read that would need an
 * older one makes the verdict inconclusive, never a false violation), and the frontier's paths while the
 * frontier holds several configurations. Histories the engine splits by key (no revisions, every operation
 * on one key: check.ts partitionByKey) and histories whose clients' operations are not in call order in the
 * file are read whole and checked by checkHistory.
 */
import type { History, Operation } from '../domain/index.ts';
import {
  checkHistory,
  compactionOf,
  defaultMaxFrontier,
  defaultUnknownHorizonMs,
  finishCheck,
  observedFields,
  singleKey,
  type CheckOptions,
} from './check.ts';
import { firstUnresolvedCall } from './stale-reads.ts';
import { LinearizationEngine } from './linearize.ts';
import { InconclusiveError } from './linearize-options.ts';
import { roleOf } from './roles.ts';
import type { ElidedKvsFields } from './kvs-elision.ts';
import { patchHistory, writtenValues, type PatchResult } from './patch.ts';
import type { CheckReport, LinearizabilityResult, SearchWindow } from './result.ts';
import { deletesAt, leasePut, mayDelete, mayMention, mentions, putsWithLease } from './stream-mentions.ts';
import { StreamReplay } from './stream-replay.ts';
import { RevisionOrder } from './revision.ts';
import { deliveriesOf } from './watch-deliveries.ts';

/** What one pass over a history returns besides its operations. */
export interface HistoryPass {
  /** Meta, watch streams and faults; no operations. */
  history: History;
  /** False when some client's operations are not in call order in the file (see HistoryParserOptions). */
  inCallOrder: boolean;
  /** The operations the pass read, those it skipped unparsed included (see PassOptions.skip). */
  operations?: number;
}

/** How a pass may read less than the whole history. */
export interface PassOptions {
  /** A later pass, after one that validated everything: only operations are needed (other lines may be skipped). */
  operationsOnly?: boolean;
  /**
   * With operationsOnly, a hint: an operation (its index, and its line's text) for which it returns true
   * may be skipped unparsed, onOperation not called. A source may ignore it (and call onOperation for all).
   */
  skip?: (index: number, text: string) => boolean;
  /**
   * Operations may come with their kvs arrays emptied, after this is called with what they held (see
   * HistoryParserOptions.onElidedKvs). A source may ignore it (and give every operation whole).
   */
  onElidedKvs?: (fields: ElidedKvsFields) => void;
  /** With onElidedKvs: the key-values whose value is one of these are kept in the arrays. */
  keepKvValues?: ReadonlySet<string>;
  /**
   * Range reads may come with their key-values as text, parsed when read (see HistoryParserOptions.lazyKvs):
   * the model compares the text. A source may ignore it.
   */
  lazyKvs?: boolean;
}

/** A history that can be read several times, line by line (src/probes/history-source.ts historySource). */
export interface HistorySource {
  name: string;
  /**
   * Reads the whole history once, validating it; each operation goes to onOperation, in file order.
   * Options: see PassOptions.
   */
  pass(onOperation: (op: Operation, index: number) => void, options?: PassOptions): HistoryPass;
  /** The whole history in memory (for what the streaming check leaves to checkHistory). */
  load(): History;
}

export interface StreamCheckOptions extends CheckOptions {
  /** Operations per chunk: the watermark moves, and settled paths are replayed, once per chunk (default 4096). */
  chunkOperations?: number;
  /** Chunks read ahead of the watermark (default 2). */
  lagChunks?: number;
  /** Distinct states kept for stale reads (default 100,000). */
  staleStates?: number;
  /**
   * Keep the whole linearization (and a violation's whole prefix), as checkHistory reports them, for an
   * HTML report: 4-8 bytes per operation. Off by default.
   */
  keepLinearization?: boolean;
}

/** What the streaming check returns: checkHistory's report, and how it was reached. */
export interface StreamCheckReport extends CheckReport {
  /** 'stream', or 'whole' when the history was handed to checkHistory (see the header). */
  mode: 'stream' | 'whole';
  /** Wall-clock time of each pass (ms), for the benchmark. */
  passMs: number[];
  /** The most operations held at once for the replay (settled paths not yet handed over): the live window. */
  peakWindow: number;
}

/** Pass 1's summary of the operations. */
interface Scan {
  operations: number;
  /** Per chunk of chunkOperations operations, the earliest call in it and all later chunks. */
  chunkMinCall: number[];
  trackRevision: boolean;
  trackVersion: boolean;
  hasStale: boolean;
  /** Unknown-outcome writes (roleOf 'optional'), by index. */
  unknown: Map<number, Operation>;
  /** The highest revision compacted to by a compaction that did not fail for sure. */
  compactRevision: number | undefined;
  /** partitionByKey's conditions as far as operations go: every operation that takes part touches one key. */
  singleKeys: Set<string> | undefined;
  /** The first operation showing the highest response revision (patch.ts finalRevision), by index; -1: none. */
  maxAt: number;
  /** For the observation pass: operations whose request puts with a lease (all leasePut may count). */
  leased: Set<number>;
  /** For the observation pass: acknowledged operations that may delete (deletesAt's kinds), with their revision (-1: none). */
  deleters: { index: number[]; revision: number[] };
}

function scan(source: HistorySource, chunk: number): { scan: Scan; rest: HistoryPass } {
  const s: Scan = {
    operations: 0,
    chunkMinCall: [],
    trackRevision: false,
    trackVersion: false,
    hasStale: false,
    unknown: new Map(),
    compactRevision: undefined,
    singleKeys: new Set(),
    maxAt: -1,
    leased: new Set(),
    deleters: { index: [], revision: [] },
  };
  let maxRevision = -1;
  // The scan looks at no key-value, only at whether some shows a revision or a version (observedFields).
  const onElidedKvs = (fields: ElidedKvsFields): void => {
    s.trackRevision ||= fields.revision;
    s.trackVersion ||= fields.version;
  };
  const rest = source.pass((op, index) => {
    s.operations++;
    // What the observation pass asks of every operation, taken here so that it may skip most unparsed.
    const revision = (op.response as { revision?: number } | undefined)?.revision;
    if (revision !== undefined && revision > maxRevision) {
      maxRevision = revision;
      s.maxAt = index;
    }
    if (putsWithLease(op)) s.leased.add(index);
    if (mayDelete(op)) {
      s.deleters.index.push(index);
      s.deleters.revision.push(revision ?? -1);
    }
    const c = Math.floor(index / chunk);
    if (c === s.chunkMinCall.length) s.chunkMinCall.push(op.call);
    else s.chunkMinCall[c] = Math.min(s.chunkMinCall[c]!, op.call);
    if (!s.trackRevision || !s.trackVersion) {
      const seen = observedFields({ meta: undefined, operations: [op], watches: [] });
      s.trackRevision ||= seen.trackRevision;
      s.trackVersion ||= seen.trackVersion;
    }
    s.compactRevision = compactionOf(op, s.compactRevision);
    const role = roleOf(op);
    if (role === 'stale') s.hasStale = true;
    if (role === 'optional') s.unknown.set(index, op);
    if (s.singleKeys !== undefined && role !== 'skip') {
      const key = role === 'stale' ? undefined : singleKey(op);
      if (key === undefined) s.singleKeys = undefined;
      else s.singleKeys.add(key);
    }
  }, { onElidedKvs });
  // Suffix minima: every operation from chunk c on is called at or after chunkMinCall[c].
  for (let c = s.chunkMinCall.length - 2; c >= 0; c--) s.chunkMinCall[c] = Math.min(s.chunkMinCall[c]!, s.chunkMinCall[c + 1]!);
  const fromRest = observedFields(rest.history);
  s.trackRevision ||= fromRest.trackRevision;
  s.trackVersion ||= fromRest.trackVersion;
  return { scan: s, rest };
}

/** Whether check.ts would split the history by key (partitionByKey), which the streaming check leaves to it. */
function partitioned(s: Scan, rest: History): boolean {
  return !s.trackRevision && rest.watches.length === 0 && s.singleKeys !== undefined && s.singleKeys.size > 1;
}

/**
 * Pass 2: the operations patchHistory looks at to resolve the unknown writes, in file order, with the
 * unknown writes themselves. patchHistory on them (and the watches) patches each unknown write as it
 * would on the whole history: every fact it uses about a value of an unknown write, a lease's keys, the
 * final revision or an acknowledged delete at a watched revision comes from operations kept here.
 */
function observationPass(source: HistorySource, s: Scan, rest: History): { patched: Map<number, Operation>; result: ReturnType<typeof patchHistory>; kept: Operation[] } {
  const values = new Set<string>();
  for (const op of s.unknown.values()) for (const value of writtenValues(op)) values.add(value);
  const unknownDeletes = [...s.unknown.values()].some((op) => op.request.type === 'delete' || op.request.type === 'leaseRevoke' || op.request.type === 'txn');
  // Revisions of the delete events watches delivered: acknowledged deletes there may explain them.
  const deleteRevisions = new Set<number>();
  if (unknownDeletes) for (const w of rest.watches) for (const r of w.responses) for (const e of r.events) if (e.type === 'delete') deleteRevisions.add(e.modRevision);
  // The operations the test below must see besides those that may mention a value (mayMention): every
  // other one it would not keep, and it would change nothing (leasePairs) on it, so it may go unparsed.
  const needed = new Set<number>(s.unknown.keys());
  if (s.maxAt >= 0) needed.add(s.maxAt);
  if (unknownDeletes) {
    for (const index of s.leased) needed.add(index);
    s.deleters.index.forEach((index, i) => {
      const revision = s.deleters.revision[i]!;
      if (revision < 0 || deleteRevisions.has(revision)) needed.add(index);
    });
  }
  const leasePairs = new Set<string>();
  const keptIndices: number[] = [];
  const kept: Operation[] = [];
  let maxOp: Operation | undefined;
  const read = source.pass(
    (op, index) => {
      if (index === s.maxAt) maxOp = op;
      const revision = (op.response as { revision?: number } | undefined)?.revision;
      if (s.unknown.has(index) || mentions(op, values) || (unknownDeletes && (leasePut(op, leasePairs) || deletesAt(op, revision, deleteRevisions)))) {
        keptIndices.push(index);
        kept.push(op);
      }
    },
    // Of a list read's key-values only those showing the values count here (mentions, and patchHistory's
    // observations); no other fact patchHistory or unknownDeleter uses is in a kvs array.
    { operationsOnly: true, skip: (index, text) => !needed.has(index) && !mayMention(text, values), onElidedKvs: () => undefined, keepKvValues: values },
  );
  changed(source, s, read);
  // The operation with the highest revision (patch.ts finalRevision), in its place.
  if (maxOp !== undefined && !keptIndices.includes(s.maxAt)) {
    const at = keptIndices.findIndex((i) => i > s.maxAt);
    keptIndices.splice(at < 0 ? keptIndices.length : at, 0, s.maxAt);
    kept.splice(at < 0 ? kept.length : at, 0, maxOp);
  }
  const result = patchHistory({ ...rest, operations: kept });
  const patched = new Map<number, Operation>();
  keptIndices.forEach((index, i) => {
    if (s.unknown.has(index)) patched.set(index, result.operations[i]!);
  });
  return { patched, result, kept: result.operations };
}

/** A later pass read another number of operations than the first: the history changed in between. */
function changed(source: HistorySource, s: Scan, read: HistoryPass): void {
  if (read.operations !== undefined && read.operations !== s.operations) {
    throw new HistoryChangedError(`${source.name}: the history changed while it was checked (${read.operations} operations, the first pass read ${s.operations})`);
  }
}


/** The source gave other operations on a later pass (a file still being written). */
export class HistoryChangedError extends Error {
  override name = 'HistoryChangedError';
}

/** Thrown to end the last pass early, once the search has its verdict. */
const stop = new Error('the search is over');

/** Pass 3's outcome: the order found (revision path or search), and what replaying it found. */
interface Searched {
  /** The search, when it ran (no revisions, or a window the revision path could not decide). */
  engine: LinearizationEngine | undefined;
  replay: StreamReplay;
  /** The whole linearization, with keepLinearization. */
  order: number[] | undefined;
  peakWindow: number;
  method: 'revision' | 'search';
  searchWindow: SearchWindow | undefined;
  /** The revision path's failure was not pinned: the caller runs the search over everything. */
  restart: boolean;
  /** A search window opened in a history small enough to load: the caller hands it to checkHistory, which closes windows. */
  whole: boolean;
}

/** Up to this many operations, a history whose revision path opens a search window is checked whole (check.ts closes windows; this pass does not). */
const wholeForWindows = 1_000_000;

/**
 * Pass 3 (see the header): the revision-ordered path (revision.ts) when the history has revisions, else
 * the search, chunk by chunk, replaying the linearization as it settles. When the revision path cannot
 * place an operation, the search takes over in the same pass from the state it pinned (the window); when
 * it pinned none (shared mode), `restart` asks for the search over the whole history.
 */
function searchPass(source: HistorySource, s: Scan, history: History, patched: Map<number, Operation> | undefined, options: StreamCheckOptions, deadline: number, byRevision: boolean): Searched {
  const chunk = options.chunkOperations ?? 4096;
  const lag = options.lagChunks ?? 2;
  const meta = history.meta;
  const opts = {
    mode: meta?.mode ?? 'exclusive',
    prefix: meta?.prefix ?? '',
    initialRevision: meta?.initialRevision ?? 1,
    trackRevision: s.trackRevision,
    trackVersion: s.trackVersion,
  } as const;
  // Paths (and the operations they name) are kept only for what replays the linearization: watches,
  // stale reads, or a caller that wants the linearization itself. Otherwise the verdict needs none.
  const replayed = history.watches.length > 0 || s.hasStale || options.keepLinearization === true;
  const engineOptions = {
    ...opts,
    trackPaths: replayed,
    unknownHorizon: (options.unknownHorizonMs ?? defaultUnknownHorizonMs) * 1e6,
    maxFrontier: options.maxFrontier ?? defaultMaxFrontier,
    deadline,
  };
  const unresolvedFrom = firstUnresolvedCall([...s.unknown].map(([index, op]) => patched?.get(index) ?? op));
  const replay = new StreamReplay(opts, history.watches.length > 0, s.hasStale, options.staleStates ?? 100_000, unresolvedFrom);
  // Operations the engine holds, until the settled prefix that names them is replayed.
  const window = new Map<number, Operation>();
  const searched: Searched = { engine: undefined, replay, order: options.keepLinearization === true ? [] : undefined, peakWindow: 0, method: byRevision ? 'revision' : 'search', searchWindow: undefined, restart: false, whole: false };
  const replayOp = (op: Operation, index: number): void => {
    replay.apply(op, index);
    searched.order?.push(index);
  };
  const revision = byRevision ? new RevisionOrder({ ...opts, eager: false, deliveries: deliveriesOf(history.watches) }) : undefined;
  if (revision) revision.onRetired = (index, op) => replayOp(op, index);
  let engine = revision ? undefined : new LinearizationEngine(engineOptions);
  searched.engine = engine;
  const hold = (index: number, op: Operation): void => {
    if (!replayed) return;
    window.set(index, op);
    searched.peakWindow = Math.max(searched.peakWindow, window.size);
  };
  // The revision path could not place an operation: the search continues from the state it pinned.
  const takeOver = (): LinearizationEngine => {
    const failure = revision!.failure!;
    if (!failure.pinned) {
      searched.restart = true;
      searched.searchWindow = { reason: failure.reason, fromRevision: null, operations: s.operations };
      throw stop;
    }
    if (opts.mode === 'exclusive' && s.operations <= wholeForWindows) {
      searched.whole = true;
      throw stop;
    }
    revision!.retireBeforeWindow();
    const ops = revision!.windowOperations();
    const taking = new LinearizationEngine({ ...engineOptions, initialState: failure.state });
    searched.engine = taking;
    searched.method = 'search';
    searched.searchWindow = { reason: failure.reason, fromRevision: failure.fromRevision, operations: ops.length };
    for (const { index, op } of ops) {
      const role = roleOf(op);
      hold(index, op);
      taking.add(index, op, role);
    }
    return taking;
  };
  const advance = (watermark: number): void => {
    if (!engine) {
      revision!.advance(watermark);
      if (!revision!.failure) return;
      engine = takeOver();
    }
    try {
      engine.advance(watermark);
    } catch (error) {
      if (!(error instanceof InconclusiveError)) throw error;
      engine.inconclusive = error.message;
    }
    for (const index of engine.takeSettledPrefix()) {
      replayOp(window.get(index)!, index);
      window.delete(index);
    }
  };
  try {
    const read = source.pass((original, index) => {
      if (engine?.done) throw stop;
      if (index >= s.operations) throw new HistoryChangedError(`${source.name}: the history changed while it was checked (more operations than the first pass read)`);
      const op = patched?.get(index) ?? original;
      const role = roleOf(op);
      if (role === 'stale') replay.staleRead(index, op);
      else if (role === 'linearize' || role === 'optional') {
        if (engine) {
          hold(index, op);
          engine.add(index, op, role);
          if (searched.searchWindow) searched.searchWindow.operations++;
        } else {
          if (role === 'linearize') revision!.add(index, op);
          else revision!.addUnknown(index, op);
          if (revision!.failure) engine = takeOver();
        }
      }
      // The watermark trails the reading by `lag` chunks: the operations in flight at it are then read,
      // and the revisions their responses claim known to the search, which prunes with them.
      if ((index + 1) % chunk === 0 && (index + 1) / chunk > lag) advance(s.chunkMinCall[(index + 1) / chunk - lag]!);
    }, { operationsOnly: true, lazyKvs: true });
    changed(source, s, read);
    if (!engine) {
      revision!.finish();
      if (revision!.failure) engine = takeOver();
    }
  } catch (error) {
    if (error !== stop) throw error;
  }
  if (searched.restart || searched.whole) return searched;
  if (!engine) {
    revision!.retire();
    replay.finish();
    return searched;
  }
  advance(Infinity);
  // When linearizable, the first configuration's path is the rest of the linearization (as in check.ts).
  if (!engine.done) {
    for (const index of engine.linearization() ?? []) {
      replayOp(window.get(index)!, index);
      window.delete(index);
    }
    replay.finish();
  }
  return searched;
}

/** The linearizability result of pass 3, as checkLinearizability gives it. */
function resultOf({ engine, replay, order, method, searchWindow }: Searched, operations: number, patch: PatchResult | undefined): LinearizabilityResult {
  const patched = patch !== undefined && patch.observed + patch.neverApplied > 0 ? { patched: { observed: patch.observed, neverApplied: patch.neverApplied } } : {};
  const how = searchWindow ? { method, searchWindow } : { method };
  if (engine?.violation) {
    const violation = order === undefined ? engine.violation : { ...engine.violation, prefix: [...order, ...engine.violation.prefix] };
    return { verdict: 'violation', operations, ...patched, ...how, violation };
  }
  if (engine?.inconclusive !== undefined) return { verdict: 'inconclusive', operations, ...patched, ...how, inconclusive: engine.inconclusive };
  const { problems, uncertain } = replay.stale;
  if (problems.length === 0) {
    const inconclusive = replay.tooOld ?? uncertain;
    if (inconclusive !== undefined) return { verdict: 'inconclusive', operations, ...patched, ...how, inconclusive };
  }
  const result: LinearizabilityResult = { verdict: problems.length > 0 ? 'violation' : 'linearizable', operations, ...patched, ...how };
  if (order !== undefined) result.linearization = order;
  if (problems.length > 0) result.staleReadViolations = problems;
  return result;
}

/** Checks a history from its source in three passes (see the header), with the verdicts of checkHistory. */
export function checkHistoryStream(source: HistorySource, options: StreamCheckOptions = {}): StreamCheckReport {
  const started = performance.now();
  // The budget covers the reading passes too: a caller's "give up after this long" includes them.
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const passMs: number[] = [];
  const lap = (): void => {
    passMs.push(performance.now() - started - passMs.reduce((a, b) => a + b, 0));
  };
  const { scan: s, rest } = scan(source, options.chunkOperations ?? 4096);
  lap();
  const history = rest.history;
  if (!rest.inCallOrder || partitioned(s, history)) {
    const report = checkHistory(source.load(), options);
    lap();
    return { ...report, elapsedMs: performance.now() - started, mode: 'whole', passMs, peakWindow: s.operations };
  }
  if (s.operations === 0) return { ...checkHistory(history, options), elapsedMs: performance.now() - started, mode: 'stream', passMs, peakWindow: 0 };
  let patch: ReturnType<typeof observationPass> | undefined;
  if (s.unknown.size > 0) {
    patch = observationPass(source, s, history);
    lap();
  }
  let searched = searchPass(source, s, history, patch?.patched, options, deadline, s.trackRevision && options.searchOnly !== true);
  if (searched.whole) {
    const report = checkHistory(source.load(), { ...options, timeoutMs: Math.max(0, deadline - Date.now()) });
    lap();
    return { ...report, elapsedMs: performance.now() - started, mode: 'whole', passMs, peakWindow: s.operations };
  }
  if (searched.restart) {
    const window = searched.searchWindow;
    lap();
    searched = searchPass(source, s, history, patch?.patched, options, deadline, false);
    searched.searchWindow = window;
  }
  lap();
  const linearizability = resultOf(searched, s.operations, patch?.result);
  // As in checkHistory: the committed revisions exist when the search found a linearization.
  const committed = searched.engine?.done ? undefined : searched.replay.replayer.committed;
  const report = finishCheck(history, linearizability, committed, patch?.kept, s.compactRevision, started);
  return { ...report, mode: 'stream', passMs, peakWindow: searched.peakWindow };
}
