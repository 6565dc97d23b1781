/**
 * Deterministic, seeded generators of histories for the checker benchmark (bench/checker.ts) and its
 * tests. Every history comes from a simulation of a real store under real concurrency: each operation
 * gets a linearization point inside [call, return] and its response is computed from the simulated
 * store in linearization-point order, so an uncorrupted history is linearizable by construction.
 *
 * Two shapes:
 * - register histories shaped like Jepsen's etcd register tests (porcupine's test_data/jepsen): one key,
 *   5-10 clients, ~80 get/put/compare-and-set operations, no revisions in the responses (as if imported
 *   from another tool) and many timed-out operations; optionally with one corrupted response;
 * - etcd-shaped histories with revisions (exclusive mode, empty store at revision 1): gets, prefix
 *   ranges, puts, deletes and mod-revision txns over a few keys, in any length, also as an endless
 *   stream in the order a recorder would emit operations (createEtcdSimulation).
 */
import type { EtcdRequest, EtcdResponse, History, HistoryMeta, Operation, RangeResponse } from '../src/domain/index.ts';
// The sequential store the simulation applies operations to: the same independent oracle the property
// tests use.
import { seededRandom } from '../src/random.ts';
import { EtcdSimulator } from '../test/helpers/etcd-simulator.ts';

// ---------------------------------------------------------------------------------------------------
// Randomness


export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }
  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }
}

// ---------------------------------------------------------------------------------------------------
// A small binary min-heap (ties broken by insertion order, so the simulation is deterministic)

class MinHeap<T> {
  private readonly items: { key: number; seq: number; value: T }[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  peekKey(): number | undefined {
    return this.items[0]?.key;
  }

  peek(): T | undefined {
    return this.items[0]?.value;
  }

  push(key: number, value: T): void {
    const items = this.items;
    const entry = { key, seq: this.seq++, value };
    let i = items.length;
    items.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(entry, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = entry;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined) return undefined;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= items.length) break;
        const r = l + 1;
        const child = r < items.length && this.less(items[r]!, items[l]!) ? r : l;
        if (!this.less(items[child]!, last)) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top.value;
  }

  private less(a: { key: number; seq: number }, b: { key: number; seq: number }): boolean {
    return a.key < b.key || (a.key === b.key && a.seq < b.seq);
  }
}

// ---------------------------------------------------------------------------------------------------
// The concurrent-client simulation

interface SimOp {
  client: number;
  call: number;
  /** Planned return time; the operation's return is null when it timed out. */
  ret: number;
  timedOut: boolean;
  request: EtcdRequest;
  response?: EtcdResponse;
  /** When a recorder would write the operation: its return, or when the client gave up on it. */
  emitAt: number;
}

/** A timed-out operation that takes effect (at its own linearization point) after its client gave up. */
interface Ghost {
  request: EtcdRequest;
}

type LpEvent = { kind: 'op'; op: SimOp } | { kind: 'ghost'; ghost: Ghost };

export interface SimulationOptions {
  seed: number;
  /** Concurrent clients. */
  clients: number;
  /** Stop after creating this many operations (Infinity: an endless stream). */
  operations: number;
  initialRevision?: number;
  /** Chooses the next request; sees the store as of now (a client's knowledge is roughly this fresh). */
  nextRequest: (rng: Rng, store: EtcdSimulator) => EtcdRequest;
  /** Return - call, in ns (>= 1). */
  latency: (rng: Rng) => number;
  /** Time between a client's return and its next call, in ns (>= 1). */
  gap: (rng: Rng) => number;
  /** Probability that this request times out (outcome unknown to the client). */
  timeoutProbability: (request: EtcdRequest) => number;
  /** After a timeout the client gives up this long after the call and continues under a new client id. */
  timeoutNs: number;
  /** Probability that a timed-out operation takes effect at all. */
  effectProbability: number;
  /** Linearization point - call of a timed-out operation that takes effect. */
  effectDelay: (rng: Rng) => number;
  /** Turns the store's full response into the recorded one (e.g. strips revisions). */
  record?: (response: EtcdResponse, request: EtcdRequest) => EtcdResponse;
  /** Called for every operation the store applies, at its linearization point, in order. */
  onApply?: (lp: number, request: EtcdRequest, store: EtcdSimulator) => void;
}

export interface Emitted {
  op: Operation;
  /** Every operation with call < watermark has been emitted (this one included). */
  watermark: number;
}

export const TIMEOUT_ERROR = 'context deadline exceeded';

/**
 * Simulates clients against one store and emits their operations in the order a recorder sees them
 * complete (return time; a timed-out operation when its client gives up), with a watermark.
 */
export class Simulation {
  readonly rng: Rng;
  readonly store: EtcdSimulator;
  private readonly options: SimulationOptions;
  /** Normal operations and ghost effects, by linearization point. */
  private readonly lpHeap = new MinHeap<LpEvent>();
  /** Operations whose outcome is settled, by emission time. */
  private readonly emitHeap = new MinHeap<SimOp>();
  /** Operations created and not yet emitted. */
  private readonly outstanding = new Set<SimOp>();
  private created = 0;
  private nextClient: number;

  constructor(options: SimulationOptions) {
    this.options = options;
    this.rng = new Rng(options.seed);
    this.store = new EtcdSimulator(options.initialRevision ?? 1);
    this.nextClient = options.clients;
    for (let c = 0; c < options.clients; c++) this.schedule(c, 0);
  }

  private schedule(client: number, after: number): void {
    const o = this.options;
    const rng = this.rng;
    if (this.created >= o.operations) return;
    this.created++;
    const call = after + Math.max(1, o.gap(rng));
    const request = o.nextRequest(rng, this.store);
    if (rng.chance(o.timeoutProbability(request))) {
      const op: SimOp = { client, call, ret: -1, timedOut: true, request, emitAt: call + o.timeoutNs };
      this.outstanding.add(op);
      this.emitHeap.push(op.emitAt, op);
      if (rng.chance(o.effectProbability)) this.lpHeap.push(call + Math.max(0, o.effectDelay(rng)), { kind: 'ghost', ghost: { request } });
      // Like Jepsen's crashed processes: the client continues under a new id once it gives up.
      this.schedule(this.nextClient++, op.emitAt);
      return;
    }
    const latency = Math.max(1, o.latency(rng));
    const op: SimOp = { client, call, ret: call + latency, timedOut: false, request, emitAt: call + latency };
    this.outstanding.add(op);
    this.lpHeap.push(call + rng.int(0, latency), { kind: 'op', op });
  }

  /** The next operation a recorder would write, or undefined once a finite simulation is exhausted. */
  next(): Emitted | undefined {
    for (;;) {
      const frontier = this.lpHeap.peekKey() ?? Infinity;
      const top = this.emitHeap.peek();
      if (top !== undefined && top.emitAt <= frontier) {
        this.emitHeap.pop();
        this.outstanding.delete(top);
        let watermark = top.emitAt;
        for (const op of this.outstanding) if (op.call < watermark) watermark = op.call;
        return { op: toOperation(top), watermark };
      }
      const event = this.lpHeap.pop();
      if (event === undefined) return undefined;
      const lp = frontier;
      if (event.kind === 'ghost') {
        this.store.apply(event.ghost.request);
        this.options.onApply?.(lp, event.ghost.request, this.store);
        continue;
      }
      const op = event.op;
      const response = this.store.apply(op.request);
      this.options.onApply?.(lp, op.request, this.store);
      op.response = this.options.record ? this.options.record(response, op.request) : response;
      this.emitHeap.push(op.emitAt, op);
      this.schedule(op.client, op.ret);
    }
  }

  /** Every remaining operation, in emission order. */
  drain(): Operation[] {
    const ops: Operation[] = [];
    for (let e = this.next(); e; e = this.next()) ops.push(e.op);
    return ops;
  }
}

function toOperation(op: SimOp): Operation {
  if (op.timedOut) return { client: op.client, call: op.call, return: null, request: op.request, error: TIMEOUT_ERROR };
  return { client: op.client, call: op.call, return: op.ret, request: op.request, response: op.response! };
}

// ---------------------------------------------------------------------------------------------------
// Jepsen-style register histories

export const REGISTER_KEY = 'r';

export interface RegisterHistoryOptions {
  seed: number;
  /** Operations in the history (default 80). */
  operations?: number;
  /** Concurrent clients (default: 5-10, from the seed). */
  clients?: number;
  /** Fraction of operations that time out (default: 0.1-0.3, from the seed). */
  timeoutRate?: number;
  /** Corrupt one response (the history then is most likely, not certainly, non-linearizable). */
  corrupt?: boolean;
}

export interface GeneratedHistory {
  seed: number;
  /** Concurrent clients at the start (timed-out clients continue under new ids). */
  clients: number;
  history: History;
  /** Ground truth of the generator only: whether a response was corrupted. */
  corrupted: boolean;
  /** What was corrupted, for reports. */
  corruption?: string;
}

/** The register operation a request is: get, put or compare-and-set (value compare, one put). */
export type RegisterCall =
  | { kind: 'get'; key: string }
  | { kind: 'put'; key: string; value: string }
  | { kind: 'cas'; key: string; from: string; to: string };

export function registerCall(request: EtcdRequest): RegisterCall | undefined {
  if (request.type === 'range' && request.end === undefined) return { kind: 'get', key: request.key };
  if (request.type === 'put') return { kind: 'put', key: request.key, value: request.value };
  if (request.type === 'txn' && request.compare.length === 1 && request.success.length === 1 && request.failure.length === 0) {
    const c = request.compare[0]!;
    const p = request.success[0]!;
    if (c.target === 'value' && c.result === '=' && typeof c.value === 'string' && p.type === 'put' && p.key === c.key) {
      return { kind: 'cas', key: c.key, from: c.value, to: p.value };
    }
  }
  return undefined;
}

/** The register responses as another tool would have recorded them: values only, no revisions. */
function registerRecord(response: EtcdResponse, request: EtcdRequest): EtcdResponse {
  switch (request.type) {
    case 'range':
      return { kvs: (response as RangeResponse).kvs.map((kv) => ({ key: kv.key, value: kv.value! })) };
    case 'txn':
      return { succeeded: (response as { succeeded: boolean }).succeeded };
    default:
      return {};
  }
}

export function casRequest(key: string, from: string, to: string): EtcdRequest {
  return { type: 'txn', compare: [{ key, target: 'value', result: '=', value: from }], success: [{ type: 'put', key, value: to }], failure: [] };
}

const MS = 1_000_000;

export function generateRegisterHistory(options: RegisterHistoryOptions): GeneratedHistory {
  const setup = new Rng(options.seed ^ 0x5bd1e995);
  const clients = options.clients ?? setup.int(5, 10);
  const timeoutRate = options.timeoutRate ?? 0.1 + 0.2 * setup.float();
  const written: string[] = [];
  let counter = 0;
  const fresh = (): string => {
    const value = `v${++counter}`;
    written.push(value);
    return value;
  };
  /** The register's value after each applied write, with its linearization point. */
  const timeline: { lp: number; value: string | undefined }[] = [{ lp: -1, value: undefined }];
  const sim = new Simulation({
    seed: options.seed,
    clients,
    operations: options.operations ?? 80,
    nextRequest: (rng, store) => {
      const r = rng.float();
      if (r < 0.34) return { type: 'range', key: REGISTER_KEY };
      if (r < 0.67) return { type: 'put', key: REGISTER_KEY, value: fresh() };
      // Compare-and-set from what the client believes is current (often stale by the time it applies).
      const current = store.get(REGISTER_KEY)?.value;
      const from = current !== undefined && rng.chance(0.7) ? current : written.length > 0 ? rng.pick(written) : 'v0';
      return casRequest(REGISTER_KEY, from, fresh());
    },
    latency: (rng) => rng.int(1 * MS, 12 * MS) + (rng.chance(0.1) ? rng.int(0, 20 * MS) : 0),
    gap: (rng) => rng.int(1, 3 * MS),
    timeoutProbability: () => timeoutRate,
    timeoutNs: 40 * MS,
    effectProbability: 0.5,
    effectDelay: (rng) => rng.int(0, 60 * MS),
    record: registerRecord,
    onApply: (lp, request, store) => {
      const value = store.get(REGISTER_KEY)?.value;
      if (request.type !== 'range' && value !== timeline[timeline.length - 1]!.value) timeline.push({ lp, value });
    },
  });
  const operations = sim.drain();
  // Imported-style: the meta line says only that the register starts absent (exclusive), no revisions.
  const history: History = { meta: { kind: 'meta', mode: 'exclusive', seed: options.seed }, operations, watches: [] };
  if (!options.corrupt) return { seed: options.seed, clients, history, corrupted: false };
  return { seed: options.seed, clients, history, corrupted: true, corruption: corruptRegister(history, new Rng(options.seed ^ 0x2545f491), timeline) };
}

/** Corrupts one completed get or compare-and-set in place; returns a description. */
function corruptRegister(history: History, rng: Rng, timeline: { lp: number; value: string | undefined }[]): string {
  const candidates = history.operations
    .map((op, index) => ({ op, index }))
    .filter(({ op }) => op.response !== undefined && (op.request.type === 'range' || op.request.type === 'txn'));
  const { op, index } = rng.pick(candidates);
  const response = op.response!;
  if (op.request.type === 'txn') {
    const r = response as { succeeded: boolean };
    r.succeeded = !r.succeeded;
    return `operation ${index}: compare-and-set succeeded flipped to ${r.succeeded}`;
  }
  const read = response as RangeResponse;
  const got = read.kvs[0]?.value;
  // Values that had already been overwritten before the read was even called.
  const older: (string | undefined)[] = [];
  for (let i = 0; i + 1 < timeline.length; i++) {
    if (timeline[i + 1]!.lp < op.call && timeline[i]!.value !== got) older.push(timeline[i]!.value);
  }
  if (older.length > 0 && rng.chance(0.6)) {
    const value = rng.pick(older);
    read.kvs = value === undefined ? [] : [{ key: REGISTER_KEY, value }];
    return `operation ${index}: read returns the older value ${value ?? '(absent)'} instead of ${got ?? '(absent)'}`;
  }
  read.kvs = [{ key: REGISTER_KEY, value: 'never-written' }];
  return `operation ${index}: read returns a never-written value instead of ${got ?? '(absent)'}`;
}

// ---------------------------------------------------------------------------------------------------
// Large etcd-shaped histories (with revisions)

export interface EtcdHistoryOptions {
  seed: number;
  /** Operations to create (Infinity: endless, for streaming). */
  operations: number;
  clients?: number;
  keys?: number;
  prefix?: string;
  /** Fraction of writes (put, delete, txn) whose outcome is unknown (default 0.005). */
  unknownWriteRate?: number;
}

export const ETCD_PREFIX = '/bench/';

/** The exclusive end of a prefix range: the prefix with its last byte incremented. */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

export function etcdMeta(options: EtcdHistoryOptions): HistoryMeta {
  return { kind: 'meta', mode: 'exclusive', initialRevision: 1, seed: options.seed, prefix: options.prefix ?? ETCD_PREFIX };
}

export function createEtcdSimulation(options: EtcdHistoryOptions): Simulation {
  const prefix = options.prefix ?? ETCD_PREFIX;
  const keys = Array.from({ length: options.keys ?? 10 }, (_, i) => `${prefix}k${i}`);
  const end = prefixEnd(prefix);
  const unknownWriteRate = options.unknownWriteRate ?? 0.005;
  let counter = 0;
  return new Simulation({
    seed: options.seed,
    clients: options.clients ?? 8,
    operations: options.operations,
    initialRevision: 1,
    nextRequest: (rng, store) => {
      const key = rng.pick(keys);
      const r = rng.float();
      if (r < 0.3) return { type: 'range', key };
      if (r < 0.4) return { type: 'range', key: prefix, end };
      if (r < 0.65) return { type: 'put', key, value: `v${++counter}` };
      if (r < 0.75) return { type: 'delete', key };
      // Optimistic concurrency as etcd clients do it: put if unchanged since the client's last read
      // (mod revision 0 = absent), else read the key again.
      const mod = store.get(key)?.modRevision ?? 0;
      const seen = rng.chance(0.8) ? mod : Math.max(0, mod - rng.int(1, 20));
      return {
        type: 'txn',
        compare: [{ key, target: 'mod', result: '=', value: seen }],
        success: [{ type: 'put', key, value: `v${++counter}` }],
        failure: [{ type: 'range', key }],
      };
    },
    latency: (rng) => rng.int(100_000, 2 * MS) + (rng.chance(0.01) ? rng.int(0, 20 * MS) : 0),
    gap: (rng) => rng.int(1_000, 200_000),
    timeoutProbability: (request) => (request.type === 'range' ? 0 : unknownWriteRate),
    timeoutNs: 50 * MS,
    effectProbability: 0.5,
    effectDelay: (rng) => rng.int(0, 60 * MS),
  });
}

export function generateEtcdHistory(options: EtcdHistoryOptions): History {
  if (!Number.isFinite(options.operations)) throw new Error('generateEtcdHistory needs a finite number of operations');
  return { meta: etcdMeta(options), operations: createEtcdSimulation(options).drain(), watches: [] };
}

// ---------------------------------------------------------------------------------------------------
// JSON Lines

/** The history as JSON Lines (meta line first, then one operation per line). */
export function toJsonl(history: History): string {
  const lines: string[] = [];
  if (history.meta) lines.push(JSON.stringify(history.meta));
  for (const op of history.operations) lines.push(JSON.stringify(op));
  return `${lines.join('\n')}\n`;
}
