// The traffic profiles, driven against an independent in-memory etcd (test/helpers/etcd-simulator.ts):
// every kind a profile weighs is exercised, values are unique, the kubernetes profile sends what the
// apiserver sends, and the recorded history of a correct store is linearizable.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkHistory } from '../../src/checker/index.ts';
import type { EtcdRequest, History, Operation, ProfileName, RangeRequest, TxnRequest } from '../../src/domain/index.ts';
import { isErrorResponse, isWriteRequest } from '../../src/domain/index.ts';
import { builtInProfiles, resolveProfile } from '../../src/probes/profiles.ts';
import { RateLimiter } from '../../src/probes/rate-limiter.ts';
import type { Outcome } from '../../src/probes/recording-client.ts';
import { actionFor, KeyPool, kindPicker, newClientMemory, remember, UniqueValues, type TrafficClient, type TrafficEnvironment } from '../../src/probes/traffic.ts';
import { seededRandom } from '../../src/random.ts';
import { EtcdSimulator } from '../helpers/etcd-simulator.ts';

const prefix = '/etcd-robustness/test/';

/** Runs `steps` actions, one client at a time, against a simulator; returns the recorded history. */
async function drive(profileName: ProfileName, seed: number, steps: number, weights: Record<string, number> = {}): Promise<{ history: History; watches: { key: string; start: number }[] }> {
  const store = new EtcdSimulator(1);
  const profile = resolveProfile({ profile: profileName, weights, keys: builtInProfiles[profileName].keys, valueSize: 16 });
  const operations: Operation[] = [];
  const watches: { key: string; start: number }[] = [];
  let clock = 0;
  const env: TrafficEnvironment = {
    prefix,
    profile,
    keys: new KeyPool(prefix, profile.keys),
    values: new UniqueValues(profile.valueSize),
    leaseTtlSeconds: 600,
    watchFrom: (key, _end, start) => watches.push({ key, start }),
  };
  const clients: TrafficClient[] = Array.from({ length: 4 }, (_, id) => ({
    random: seededRandom(seed * 31 + id),
    memory: newClientMemory(),
    execute: (request: EtcdRequest): Promise<Outcome> => {
      const call = clock++;
      // The simulator keeps no old revisions: a read at an older one is answered as etcd answers a
      // compacted revision (a definite error).
      const past = request.type === 'range' && request.revision !== undefined && request.revision !== store.revision;
      const response = past ? { error: 'etcdserver: mvcc: required revision has been compacted' } : store.apply(request);
      operations.push({ client: id, call, return: clock++, request, response });
      return Promise.resolve(isErrorResponse(response) ? { kind: 'failed', error: response.error } : { kind: 'ok', response });
    },
  }));
  const pick = kindPicker(profile.weights);
  const order = seededRandom(seed);
  for (let i = 0; i < steps; i++) {
    const client = clients[Math.floor(order() * clients.length)]!;
    await actionFor(pick(client.random), profile)(env, client);
  }
  return { history: { meta: { kind: 'meta', mode: 'exclusive', initialRevision: 1, prefix }, operations, watches: [] }, watches };
}

function writtenValues(history: History): string[] {
  const values: string[] = [];
  for (const op of history.operations) {
    const ops = op.request.type === 'txn' ? [...op.request.success, ...op.request.failure] : [op.request];
    for (const o of ops) if (o.type === 'put') values.push(o.value);
  }
  return values;
}

describe('traffic profiles', () => {
  test('etcd profile: every weighted kind shows up, values are unique, and a correct store gives a linearizable history', async () => {
    const { history } = await drive('etcd', 7, 1500);
    const requests = history.operations.map((o) => o.request);
    const has = (predicate: (r: EtcdRequest) => boolean): boolean => requests.some(predicate);
    assert.ok(has((r) => r.type === 'range' && r.end === undefined && !r.serializable && r.revision === undefined), 'get');
    assert.ok(has((r) => r.type === 'range' && r.end !== undefined && r.keysOnly === true), 'keys-only list');
    assert.ok(has((r) => r.type === 'range' && r.serializable === true), 'serializable read');
    assert.ok(has((r) => r.type === 'range' && r.revision !== undefined), 'read at a revision');
    assert.ok(has((r) => r.type === 'put' && r.lease !== undefined), 'put with lease');
    assert.ok(has((r) => r.type === 'leaseGrant') && has((r) => r.type === 'leaseRevoke'), 'lease grant and revoke');
    assert.ok(has((r) => r.type === 'delete'), 'delete');
    assert.ok(has((r) => r.type === 'txn' && r.compare.length === 0 && r.success.length > 1), 'multi-op txn');
    assert.ok(has((r) => r.type === 'txn' && r.compare[0]?.target === 'mod'), 'compare-and-set');
    const values = writtenValues(history);
    assert.equal(new Set(values).size, values.length, 'every written value is unique');
    assert.ok(requests.every((r) => r.type === 'leaseGrant' || r.type === 'leaseRevoke' || ('key' in r ? r.key.startsWith(prefix) : (r as TxnRequest).success.every((o) => o.key.startsWith(prefix)))));
    const report = checkHistory(history);
    assert.equal(report.verdict, 'linearizable', report.linearizability.violation?.reason);
  });

  test('kubernetes profile: registry keys, create-if-absent and optimistic txns, paged lists, list-then-watch', async () => {
    const { history, watches } = await drive('kubernetes', 11, 1500);
    const requests = history.operations.map((o) => o.request);
    const keyPattern = new RegExp(`^${prefix}registry/(pods|configmaps|leases)/(default|kube-system)/obj-\\d+$`);
    const txns = requests.filter((r): r is TxnRequest => r.type === 'txn');
    assert.ok(txns.length > 0);
    for (const txn of txns) {
      assert.equal(txn.compare.length, 1);
      assert.equal(txn.compare[0]!.target, 'mod', 'apiserver writes compare the mod revision');
      assert.match(txn.compare[0]!.key, keyPattern);
      assert.deepEqual(txn.failure, [{ type: 'range', key: txn.compare[0]!.key }], 'on conflict the apiserver reads the object');
    }
    assert.ok(txns.some((t) => t.compare[0]!.value === 0 && t.success[0]?.type === 'put'), 'create: txn on mod revision 0');
    assert.ok(txns.some((t) => t.compare[0]!.value !== 0 && t.success[0]?.type === 'put'), 'optimistic update');
    assert.ok(txns.some((t) => t.success[0]?.type === 'delete'), 'optimistic delete');
    const pages = requests.filter((r): r is RangeRequest => r.type === 'range' && r.limit !== undefined);
    assert.ok(pages.every((p) => p.limit === 10));
    const continued = pages.filter((p) => p.key.endsWith('\u0000'));
    assert.ok(continued.length > 0, 'lists continue from the last key + "\\0"');
    assert.ok(continued.every((p) => p.revision !== undefined), 'later pages read at the first page revision');
    assert.ok(watches.length > 0 && watches.every((w) => w.key.startsWith(`${prefix}registry/`) && w.start > 1), 'list-then-watch from the list revision');
    const report = checkHistory(history);
    assert.equal(report.verdict, 'linearizable', report.linearizability.violation?.reason);
  });

  test('weights are data: a profile restricted to puts sends only puts (plus the list that follows a failure)', async () => {
    const { history } = await drive('etcd', 3, 300, { get: 0, staleGet: 0, list: 0, keysOnlyList: 0, staleList: 0, delete: 0, multiOpTxn: 0, compareAndSet: 0, putWithLease: 0, leaseRevoke: 0 });
    assert.ok(history.operations.every((o) => o.request.type === 'put'));
  });

  test('resolveProfile rejects kinds of the other profile and an all-zero mix', () => {
    assert.throws(() => resolveProfile({ profile: 'etcd', weights: { create: 1 }, keys: 10, valueSize: 8 }), /profile etcd has no operation kind "create"/);
    const zero = Object.fromEntries(Object.keys(builtInProfiles.kubernetes.weights).map((k) => [k, 0]));
    assert.throws(() => resolveProfile({ profile: 'kubernetes', weights: zero, keys: 10, valueSize: 8 }), /every operation weight is 0/);
  });

  test('property: any seed and mix over a correct store yields a linearizable history with unique values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<ProfileName>('etcd', 'kubernetes'), fc.integer({ min: 0, max: 1_000_000 }), async (profile, seed) => {
        const { history } = await drive(profile, seed, 150);
        const values = writtenValues(history);
        assert.equal(new Set(values).size, values.length);
        assert.equal(checkHistory(history).verdict, 'linearizable');
      }),
      { numRuns: 40 },
    );
  });

  test('kindPicker follows the weights', () => {
    const pick = kindPicker({ get: 3, put: 1 });
    const random = seededRandom(1);
    let gets = 0;
    for (let i = 0; i < 4000; i++) if (pick(random) === 'get') gets++;
    assert.ok(gets > 2800 && gets < 3200, `gets ${gets} of 4000 for weight 3:1`);
  });

  test('KeyPool rotates a deleted key to a new name; UniqueValues pads to the size and never repeats', () => {
    const pool = new KeyPool('/p/', 3);
    const random = seededRandom(5);
    const before = new Set(pool.pickDistinct(random, 3));
    assert.equal(before.size, 3);
    const victim = [...before][0]!;
    pool.retire(victim);
    const after = new Set(pool.pickDistinct(random, 3));
    assert.ok(!after.has(victim) && after.size === 3);
    const values = new UniqueValues(12);
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const v = values.next();
      assert.ok(v.length >= 12);
      seen.add(v);
    }
    assert.equal(seen.size, 1000);
  });

  test('KeyPool takes back the keys a list read shows that it no longer names, oldest first, and keeps its size', () => {
    const pool = new KeyPool('/p/', 3);
    const random = seededRandom(9);
    const names = (): string[] => pool.pickDistinct(random, 3).sort();
    assert.deepEqual(names(), ['/p/key0-0', '/p/key1-0', '/p/key2-0']);
    // A put of key1-0 landed after another client's delete retired it: key1-0 lives on, unnamed.
    pool.retire('/p/key1-0');
    assert.deepEqual(names(), ['/p/key0-0', '/p/key1-1', '/p/key2-0']);
    pool.sync(['/p/fault-trigger', '/p/key0-0', '/p/key1-0', '/p/other-7', '/q/key9-0'], 10);
    // key1-0 (generation 0) is back; the newest name (key1-1, never written) gives way; foreign shapes stay out.
    assert.deepEqual(names(), ['/p/key0-0', '/p/key1-0', '/p/key2-0']);
    // Deleting it now retires it for good, under a name never issued before.
    pool.retire('/p/key1-0');
    const after = names();
    assert.equal(after.length, 3);
    assert.ok(!after.includes('/p/key1-0') && !after.includes('/p/key1-1'), after.join(' '));
    // An older list read (a lower revision) is ignored: it may show keys deleted since.
    pool.sync(['/p/key1-0'], 9);
    assert.deepEqual(names(), after);
  });

  test('a linearizable list read hands leaked keys back to the pool; a stale one does not', async () => {
    const prefix = '/p/';
    const profile = resolveProfile({ profile: 'etcd', weights: {}, keys: 2, valueSize: 8 });
    const env: TrafficEnvironment = { prefix, profile, keys: new KeyPool(prefix, 2), values: new UniqueValues(8), leaseTtlSeconds: 600 };
    env.keys.retire('/p/key0-0');
    const listed = { kind: 'ok' as const, response: { revision: 20, count: 2, kvs: [{ key: '/p/key0-0', value: 'a' }, { key: '/p/key1-0', value: 'b' }] } };
    const client = (): TrafficClient => ({ execute: () => Promise.resolve(listed), random: seededRandom(3), memory: { ...newClientMemory(), lastRevision: 19 } });
    await actionFor('staleList', profile)(env, client());
    assert.ok(!env.keys.pickDistinct(seededRandom(1), 2).includes('/p/key0-0'));
    await actionFor('list', profile)(env, client());
    assert.deepEqual(env.keys.pickDistinct(seededRandom(1), 2).sort(), ['/p/key0-0', '/p/key1-0']);
  });

  test('remember learns revisions and mod revisions from answers, including txn results', () => {
    const memory = newClientMemory();
    remember(memory, { type: 'put', key: 'a', value: 'x' }, { revision: 5 });
    assert.equal(memory.modRevisions.get('a'), 5);
    remember(memory, { type: 'range', key: 'b' }, { revision: 6, kvs: [{ key: 'b', value: 'y', modRevision: 4 }] });
    assert.equal(memory.modRevisions.get('b'), 4);
    assert.equal(memory.lastRevision, 6);
    remember(
      memory,
      { type: 'txn', compare: [], success: [{ type: 'delete', key: 'a' }, { type: 'put', key: 'c', value: 'z' }], failure: [] },
      { revision: 7, succeeded: true, results: [{ revision: 7, deleted: 1 }, { revision: 7 }] },
    );
    assert.equal(memory.modRevisions.has('a'), false);
    assert.equal(memory.modRevisions.get('c'), 7);
    assert.ok(isWriteRequest({ type: 'put', key: 'c', value: 'z' }));
  });
});

describe('past-revision reads', () => {
  test('never name a revision before the run started (the history holds no state there)', async () => {
    const profile = resolveProfile({ profile: 'etcd', weights: { staleGet: 1 }, keys: 4, valueSize: 16 });
    const env: TrafficEnvironment = { prefix, profile, keys: new KeyPool(prefix, profile.keys), values: new UniqueValues(profile.valueSize), leaseTtlSeconds: 600 };
    const asked: number[] = [];
    const memory = newClientMemory(10);
    memory.lastRevision = 11; // what a client knows right after the run's first write
    const client: TrafficClient = {
      random: seededRandom(7),
      memory,
      execute: (request: EtcdRequest): Promise<Outcome> => {
        if (request.type === 'range' && request.revision !== undefined) asked.push(request.revision);
        return Promise.resolve({ kind: 'ok', response: { revision: 11, kvs: [], count: 0 } });
      },
    };
    for (let i = 0; i < 200; i++) await actionFor('staleGet', profile)(env, client);
    assert.ok(asked.length > 20, `past-revision reads were drawn (${asked.length})`);
    assert.ok(asked.every((r) => r >= 10), `revisions asked: ${[...new Set(asked)].join(', ')}`);
    assert.ok(asked.includes(10), 'the start revision itself may be read');
  });
});

describe('rate limiter', () => {
  test('admits one request at once, then one per 1/target seconds; burst caps saved tokens', async () => {
    let now = 0;
    const limiter = new RateLimiter({ target: 100, burst: 5, now: () => now });
    let admitted = 0;
    const take = (): void => void limiter.acquire().then(() => admitted++);
    take();
    await Promise.resolve();
    assert.equal(admitted, 1, 'a run starts with one token, not a full bucket');
    now += 1000; // a long idle second saves at most `burst` tokens
    for (let i = 0; i < 8; i++) take();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(admitted, 6, 'five saved tokens admit five more at once');
    assert.equal(limiter.waiting, 3);
    limiter.close();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(admitted, 9, 'close() releases every waiter');
  });

  test('rejects a non-positive target and a burst below one', () => {
    assert.throws(() => new RateLimiter({ target: 0, burst: 1 }), /target QPS must be positive/);
    assert.throws(() => new RateLimiter({ target: 10, burst: 0 }), /burst must be at least 1/);
  });
});
