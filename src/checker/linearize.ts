/**
 * The linearizability search: one engine for offline checks and live streams.
 *
 * Algorithm (just-in-time linearization, after Lowe's "Testing for linearizability", with the state-set
 * view of etcd's non-deterministic model):
 *
 * - Events are processed in time order (a call before a return at the same instant, so operations that
 *   touch in time count as concurrent: never a false violation from clock granularity).
 * - A configuration is a model state plus the set of *open* operations (called, not yet returned)
 *   already linearized. The frontier is every configuration consistent with the history so far.
 * - At a call, the operation joins the open set. At the return of operation X, every frontier
 *   configuration is extended by linearizing open operations until X is linearized; the new frontier
 *   is every configuration reached that contains X (X then leaves the open set). An empty frontier is a
 *   violation: X's response cannot be explained by any order of what was concurrent with it.
 * - Unknown-outcome operations (no return) stay open: they may be linearized at any later point, or
 *   never. Read-only requests whose outcome is unknown and definite errors have no effect and are
 *   dropped; stale (serializable or past-revision) reads are validated afterwards against the
 *   linearization.
 *
 * Sound speed-ups, each proven by a dominance argument (a configuration that can do everything another
 * can lets the other go):
 * - Memoization: configurations are deduplicated by (state, linearized set) with incremental hashes
 *   (Zobrist-style XOR of per-key and per-operation hashes) and exact comparison on collision.
 * - Optional-operation subsumption: for the same state and the same linearized known operations, the
 *   configuration that linearized a *subset* of the unknown-outcome operations dominates (it may still
 *   apply them later, or never). This keeps histories with many timed-out writes, Jepsen's hard case,
 *   from exploding into every subset of timed-out writes.
 * - Unreferenced lease grants: offline (the whole history added before the first advance), when the
 *   search gives up, it is tried again without the unknown-outcome lease grants whose lease no other
 *   request names: nothing can observe them, and an unknown outcome may never have happened (each such
 *   grant doubles the candidates).
 * - Greedy reads: an open known operation whose step leaves the state unchanged is linearized at once
 *   (having done it dominates having it still to do).
 * - Revision pruning: with revisions, a configuration whose revision already exceeds the revision X's
 *   response shows can never linearize X, so it is not extended further.
 * - Gap pruning: in exclusive mode each acknowledged write's response claims its revision, so an
 *   unknown-outcome write may only take a revision no response claims (the gaps).
 * - Symmetry: identical unknown-outcome requests (after patch.ts gave every value nothing mentions
 *   the same placeholder) are interchangeable, so only the earliest-called available one is tried; a
 *   linearization using a later one can use the earlier one in its place.
 * - Revision cap: when revisions are tracked only because compares test them (no response shows one,
 *   as in histories recorded without revisions), each timed-out write shifts the global revision and the
 *   mod revisions written after it, so every place it could have taken makes a state of its own and the
 *   frontier grows with (places)^(timed-out writes) although no response can tell them apart. Once every
 *   operation is known (advance(Infinity): nothing can be added any more), let the levels be the
 *   constants that compares of operations not yet settled or retired test a mod or create revision
 *   against, and the initial revision. If none of those operations can observe an exact revision (no
 *   response revision, no mod/create revision in a response, no compact, no read at a revision, no claim
 *   held), a state S is equivalent to cap(S) (model.ts capRevisions): every mod/create revision replaced
 *   by a fixed representative of its class (equal to a level; strictly between two consecutive levels;
 *   below all; above all: top + 1), and the revision R by min(R, top), top the highest level. Proof: a
 *   remaining compare tests a revision against a level, and every representative stands in the same
 *   relation (=, !=, <, >) to every level as the value it replaces; every other step ignores revision
 *   values; a write gives its key R + 1, exact while R < top in both, and above top from both when
 *   R >= top; so cap(step(S)) = cap(step(cap(S))), the same sequences succeed from S and cap(S), and
 *   isDead agrees too (it tests the revision and a key's against the op's own constant, a level).
 *   Levels only go as operations settle, and capping with fewer levels a state capped with more gives
 *   what capping the original would. The linearization found is replayed on exact states afterwards
 *   (check.ts), so the stale-read and watch checks see true revisions; only the candidate states in a
 *   violation's evidence may show capped revisions. The cap is a fallback: it is turned on only when a
 *   settle searched with exact revisions would give up (the settle is then searched again, capped, and
 *   so is every later one), so whatever the exact search decides keeps its verdict and evidence, and
 *   the streaming check (stream.ts), which advances in chunks and so rarely gets to cap, agrees with
 *   checkHistory on it.
 * Beam (offline fallback): when the exact searches (with, then without unnamed lease grants) give up
 *   within their share of the time budget, the whole history is searched again, without those grants,
 *   with the order restricted and the frontier cut: an unknown-outcome key-value write is placed only
 *   before every state-changing operation called after it (it took effect in call order, or never), and
 *   after each settle at most beamWidth configurations stay (of each state the one that used the fewest
 *   unknown-outcome operations, the states taken in turn from each revision). Sound for the only verdict
 *   the beam gives: every configuration it keeps is reached by valid steps, so one that reaches the end
 *   is a linearization (check.ts replays it); an empty beam frontier proves nothing and is inconclusive,
 *   never a violation. Without revisions in the responses, compares on mod revisions make every place of
 *   every timed-out write a state of its own, and the exact frontier explodes where a witness is easy.
 * Keys are partitioned (P-compositionality, check.ts) only when nothing couples them: no revisions
 * observed (etcd's global revision couples every key) and every operation touches a single key; each
 * key is then checked on its own, which is sound by the locality of linearizability.
 *
 * Budgets: a deadline and a frontier-size bound end the search as `inconclusive`, never with a false
 * verdict. In live mode an unknown-outcome operation is retired `unknownHorizon` after its call (it is
 * then assumed to have taken effect before, or never), which bounds memory; offline the horizon is the
 * same by default so both reach the same verdict.
 */
import { isWriteRequest, type Operation } from '../domain/index.ts';
import { ConfigSet, EventQueue, extend, insertSorted, pathToList, type Config, type OpEntry, type PathNode } from './configs.ts';
import { mix32 } from './hash.ts';
import { InconclusiveError, type EngineOptions } from './linearize-options.ts';
import { bumpsRevision, capRevisions, step } from './model.ts';
import { initialState, stateHash, summarize, type ModelState, type Why } from './model-state.ts';
import type { StateSummary, ViolationEvidence } from './result.ts';
import { claimedRevision, revisionView, unreferencedLeaseGrants, type Role } from './roles.ts';

/** The exact search's share of an offline time budget; the beam gets the rest (see advance). */
const exactShare = 0.5;
/** Configurations the beam keeps after each operation at most. */
const beamWidth = 1024;

/**
 * Feeds operations in; `advance(t)` processes every event before t. The caller guarantees that every
 * operation whose call is before t has been added by then.
 */
export class LinearizationEngine {
  private readonly options: EngineOptions;
  private readonly entries = new Map<number, OpEntry>();
  /** Pending events, ordered by time then kind (calls first). */
  private readonly queue = new EventQueue();
  /** Open known operations, and open unknown-outcome ones: key-value writes apart from lease/compact. */
  private open: OpEntry[] = [];
  private openOptionalWrites: OpEntry[] = [];
  private openOptionalOther: OpEntry[] = [];
  private frontier: Config[];
  /** Revision -> the known write whose response claims it (exclusive mode with revisions). */
  private readonly claims = new Map<number, number>();
  private steps = 0;
  private watermark = -Infinity;
  /** Operations added and not yet settled or retired that may observe exact revisions (revisionView). */
  private exactObservers = 0;
  /** Constant -> how many such operations compare a mod or create revision against it. */
  private readonly compareConstants = new Map<number, number>();
  /** Whether the revision cap is on (it is a fallback, see the header). */
  private capping = false;
  /** The last node of the paths' common prefix handed over by takeSettledPrefix (walks stop there). */
  private handedOver: PathNode | null = null;
  violation: ViolationEvidence | undefined;
  inconclusive: string | undefined;
  /** Operations whose return has been processed. */
  settled = 0;
  /** Called with the operation index whenever its return has been settled (for live lag stats). */
  onSettled: ((index: number) => void) | undefined;
  /** What was added before the first advance (offline: the whole history, see retryWithout). */
  private added: { index: number; op: Operation; role: Role }[] | undefined;
  /** The time budget's end (Date.now() ms): the options' deadline, or half the way to it (see advance). */
  private deadline: number;
  /** Whether the beam is on (a fallback, see the header): the frontier is cut, not given up on. */
  private beam = false;
  /** Whether the beam has cut a configuration: an empty frontier then proves nothing (inconclusive). */
  private lossy = false;
  /** Configurations the search took from its queues (a measure of the work, for benchmarks). */
  explored = 0;

  constructor(options: EngineOptions) {
    this.options = options;
    const state = options.initialState ?? initialState(options, options.initialRevision);
    this.frontier = [{ state, stateHash: stateHash(state), lin: [], knownHash: 0, path: null }];
    this.added = options.trackPaths ? [] : undefined;
    this.deadline = options.deadline;
    this.beam = this.lossy = options.beam === true;
  }

  get done(): boolean {
    return this.violation !== undefined || this.inconclusive !== undefined;
  }

  /**
   * Whether the frontier holds every candidate configuration (false once the beam ran: its frontier is
   * a cut, so one configuration in it does not pin the state).
   */
  get complete(): boolean {
    return !this.lossy;
  }

  get frontierSize(): number {
    return this.frontier.length;
  }

  get openOperations(): number {
    return this.open.length + this.openOptionalWrites.length + this.openOptionalOther.length;
  }

  add(index: number, op: Operation, role: Role): void {
    if (role !== 'linearize' && role !== 'optional') return;
    this.added?.push({ index, op, role });
    if (op.call < this.watermark) {
      throw new RangeError(`operation ${index} was added after the watermark passed its call (${op.call} < ${this.watermark})`);
    }
    const entry: OpEntry = {
      index,
      request: op.request,
      response: op.response,
      optional: role === 'optional',
      call: op.call,
      zobrist: mix32(index + 0x9e3779b9),
      revision: (op.response as { revision?: number } | undefined)?.revision,
      readOnly: role === 'linearize' && !isWriteRequest(op.request) && op.request.type !== 'leaseGrant' && op.request.type !== 'compact',
      symmetryKey: role === 'optional' ? JSON.stringify(op.request) : undefined,
      revisions: revisionView(op),
    };
    this.entries.set(index, entry);
    this.observe(entry, 1);
    const claimed = role === 'linearize' ? claimedRevision(op) : undefined;
    if (claimed !== undefined && this.options.mode === 'exclusive' && this.options.trackRevision) this.claims.set(claimed, index);
    this.queue.push(op.call, 0, index);
    if (role === 'linearize') this.queue.push(op.return!, 1, index);
  }

  /** Processes every event strictly before `watermark` (Infinity: everything). */
  advance(watermark: number): void {
    const added = this.added;
    this.added = undefined;
    this.watermark = Math.max(this.watermark, watermark);
    // Offline, the whole history at once: unknown-outcome lease grants nothing names may be left out, but
    // only if the search with them gives up (so whatever it decides keeps its linearization and evidence,
    // as the streaming check, which cannot know what later requests name, finds them). It then gets half
    // the exact searches' time, and the search without them the rest. If both give up, the beam (see the
    // header) searches the whole history again, without those grants, with the rest of the time budget.
    const offline = added !== undefined && watermark === Infinity;
    const unnamed = offline ? unreferencedLeaseGrants(added) : new Set<number>();
    const initial = this.frontier[0]!.state;
    const end = this.deadline;
    if (offline && this.beam && unnamed.size > 0) {
      // Asked for the beam (options.beam): as the fallback runs it, without those grants.
      this.retryWithout(added, unnamed, initial, end, true);
      return;
    }
    const exactEnd = offline && !this.beam ? Date.now() + (end - Date.now()) * exactShare : end;
    this.deadline = unnamed.size > 0 ? Date.now() + (exactEnd - Date.now()) / 2 : exactEnd;
    try {
      this.processEvents(watermark);
    } catch (error) {
      if (!(error instanceof InconclusiveError) || !offline) throw error;
      this.inconclusive = error.message;
    }
    if (this.inconclusive !== undefined && offline && !this.beam && unnamed.size > 0) this.retryWithout(added, unnamed, initial, exactEnd, false);
    if (this.inconclusive !== undefined && offline && !this.beam) this.retryWithout(added, unnamed, initial, end, true);
  }

  private processEvents(watermark: number): void {
    while (!this.done && this.queue.size > 0 && this.queue.peekTime() < watermark) {
      const { time, kind, index } = this.queue.pop();
      const entry = this.entries.get(index)!;
      if (kind === 0) {
        this.retireUnknown(time);
        if (!entry.optional) this.open.push(entry);
        else if (entry.request.type === 'put' || entry.request.type === 'delete' || entry.request.type === 'txn') this.openOptionalWrites.push(entry);
        else this.openOptionalOther.push(entry);
      } else {
        this.settle(entry);
        this.observe(entry, -1);
        this.entries.delete(index);
        this.settled++;
        this.onSettled?.(index);
      }
    }
  }

  /**
   * The whole history searched again from the start without the lease grants in `unnamed` (see advance):
   * sound, as leaving out an unknown-outcome operation nothing can observe loses no linearization. Its
   * verdict, linearization or evidence replaces this search's.
   */
  private retryWithout(added: { index: number; op: Operation; role: Role }[], unnamed: Set<number>, initial: ModelState, deadline: number, beam: boolean): void {
    const inner = new LinearizationEngine({ ...this.options, initialState: initial, deadline });
    inner.added = undefined;
    // The beam restricts the order from the start (see settle): nothing it fails to find is a proof.
    inner.beam = beam;
    inner.lossy = beam;
    for (const { index, op, role } of added) if (!unnamed.has(index)) inner.add(index, op, role);
    try {
      inner.advance(Infinity);
    } catch (error) {
      if (!(error instanceof InconclusiveError)) throw error;
      inner.inconclusive = error.message;
    }
    this.violation = inner.violation;
    this.inconclusive = inner.inconclusive;
    this.frontier = inner.frontier;
    this.capping = inner.capping;
    this.beam = inner.beam;
    this.lossy = inner.lossy;
    this.explored += inner.explored;
    // Every event is spent (a search that gave up left some in this queue).
    while (this.queue.size > 0) {
      const { kind, index } = this.queue.pop();
      if (kind !== 1 || this.done) continue;
      this.settled++;
      this.onSettled?.(index);
    }
    this.entries.clear();
    this.open = [];
    this.openOptionalWrites = [];
    this.openOptionalOther = [];
  }

  /** One linearization of everything settled (offline, after advance(Infinity), when linearizable). */
  linearization(): number[] | undefined {
    if (this.done || !this.options.trackPaths) return undefined;
    return pathToList(this.frontier[0]?.path ?? null, this.handedOver);
  }

  /**
   * The part of the linearization no later event can change, handed over and forgotten (the streaming
   * check replays it as it goes, so paths do not grow with the history): every configuration found from
   * now on extends one in the frontier, so the operations on the paths of all of them, the common
   * prefix, are settled. linearization() and violation evidence then give only what follows.
   */
  takeSettledPrefix(): number[] {
    if (!this.options.trackPaths || this.done || this.frontier.length === 0) return [];
    let nodes = this.frontier.map((c) => c.path);
    const depth = Math.min(...nodes.map((n) => n?.depth ?? 0));
    nodes = nodes.map((n) => {
      while (n !== null && n.depth > depth) n = n.prev;
      return n;
    });
    while (nodes.some((n) => n !== nodes[0])) nodes = nodes.map((n) => n?.prev ?? null);
    const common = nodes[0] ?? null;
    if (common === null || common === this.handedOver) return [];
    const settled = pathToList(common, this.handedOver);
    // What precedes is handed over: nothing reads it again (every walk stops at handedOver).
    this.handedOver = common;
    common.prev = null;
    return settled;
  }

  candidateStates(limit = 10): StateSummary[] {
    return this.frontier.slice(0, limit).map((c) => summarize(c.state));
  }

  private retireUnknown(now: number): void {
    const horizon = this.options.unknownHorizon;
    if (!Number.isFinite(horizon)) return;
    // Both lists are in call order, so expired operations are at their fronts.
    const expired = (e: OpEntry | undefined): boolean => e !== undefined && e.call < now - horizon;
    if (!expired(this.openOptionalWrites[0]) && !expired(this.openOptionalOther[0])) return;
    const retired = [...this.openOptionalWrites.filter(expired), ...this.openOptionalOther.filter(expired)];
    const gone = new Set(retired.map((e) => e.index));
    this.openOptionalWrites = this.openOptionalWrites.filter((e) => !gone.has(e.index));
    this.openOptionalOther = this.openOptionalOther.filter((e) => !gone.has(e.index));
    const set = new ConfigSet(this.isOptional, this.isDead);
    for (const c of this.frontier) {
      const lin = c.lin.filter((op) => !gone.has(op));
      set.add(lin.length === c.lin.length ? c : { ...c, lin });
    }
    for (const e of retired) this.observe(e, -1);
    for (const index of gone) this.entries.delete(index);
    this.frontier = set.values();
  }

  /** Counts (delta 1) or forgets (delta -1) what an operation not yet settled can observe of revisions. */
  private observe(entry: OpEntry, delta: 1 | -1): void {
    const { exact, constants } = entry.revisions;
    if (exact) this.exactObservers += delta;
    for (const c of constants) {
      const count = (this.compareConstants.get(c) ?? 0) + delta;
      if (count > 0) this.compareConstants.set(c, count);
      else this.compareConstants.delete(c);
    }
  }

  /**
   * The floor above which revisions no longer matter (see the revision cap in the header), or undefined
   * when revisions must stay exact: in shared mode, while an operation still to settle may observe an
   * exact revision or a known write's claim is held, and while operations may still be added (the
   * argument needs all of them: only advance(Infinity) guarantees that).
   */
  private revisionCap(): number[] | undefined {
    const o = this.options;
    if (this.watermark !== Infinity || o.mode !== 'exclusive' || !o.trackRevision || this.exactObservers > 0 || this.claims.size > 0) return undefined;
    return [...new Set([o.initialRevision, ...this.compareConstants.keys()])].sort((a, b) => a - b);
  }

  /**
   * Turns the revision cap on for this and every later settle, when it applies and the time budget is
   * not spent (the settle is then searched again, capped). Once only: a capped search that still gives
   * up is inconclusive.
   */
  private startCapping(): boolean {
    if (this.capping || Date.now() > this.deadline || this.revisionCap() === undefined) return false;
    this.capping = true;
    return true;
  }

  /**
   * The beam's cut of a settle's results: of each group (same state, same known operations) the
   * configuration that used the fewest unknown-outcome operations (it keeps the most for later), and of
   * the groups at most beamWidth, taken in turn from each revision (a compare on a mod revision tells
   * revisions apart, so every revision keeps candidates). Any cut is sound for the verdict the beam may
   * give: a configuration kept is still reached by a valid order, and the beam never reports a violation
   * once it cut something.
   */
  private cut(results: ConfigSet): Config[] {
    const used = (c: Config): number => c.lin.reduce((n, op) => (this.isOptional(op) ? n + 1 : n), 0);
    const byRevision = new Map<number, Config[]>();
    let total = 0;
    for (const group of results.groups()) {
      let best = group[0]!;
      for (const c of group) if (used(c) < used(best)) best = c;
      if (best !== group[0] || group.length > 1) this.lossy = true;
      const list = byRevision.get(best.state.revision);
      if (list) list.push(best);
      else byRevision.set(best.state.revision, [best]);
      total++;
    }
    if (total <= beamWidth) return [...byRevision.values()].flat();
    this.lossy = true;
    const lists = [...byRevision.entries()].sort(([a], [b]) => a - b).map(([, list]) => list.sort((a, b) => used(a) - used(b)));
    const kept: Config[] = [];
    for (let i = 0; kept.length < beamWidth; i++) for (const list of lists) if (i < list.length && kept.length < beamWidth) kept.push(list[i]!);
    return kept;
  }

  private capped(c: Config, levels: readonly number[]): Config {
    const state = capRevisions(c.state, levels);
    return state === c.state ? c : { ...c, state, stateHash: stateHash(state) };
  }

  private tick(): void {
    if ((++this.steps & 0xfff) === 0 && Date.now() > this.deadline) {
      throw new InconclusiveError('time budget exhausted');
    }
  }

  private isOptional = (op: number): boolean => this.entries.get(op)?.optional ?? false;

  /**
   * An unknown-outcome txn whose failure branch only reads and that compares a mod or create revision
   * for equality with r can never write again once the store is at revision >= r and the key's
   * revision is not r (later writes get higher revisions): whether it was applied no longer matters.
   */
  private isDead = (op: number, state: ModelState): boolean => {
    if (this.options.mode !== 'exclusive' || !this.options.trackRevision) return false;
    const request = this.entries.get(op)?.request;
    if (request?.type !== 'txn' || request.failure.some((o) => o.type !== 'range')) return false;
    return request.compare.some((c) => {
      if (c.result !== '=' || (c.target !== 'mod' && c.target !== 'create') || typeof c.value !== 'number') return false;
      const k = state.keys.get(c.key);
      const current = k ? (c.target === 'mod' ? k.mod : k.create) : 0;
      return state.revision >= c.value && current !== c.value;
    });
  };

  /**
   * Gap pruning: in exclusive mode every acknowledged write names its revision, so a write that would
   * take a revision another write's response claims cannot be part of any linearization.
   */
  /** Rules out, without a step, what revisions make impossible (exclusive mode with revisions). */
  private quickReject(state: ModelState, y: OpEntry): boolean {
    if (this.options.mode !== 'exclusive' || !this.options.trackRevision) return false;
    const bumps = bumpsRevision(state, y.request);
    if (bumps === undefined) return false;
    if (y.revision !== undefined && !y.optional && y.revision !== (bumps ? state.revision + 1 : state.revision)) return true;
    if (!bumps) return false;
    const owner = this.claims.get(state.revision + 1);
    return owner !== undefined && owner !== y.index;
  }

  private takesClaimedRevision(before: ModelState, after: ModelState, op: number): boolean {
    if (after.revision <= before.revision) return false;
    const owner = this.claims.get(after.revision);
    return owner !== undefined && owner !== op;
  }

  /** Linearizes every open known operation that does not change the state (see header). */
  private saturate(c: Config): Config {
    let lin = c.lin;
    let knownHash = c.knownHash;
    let path = c.path;
    for (const e of this.open) {
      if (e.optional || lin.includes(e.index) || this.quickReject(c.state, e)) continue;
      this.tick();
      if (step(c.state, e.request, e.response, this.options) === c.state) {
        lin = insertSorted(lin, e.index);
        knownHash ^= e.zobrist;
        if (this.options.trackPaths) path = extend(e.index, path);
      }
    }
    return lin === c.lin ? c : { ...c, lin, knownHash, path };
  }

  private settle(x: OpEntry): void {
    const results = new ConfigSet(this.isOptional, this.isDead);
    const visited = new ConfigSet(this.isOptional, this.isDead);
    const limit = x.revision !== undefined && this.options.trackRevision && this.options.mode === 'exclusive' ? x.revision : Infinity;
    // Breadth-first, so that a configuration that linearized fewer optional operations is met before
    // the ones it dominates (depth-first would first walk every chain of timed-out writes).
    const cap = this.capping ? this.revisionCap() : undefined;
    const queue: Config[] = cap === undefined ? [...this.frontier] : this.frontier.map((c) => this.capped(c, cap));
    try {
      for (let head = 0; head < queue.length; head++) {
        const c = this.saturate(queue[head]!);
        if (!visited.add(c)) continue;
        this.explored++;
        const bound = this.beam ? beamWidth * 8 : this.options.maxFrontier * 4;
        if (visited.size > bound || queue.length - head > bound * 2) {
          if (!this.beam) throw new InconclusiveError(`more than ${this.options.maxFrontier * 4} configurations around operation ${x.index}`);
          // The beam keeps what it found so far.
          this.lossy = true;
          break;
        }
        if (c.lin.includes(x.index)) {
          results.add({ ...c, lin: c.lin.filter((op) => op !== x.index), knownHash: c.knownHash ^ x.zobrist });
          continue;
        }
        const exclusive = this.options.mode === 'exclusive';
        // An unknown-outcome put/delete/txn either creates the next revision or changes nothing (and
        // leaving it out dominates then). When a known write claims the next revision, none can go next.
        const writesBlocked = exclusive && this.options.trackRevision && this.claims.has(c.state.revision + 1);
        const lists = writesBlocked ? [this.open, this.openOptionalOther] : [this.open, this.openOptionalWrites, this.openOptionalOther];
        // Of identical unknown-outcome requests still available, only the earliest called is tried.
        const triedSymmetric = new Set<string>();
        for (const list of lists) for (const y of list) {
          // Known reads never change an exclusive-mode state: saturate() already placed those that fit.
          if ((exclusive && y.readOnly && y !== x) || c.lin.includes(y.index)) continue;
          // The beam places an unknown-outcome key-value write only before every state-changing operation
          // called after it (tested before symmetry: one it passes over is not available).
          if (this.beam && list === this.openOptionalWrites && y.call < (c.maxCall ?? -Infinity)) continue;
          if (y.symmetryKey !== undefined) {
            if (triedSymmetric.has(y.symmetryKey)) continue;
            triedSymmetric.add(y.symmetryKey);
          }
          if (this.quickReject(c.state, y)) continue;
          this.tick();
          const stepped = step(c.state, y.request, y.response, this.options);
          const next = stepped === null || cap === undefined ? stepped : capRevisions(stepped, cap);
          if (next === null || next.revision > limit || this.takesClaimedRevision(c.state, next, y.index)) continue;
          queue.push({
            state: next,
            stateHash: next === c.state ? c.stateHash : stateHash(next),
            lin: insertSorted(c.lin, y.index),
            knownHash: y.optional ? c.knownHash : c.knownHash ^ y.zobrist,
            path: this.options.trackPaths ? extend(y.index, c.path) : null,
            ...(this.beam ? { maxCall: next === c.state ? (c.maxCall ?? -Infinity) : Math.max(c.maxCall ?? -Infinity, y.call) } : {}),
          });
        }
        if (head > 4096 && head * 2 > queue.length) {
          queue.splice(0, head + 1);
          head = -1;
        }
      }
    } catch (error) {
      if (error instanceof InconclusiveError) {
        if (this.startCapping()) {
          this.settle(x);
          return;
        }
        this.inconclusive = this.beam ? `${error.message} (beam search)` : error.message;
        return;
      }
      throw error;
    }
    if (results.size > this.options.maxFrontier && this.startCapping()) {
      this.settle(x);
      return;
    }
    this.open = this.open.filter((e) => e !== x);
    if (results.size === 0) {
      if (this.lossy) this.inconclusive = `the beam search found no order up to operation ${x.index} (it had cut candidates)`;
      else this.violation = this.evidence(x);
      return;
    }
    if (results.size > this.options.maxFrontier && !this.beam) {
      this.inconclusive = `more than ${this.options.maxFrontier} candidate configurations after operation ${x.index}`;
      return;
    }
    this.frontier = this.beam ? this.cut(results) : results.values();
    this.forgetSettledClaims();
  }

  /** Claims below every candidate state's revision can no longer matter (keeps live memory bounded). */
  private forgetSettledClaims(): void {
    if (this.claims.size < 4096 || (this.settled & 0xfff) !== 0) return;
    let lowest = Infinity;
    for (const c of this.frontier) lowest = Math.min(lowest, c.state.revision);
    for (const revision of this.claims.keys()) if (revision <= lowest) this.claims.delete(revision);
  }

  private evidence(x: OpEntry): ViolationEvidence {
    const best = this.frontier[0]!;
    const why: Why = { reason: '' };
    step(best.state, x.request, x.response, this.options, why);
    const reason = why.reason
      ? `operation ${x.index} (${x.request.type}) cannot be linearized: ${why.reason}`
      : `operation ${x.index} (${x.request.type}) fits no order of the operations concurrent with it`;
    return {
      prefix: this.options.trackPaths ? pathToList(best.path, this.handedOver) : [],
      unplaceable: [x.index, ...this.open.filter((e) => !e.optional && !best.lin.includes(e.index)).map((e) => e.index)],
      states: this.candidateStates(),
      reason,
    };
  }
}
