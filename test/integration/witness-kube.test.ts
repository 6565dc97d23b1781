// The Lease and ConfigMap witness stores against a real kube-apiserver: create, compare-and-swap won and
// lost, concurrent writers on one version (exactly one wins), the term rule, a record someone else broke
// (WitnessRecordError, never overwritten), and an API server that fails, is silent or is stopped
// (WitnessUnavailableError).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createWitness } from '../../src/controller/witness/stores.ts';
import {
  ConfigMapWitness,
  LeaseWitness,
  witnessRecordAnnotation,
  witnessRecordDataKey,
  type KubeWitnessObject,
  type KubeWitnessOptions,
} from '../../src/controller/witness/store-kube.ts';
import { WitnessRecordError, WitnessUnavailableError, type Witness, type WitnessRecord } from '../../src/domain/witness.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';

const namespace = 'witness';

function record(overrides: Partial<WitnessRecord> = {}): WitnessRecord {
  return { epoch: 1, owner: 'operator-a', ownerTerm: 1, phase: 'single', members: ['m1'], fenced: [], updatedAt: '2026-01-01T00:00:00Z', ...overrides };
}

/** A KubeConfig for a plain-HTTP server on loopback (client-node wants skipTLSVerify for http://). */
function plainHttpKubeConfig(url: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'fake' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  return kubeConfig;
}

interface Store {
  kind: 'lease' | 'configMap';
  make: (kubeConfig: KubeConfig, object: KubeWitnessObject, options?: KubeWitnessOptions) => Witness;
  /** The stored record text and the mirrored fields, read directly. */
  inspect: (name: string) => Promise<{ version: string; text: string | undefined; holder?: string | undefined; transitions?: number | undefined }>;
  /** Sets the record text (undefined: removes it) behind the store's back, as someone else would. */
  tamper: (name: string, text: string | undefined) => Promise<void>;
  /** Creates an object of that name that is not a witness record. */
  createForeign: (name: string) => Promise<void>;
  remove: (name: string) => Promise<void>;
}

describe('Lease and ConfigMap witnesses on a real kube-apiserver', { timeout: 300_000 }, () => {
  let apiserver: TestApiserver;
  let apiserverStopped = false;
  let core: CoreV1Api;
  let coordination: CoordinationV1Api;

  before(async () => {
    apiserver = await TestApiserver.start();
    core = apiserver.kubeConfig.makeApiClient(CoreV1Api);
    coordination = apiserver.kubeConfig.makeApiClient(CoordinationV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  after(async () => {
    if (!apiserverStopped) await apiserver?.close();
  });

  const stores: Store[] = [
    {
      kind: 'lease',
      make: (kubeConfig, object, options) => new LeaseWitness(kubeConfig, object, options),
      inspect: async (name) => {
        const lease = await coordination.readNamespacedLease({ namespace, name });
        return {
          version: lease.metadata?.resourceVersion ?? '',
          text: lease.metadata?.annotations?.[witnessRecordAnnotation],
          holder: lease.spec?.holderIdentity,
          transitions: lease.spec?.leaseTransitions,
        };
      },
      tamper: async (name, text) => {
        const lease = await coordination.readNamespacedLease({ namespace, name });
        const annotations = Object.fromEntries(Object.entries(lease.metadata?.annotations ?? {}).filter(([key]) => key !== witnessRecordAnnotation));
        if (text !== undefined) annotations[witnessRecordAnnotation] = text;
        lease.metadata!.annotations = annotations;
        await coordination.replaceNamespacedLease({ namespace, name, body: lease });
      },
      createForeign: async (name) => {
        await coordination.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: { holderIdentity: 'someone-else', leaseDurationSeconds: 15 } } });
      },
      remove: async (name) => {
        await coordination.deleteNamespacedLease({ namespace, name });
      },
    },
    {
      kind: 'configMap',
      make: (kubeConfig, object, options) => new ConfigMapWitness(kubeConfig, object, options),
      inspect: async (name) => {
        const configMap = await core.readNamespacedConfigMap({ namespace, name });
        return { version: configMap.metadata?.resourceVersion ?? '', text: configMap.data?.[witnessRecordDataKey] };
      },
      tamper: async (name, text) => {
        const configMap = await core.readNamespacedConfigMap({ namespace, name });
        const data = Object.fromEntries(Object.entries(configMap.data ?? {}).filter(([key]) => key !== witnessRecordDataKey));
        if (text !== undefined) data[witnessRecordDataKey] = text;
        configMap.data = data;
        await core.replaceNamespacedConfigMap({ namespace, name, body: configMap });
      },
      createForeign: async (name) => {
        await core.createNamespacedConfigMap({ namespace, body: { metadata: { name, namespace }, data: { 'app.conf': 'x=1' } } });
      },
      remove: async (name) => {
        await core.deleteNamespacedConfigMap({ namespace, name });
      },
    },
  ];

  for (const store of stores) {
    describe(store.kind, () => {
      const witness = (name: string): Witness => store.make(apiserver.kubeConfig, { namespace, name });

      test('create, compare-and-swap won and lost, the term and epoch rules', async () => {
        const w = witness(`${store.kind.toLowerCase()}-basic`);
        assert.equal(w.description, `${store.kind} ${namespace}/${store.kind.toLowerCase()}-basic`);
        assert.deepEqual(await w.read(), { version: '', record: undefined });
        // The first epoch is 1: a create with another epoch is refused without writing.
        const badFirst = await w.compareAndSwap('', record({ epoch: 2 }));
        assert.equal(badFirst.ok, false);
        if (!badFirst.ok) assert.match(badFirst.reason, /epoch 2 does not follow epoch 0/);

        const first = record({ ownerTerm: 4 });
        const created = await w.compareAndSwap('', first);
        assert.ok(created.ok, JSON.stringify(created));
        assert.match(created.version, /^\d+$/);
        assert.deepEqual(await w.read(), { version: created.version, record: first });
        const stored = await store.inspect(`${store.kind.toLowerCase()}-basic`);
        assert.deepEqual(JSON.parse(stored.text ?? 'null'), first);
        if (store.kind === 'lease') assert.deepEqual([stored.holder, stored.transitions], ['operator-a', 1]);

        const again = await w.compareAndSwap('', record({ owner: 'operator-b', ownerTerm: 9 }));
        assert.equal(again.ok, false);
        if (!again.ok) {
          assert.deepEqual(again.current, { version: created.version, record: first });
          assert.match(again.reason, /exists already/);
        }

        const second = record({ epoch: 2, ownerTerm: 5, owner: 'operator-b', phase: 'paired', members: ['m1', 'm2'] });
        const replaced = await w.compareAndSwap(created.version, second);
        assert.ok(replaced.ok, JSON.stringify(replaced));
        assert.notEqual(replaced.version, created.version);
        if (store.kind === 'lease') {
          const mirrored = await store.inspect(`${store.kind.toLowerCase()}-basic`);
          assert.deepEqual([mirrored.holder, mirrored.transitions], ['operator-b', 2]);
        }

        const stale = await w.compareAndSwap(created.version, record({ epoch: 2, ownerTerm: 5 }));
        assert.equal(stale.ok, false);
        if (!stale.ok) {
          assert.deepEqual(stale.current, { version: replaced.version, record: second });
          assert.match(stale.reason, new RegExp(`version ${created.version} is not the current version ${replaced.version}`));
        }
        const oldTerm = await w.compareAndSwap(replaced.version, record({ epoch: 3, ownerTerm: 4, owner: 'operator-a' }));
        assert.equal(oldTerm.ok, false);
        if (!oldTerm.ok) {
          assert.equal(oldTerm.reason, 'term 4 of operator-a is older than term 5 of operator-b');
          assert.deepEqual(oldTerm.current, { version: replaced.version, record: second });
        }
        const sameEpoch = await w.compareAndSwap(replaced.version, record({ epoch: 2, ownerTerm: 5 }));
        assert.equal(sameEpoch.ok, false);
        assert.deepEqual(await w.read(), { version: replaced.version, record: second }, 'the refused writes changed nothing');

        // The object is deleted behind our back: a write for its old version loses.
        await store.remove(`${store.kind.toLowerCase()}-basic`);
        const gone = await w.compareAndSwap(replaced.version, record({ epoch: 3, ownerTerm: 5 }));
        assert.equal(gone.ok, false);
        if (!gone.ok) assert.deepEqual(gone.current, { version: '', record: undefined });
        await w.close();
      });

      test('concurrent compare-and-swaps: exactly one create and exactly one replace win', async () => {
        const name = `${store.kind.toLowerCase()}-race`;
        const writers = Array.from({ length: 12 }, () => witness(name));
        const creates = writers.map((_, i) => record({ owner: `operator-${i}`, ownerTerm: i + 1 }));
        const created = await Promise.all(writers.map((w, i) => w.compareAndSwap('', creates[i]!)));
        const createWinners = created.flatMap((r, i) => (r.ok ? [{ version: r.version, record: creates[i]! }] : []));
        assert.equal(createWinners.length, 1, JSON.stringify(created));
        const base = createWinners[0]!;
        for (const r of created) if (!r.ok) assert.deepEqual(r.current, base);

        const replaces = writers.map((_, i) => record({ epoch: 2, owner: `operator-${i}`, ownerTerm: 20 + i }));
        const replaced = await Promise.all(writers.map((w, i) => w.compareAndSwap(base.version, replaces[i]!)));
        const winners = replaced.flatMap((r, i) => (r.ok ? [{ version: r.version, record: replaces[i]! }] : []));
        assert.equal(winners.length, 1, JSON.stringify(replaced));
        for (const r of replaced) {
          if (!r.ok) assert.equal(r.current.record?.epoch, 2, JSON.stringify(r));
        }
        assert.deepEqual(await writers[0]!.read(), winners[0]);
      });

      test('a record someone else broke, or an object that is not a witness: WitnessRecordError naming it, never overwritten', async () => {
        const name = `${store.kind.toLowerCase()}-broken`;
        const w = witness(name);
        const created = await w.compareAndSwap('', record());
        assert.ok(created.ok);
        const expectRecordError = (pattern: RegExp) => (error: unknown): boolean => {
          assert.ok(error instanceof WitnessRecordError, String(error));
          assert.equal(error.witness, `${store.kind} ${namespace}/${name}`);
          assert.match(error.message, new RegExp(`^witness ${store.kind} ${namespace}/${name}: invalid record: `));
          assert.match(error.message, pattern);
          return true;
        };
        for (const [text, pattern] of [
          ['{"epoch": 1, "owner": ', /is not JSON/],
          [JSON.stringify({ ...record(), ownerTerm: -1 }), /ownerTerm must be a whole number/],
        ] as const) {
          await store.tamper(name, text);
          await assert.rejects(w.read(), expectRecordError(pattern));
          const { version } = await store.inspect(name);
          await assert.rejects(w.compareAndSwap(version, record({ epoch: 2 })), expectRecordError(pattern));
          await assert.rejects(w.compareAndSwap('', record()), expectRecordError(pattern));
          assert.equal((await store.inspect(name)).text, text, 'the broken record is left as it is');
        }
        await store.tamper(name, undefined);
        await assert.rejects(w.read(), expectRecordError(/has no (annotation|data key)/));

        const foreign = `${store.kind.toLowerCase()}-foreign`;
        await store.createForeign(foreign);
        const other = witness(foreign);
        const refuse = (error: unknown): boolean => {
          assert.ok(error instanceof WitnessRecordError, String(error));
          assert.match(error.message, new RegExp(`${store.kind} ${namespace}/${foreign}: invalid record: the object has no .* \\(not a witness record; it is not overwritten\\)`));
          return true;
        };
        await assert.rejects(other.read(), refuse);
        await assert.rejects(other.compareAndSwap('', record()), refuse);
        assert.equal((await store.inspect(foreign)).text, undefined);
      });

      test('createWitness: the spec\'s kind, with namespace and name defaults', async () => {
        const defaulted = createWitness({ kind: store.kind }, { namespace, name: 'pair' }, apiserver.kubeConfig);
        assert.equal(defaulted.description, `${store.kind} ${namespace}/pair-witness`);
        assert.ok(defaulted instanceof (store.kind === 'lease' ? LeaseWitness : ConfigMapWitness));
        const created = await defaulted.compareAndSwap('', record());
        assert.ok(created.ok);
        assert.deepEqual(JSON.parse((await store.inspect('pair-witness')).text ?? 'null'), record());
        const named = createWitness({ kind: store.kind, namespace: 'elsewhere', name: 'w' }, { namespace, name: 'pair' }, apiserver.kubeConfig);
        assert.equal(named.description, `${store.kind} elsewhere/w`);
        // A namespace that does not exist: the write cannot be done.
        await assert.rejects(named.compareAndSwap('', record()), /witness .* elsewhere\/w: cannot create it \(HTTP 404\)/);
      });
    });
  }

  test('an API server answering 503 or not answering at all: WitnessUnavailableError naming the object', async () => {
    const sockets = new Set<Socket>();
    let mode: 'failing' | 'silent' = 'failing';
    const server = http.createServer((_req, res) => {
      if (mode === 'silent') return;
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'etcdserver: request timed out', reason: 'ServiceUnavailable', code: 503 }));
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const kubeConfig = plainHttpKubeConfig(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      for (const store of stores) {
        const w = store.make(kubeConfig, { namespace, name: 'w' }, { timeoutMs: 300 });
        mode = 'failing';
        for (const attempt of [() => w.read(), () => w.compareAndSwap('', record()), () => w.compareAndSwap('5', record({ epoch: 2 }))]) {
          await assert.rejects(attempt(), (error: unknown) => {
            assert.ok(error instanceof WitnessUnavailableError, String(error));
            assert.equal(error.witness, `${store.kind} ${namespace}/w`);
            assert.match(error.message, /\(HTTP 503\): HTTP 503: etcdserver: request timed out/);
            return true;
          });
        }
        mode = 'silent';
        const started = performance.now();
        await assert.rejects(w.read(), (error: unknown) => {
          assert.ok(error instanceof WitnessUnavailableError, String(error));
          assert.match(error.message, /cannot read it: no answer within 300 ms/);
          return true;
        });
        assert.ok(performance.now() - started < 5000);
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  // Last: it stops the API server.
  test('the API server stopped: WitnessUnavailableError naming the object', async () => {
    const witnesses = stores.map((store) => store.make(apiserver.kubeConfig, { namespace, name: 'stopped' }));
    for (const w of witnesses) assert.ok((await w.compareAndSwap('', record())).ok);
    await apiserver.close();
    apiserverStopped = true;
    for (const w of witnesses) {
      await assert.rejects(w.read(), (error: unknown) => {
        assert.ok(error instanceof WitnessUnavailableError, String(error));
        assert.match(error.message, new RegExp(`^witness (lease|configMap) ${namespace}/stopped: cannot read it: .*ECONNREFUSED`));
        return true;
      });
      await assert.rejects(w.compareAndSwap('', record()), WitnessUnavailableError);
    }
  });
});
