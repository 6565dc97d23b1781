/**
 * What each operation kind of a traffic profile sends. An action issues one or more recorded requests
 * through its client (one at a time) and remembers what it learned (revisions, mod revisions, its lease)
 * so later requests can be stale reads at a recent revision or optimistic writes on a known version.
 *
 * Every written value is unique (one counter per run), so a value identifies the write that made it:
 * the checker relies on that to resolve unknown outcomes quickly.
 */
import type { EtcdOperationKind, EtcdRequest, EtcdResponse, KubernetesOperationKind, OperationKind, RangeResponse, TrafficProfile, TxnOp } from '../domain/index.ts';
import { isErrorResponse, prefixEnd } from '../domain/index.ts';
import type { Outcome } from './recording-client.ts';


/** Shared by every client of a run. */
export interface TrafficEnvironment {
  readonly prefix: string;
  readonly profile: TrafficProfile;
  readonly keys: KeyPool;
  readonly values: UniqueValues;
  /** Leases outlive the run: the model does not expire them. */
  readonly leaseTtlSeconds: number;
  /** List-then-watch: open a recorded watch over [key, end) from a revision, for a short while. */
  readonly watchFrom?: (key: string, end: string, startRevision: number) => void;
}

/** What one client remembers between requests. */
export interface ClientMemory {
  lastRevision: number;
  /** The oldest revision a past-revision read may name: the run's start (the history holds no state before it). */
  firstRevision: number;
  modRevisions: Map<string, number>;
  lease: string | undefined;
  lastFailed: boolean;
}

export interface TrafficClient {
  /** Sends one recorded request (after the run's rate limiter admits it). */
  execute(request: EtcdRequest): Promise<Outcome>;
  readonly random: () => number;
  readonly memory: ClientMemory;
}

export type Action = (env: TrafficEnvironment, client: TrafficClient) => Promise<void>;

export function newClientMemory(firstRevision = 1): ClientMemory {
  return { lastRevision: 0, firstRevision, modRevisions: new Map(), lease: undefined, lastFailed: false };
}


export class UniqueValues {
  private counter = 0;
  private readonly size: number;
  private readonly tag: string;

  constructor(size: number, tag = 'v') {
    this.size = size;
    this.tag = tag;
  }

  next(): string {
    const base = `${this.tag}${++this.counter}`;
    return base.length >= this.size ? base : `${base}-${'x'.repeat(this.size - base.length - 1)}`;
  }

  get issued(): number {
    return this.counter;
  }
}

/**
 * A small pool of key names under the prefix. A deleted key's slot gets a new name, as in etcd's
 * traffic, so the key space rotates instead of piling tombstones on the same few keys.
 *
 * A put that lands after another client's delete of the same name (which retired it) leaves a live key
 * the pool no longer names, which nothing would delete again: list reads then grew with every such race
 * (1,515 live keys after a 5-minute default run, each list read about 220 KB, the history 1.8 GB). As
 * etcd's traffic does (keyStore.SyncKeys), linearizable list reads hand such keys back to the pool (sync),
 * so they are deleted in their turn and the live keys stay about the pool's size.
 */
export class KeyPool {
  private names: string[];
  private readonly generation: number[];
  private readonly prefix: string;
  /** The newest list read synced from: an older (stale) one may name keys deleted since. */
  private syncedRevision = 0;

  constructor(prefix: string, size: number) {
    this.prefix = prefix;
    this.generation = Array.from({ length: size }, () => 0);
    this.names = this.generation.map((_, slot) => this.name(slot));
  }

  private name(slot: number): string {
    return `${this.prefix}key${slot}-${this.generation[slot]}`;
  }

  /** A name this pool gives (`<prefix>key<slot>-<generation>`), parsed; undefined for any other key. */
  private parse(key: string): { key: string; slot: number; generation: number } | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const match = /^key(\d+)-(\d+)$/.exec(key.slice(this.prefix.length));
    return match === null ? undefined : { key, slot: Number(match[1]), generation: Number(match[2]) };
  }

  pick(random: () => number): string {
    return this.names[Math.floor(random() * this.names.length)]!;
  }

  /** `count` distinct keys (at most the pool size). */
  pickDistinct(random: () => number, count: number): string[] {
    const slots = this.names.map((_, i) => i);
    for (let i = slots.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [slots[i], slots[j]] = [slots[j]!, slots[i]!];
    }
    return slots.slice(0, Math.min(count, slots.length)).map((s) => this.names[s]!);
  }

  retire(key: string): void {
    const slot = this.names.indexOf(key);
    if (slot < 0) return;
    // Generations only grow, so the new name was never issued: no key of that name can exist.
    this.generation[slot]!++;
    this.names[slot] = this.name(slot);
  }

  /**
   * Takes the keys a linearizable list read at `revision` showed: the pool's names and the keys of the
   * pool's shape it shows, oldest generation first, make the new names (the pool keeps its size). Keys of
   * other shapes are not the traffic's (the fault driver's, another tool's) and stay out.
   */
  sync(listed: readonly string[], revision: number): void {
    if (revision < this.syncedRevision) return;
    this.syncedRevision = revision;
    const known = new Set(this.names);
    const found = listed.filter((key) => !known.has(key)).map((key) => this.parse(key)).filter((k) => k !== undefined);
    if (found.length === 0) return;
    for (const key of this.names) found.push(this.parse(key)!);
    found.sort((a, b) => a.generation - b.generation || a.slot - b.slot);
    this.names = found.slice(0, this.names.length).map((k) => k.key);
  }
}

/** Draws operation kinds by weight. */
export function kindPicker(weights: Partial<Record<OperationKind, number>>): (random: () => number) => OperationKind {
  const entries = Object.entries(weights).filter(([, w]) => w > 0) as [OperationKind, number][];
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  if (entries.length === 0) throw new RangeError('a traffic profile needs at least one operation kind with a positive weight');
  return (random) => {
    let r = random() * total;
    for (const [kind, weight] of entries) {
      r -= weight;
      if (r < 0) return kind;
    }
    return entries[entries.length - 1]![0];
  };
}

/** Learns revisions and mod revisions from a successful answer. */
export function remember(memory: ClientMemory, request: EtcdRequest, response: EtcdResponse): void {
  if (isErrorResponse(response)) return;
  if (response.revision !== undefined && response.revision > memory.lastRevision) memory.lastRevision = response.revision;
  const learnRange = (r: RangeResponse): void => {
    for (const kv of r.kvs) if (kv.modRevision !== undefined) memory.modRevisions.set(kv.key, kv.modRevision);
  };
  const learnOp = (op: TxnOp, result: EtcdResponse | undefined, revision: number | undefined): void => {
    if (op.type === 'range' && result && 'kvs' in result) learnRange(result);
    else if (op.type === 'put' && revision !== undefined) memory.modRevisions.set(op.key, revision);
    else if (op.type === 'delete') memory.modRevisions.delete(op.key);
  };
  if (request.type === 'txn' && 'succeeded' in response) {
    const ops = response.succeeded ? request.success : request.failure;
    ops.forEach((op, i) => learnOp(op, response.results?.[i], response.revision));
  } else if (request.type === 'range' || request.type === 'put' || request.type === 'delete') {
    learnOp(request, response, response.revision);
  }
}

const prefixRange = (prefix: string): { key: string; end: string } => ({ key: prefix, end: prefixEnd(prefix) });

/** A stale read: serializable, or at a revision the client saw recently (may be compacted: a definite error). */
function staleRead(client: TrafficClient, range: { key: string; end?: string }): EtcdRequest {
  const { lastRevision, firstRevision } = client.memory;
  if (lastRevision > 1 && client.random() < 0.5) {
    const back = Math.floor(client.random() * 3);
    return { type: 'range', ...range, revision: Math.max(1, firstRevision, lastRevision - back) };
  }
  return { type: 'range', ...range, serializable: true };
}

async function send(client: TrafficClient, request: EtcdRequest): Promise<Outcome> {
  const outcome = await client.execute(request);
  client.memory.lastFailed = outcome.kind !== 'ok';
  if (outcome.kind === 'ok') remember(client.memory, request, outcome.response);
  return outcome;
}

/**
 * Hands the keys of a linearizable list read of the prefix to the key pool (KeyPool.sync). Not a stale
 * one's: it may show keys deleted since, whose names would come back.
 */
function syncKeys(env: TrafficEnvironment, outcome: Outcome): void {
  if (outcome.kind !== 'ok' || isErrorResponse(outcome.response) || !('kvs' in outcome.response)) return;
  const { kvs, revision } = outcome.response;
  if (revision !== undefined) env.keys.sync(kvs.map((kv) => kv.key), revision);
}

async function grantLease(env: TrafficEnvironment, client: TrafficClient): Promise<void> {
  // Client-chosen ids keep the history self-describing (the model needs the id at grant time).
  const id = (BigInt(Math.floor(client.random() * 2 ** 30)) * 2n ** 30n + BigInt(Math.floor(client.random() * 2 ** 30)) + 1n).toString();
  const outcome = await send(client, { type: 'leaseGrant', id, ttl: env.leaseTtlSeconds });
  if (outcome.kind === 'ok') client.memory.lease = id;
}

export const etcdActions: Readonly<Record<EtcdOperationKind, Action>> = {
  get: async (env, client) => {
    await send(client, { type: 'range', key: env.keys.pick(client.random) });
  },
  staleGet: async (env, client) => {
    await send(client, staleRead(client, { key: env.keys.pick(client.random) }));
  },
  list: async (env, client) => {
    syncKeys(env, await send(client, { type: 'range', ...prefixRange(env.prefix) }));
  },
  keysOnlyList: async (env, client) => {
    syncKeys(env, await send(client, { type: 'range', ...prefixRange(env.prefix), keysOnly: true }));
  },
  staleList: async (env, client) => {
    await send(client, staleRead(client, prefixRange(env.prefix)));
  },
  put: async (env, client) => {
    await send(client, { type: 'put', key: env.keys.pick(client.random), value: env.values.next() });
  },
  delete: async (env, client) => {
    const key = env.keys.pick(client.random);
    const outcome = await send(client, { type: 'delete', key });
    if (outcome.kind === 'ok') env.keys.retire(key);
  },
  multiOpTxn: async (env, client) => {
    const ops: TxnOp[] = env.keys.pickDistinct(client.random, 4).map((key) => {
      const r = client.random();
      if (r < 0.5) return { type: 'range', key };
      if (r < 0.9) return { type: 'put', key, value: env.values.next() };
      return { type: 'delete', key };
    });
    await send(client, { type: 'txn', compare: [], success: ops, failure: [] });
  },
  compareAndSet: async (env, client) => {
    const key = env.keys.pick(client.random);
    let mod = client.memory.modRevisions.get(key);
    if (mod === undefined) {
      // etcd's traffic reads first when it does not know the key's version.
      const read = await send(client, { type: 'range', key });
      if (read.kind !== 'ok') return;
      mod = client.memory.modRevisions.get(key) ?? 0;
    }
    await send(client, {
      type: 'txn',
      compare: [{ key, target: 'mod', result: '=', value: mod }],
      success: [{ type: 'put', key, value: env.values.next() }],
      failure: [{ type: 'range', key }],
    });
  },
  putWithLease: async (env, client) => {
    if (client.memory.lease === undefined) return grantLease(env, client);
    const outcome = await send(client, { type: 'put', key: env.keys.pick(client.random), value: env.values.next(), lease: client.memory.lease });
    // The lease may have been revoked by an unknown-outcome revoke: start over with a new one.
    if (outcome.kind !== 'ok') client.memory.lease = undefined;
  },
  leaseRevoke: async (env, client) => {
    const lease = client.memory.lease;
    if (lease === undefined) return grantLease(env, client);
    client.memory.lease = undefined;
    await send(client, { type: 'leaseRevoke', id: lease });
  },
};

function objectKey(env: TrafficEnvironment, client: TrafficClient): string {
  const { resources, namespaces, keys } = env.profile;
  const resource = resources[Math.floor(client.random() * resources.length)]!;
  const namespace = namespaces[Math.floor(client.random() * namespaces.length)]!;
  return `${env.prefix}registry/${resource}/${namespace}/obj-${Math.floor(client.random() * keys)}`;
}

function resourcePrefix(env: TrafficEnvironment, client: TrafficClient): string {
  const { resources } = env.profile;
  return `${env.prefix}registry/${resources[Math.floor(client.random() * resources.length)]!}/`;
}

/** kube-apiserver's paged list: the first page at the latest revision, later pages at that revision. */
async function pagedList(env: TrafficEnvironment, client: TrafficClient, prefix: string): Promise<number | undefined> {
  const limit = env.profile.pageSize;
  const end = prefixEnd(prefix);
  let key = prefix;
  let revision: number | undefined;
  for (let page = 0; page < 1000; page++) {
    const outcome = await send(client, { type: 'range', key, end, limit, ...(revision === undefined ? {} : { revision }) });
    if (outcome.kind !== 'ok' || isErrorResponse(outcome.response)) return undefined;
    const response = outcome.response as RangeResponse;
    revision ??= response.revision;
    const last = response.kvs[response.kvs.length - 1];
    if (last === undefined || response.kvs.length < limit || (response.count ?? 0) <= response.kvs.length) return revision;
    key = `${last.key}\u0000`;
  }
  return revision;
}

/** An optimistic write as the apiserver's etcd3 store does it: txn on the mod revision, else get. */
function optimistic(key: string, mod: number, write: TxnOp): EtcdRequest {
  return { type: 'txn', compare: [{ key, target: 'mod', result: '=', value: mod }], success: [write], failure: [{ type: 'range', key }] };
}

export const kubernetesActions: Readonly<Record<KubernetesOperationKind, Action>> = {
  get: async (env, client) => {
    await send(client, { type: 'range', key: objectKey(env, client) });
  },
  list: async (env, client) => {
    await pagedList(env, client, resourcePrefix(env, client));
  },
  listWatch: async (env, client) => {
    const prefix = resourcePrefix(env, client);
    const revision = await pagedList(env, client, prefix);
    if (revision !== undefined) env.watchFrom?.(prefix, prefixEnd(prefix), revision + 1);
  },
  create: async (env, client) => {
    const key = objectKey(env, client);
    await send(client, optimistic(key, 0, { type: 'put', key, value: env.values.next() }));
  },
  update: async (env, client) => {
    const key = objectKey(env, client);
    const mod = client.memory.modRevisions.get(key);
    if (mod === undefined) {
      await send(client, { type: 'range', key });
      return;
    }
    await send(client, optimistic(key, mod, { type: 'put', key, value: env.values.next() }));
  },
  delete: async (env, client) => {
    const key = objectKey(env, client);
    const mod = client.memory.modRevisions.get(key);
    if (mod === undefined) {
      await send(client, { type: 'range', key });
      return;
    }
    await send(client, optimistic(key, mod, { type: 'delete', key }));
  },
};

export function actionFor(kind: OperationKind, profile: TrafficProfile): Action {
  const table: Readonly<Partial<Record<OperationKind, Action>>> = profile.name === 'etcd' ? etcdActions : kubernetesActions;
  const action = table[kind];
  if (!action) throw new RangeError(`profile ${profile.name} has no operation kind "${kind}"`);
  return action;
}

/**
 * One client's loop: draw a kind, run it, until `stopped()`. After a failed request the next one is a
 * list, as in etcd's traffic: it re-learns the key space after an error.
 */
export async function runClient(env: TrafficEnvironment, client: TrafficClient, stopped: () => boolean): Promise<void> {
  const pick = kindPicker(env.profile.weights);
  const recoveryKind: OperationKind = 'list';
  while (!stopped()) {
    const kind = client.memory.lastFailed ? recoveryKind : pick(client.random);
    await actionFor(kind, env.profile)(env, client);
  }
}
