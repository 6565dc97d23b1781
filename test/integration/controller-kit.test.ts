// The controller kit against a real kube-apiserver: the informer (list, watch, restarts, re-list on 410),
// leader election on a Lease, events.k8s.io Events, and the probe server with controller metrics.
// A fault-injecting HTTP proxy in front of the API server breaks connections, refuses requests and
// answers a watch with 410 Gone, so every recovery path runs for real.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import {
  Controller,
  ControllerMetrics,
  EventRecorder,
  Informer,
  keyOf,
  kubeRequest,
  LeaderElector,
  ProbeServer,
  splitKey,
  type InformerEvent,
} from '../../src/controller/kit/index.ts';
import { freeLoopbackPorts } from '../../src/local/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';

async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

/**
 * A plain-HTTP reverse proxy to the API server that adds the real credentials, and can break every open
 * connection, refuse requests (503) while blocked, and answer the next watch with a 410 Gone ERROR event.
 */
class FaultyProxy {
  readonly kubeConfig: KubeConfig;
  private blocked = false;
  private goneOnNextWatch = false;
  watchRequests = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: http.Server;

  private constructor(server: http.Server, url: string) {
    this.server = server;
    this.kubeConfig = new KubeConfig();
    this.kubeConfig.loadFromOptions({
      // Plain HTTP on loopback: client-node insists on skipTLSVerify for an http:// server.
      clusters: [{ name: 'proxy', server: url, skipTLSVerify: true }],
      users: [{ name: 'proxy' }],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
      currentContext: 'proxy',
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(target: KubeConfig): Promise<FaultyProxy> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new FaultyProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (request, response) => void proxy.forward(target, request, response));
    return proxy;
  }

  private async forward(target: KubeConfig, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (this.blocked) {
      response.writeHead(503, { 'Content-Type': 'text/plain' }).end('blocked by the test\n');
      return;
    }
    const isWatch = new URL(request.url ?? '/', 'http://x').searchParams.get('watch') === 'true';
    if (isWatch) this.watchRequests++;
    if (isWatch && this.goneOnNextWatch) {
      this.goneOnNextWatch = false;
      const status = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 };
      response.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
      return;
    }
    const headers = { ...request.headers };
    delete headers.host;
    delete headers.connection;
    const options: https.RequestOptions = { method: request.method, headers };
    await target.applyToHTTPSOptions(options);
    const upstream = https.request(`${target.getCurrentCluster()!.server}${request.url ?? '/'}`, options, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
      answer.on('error', () => response.destroy());
    });
    upstream.on('error', () => response.destroy());
    response.on('close', () => upstream.destroy());
    request.pipe(upstream);
  }

  /** Cuts every open connection (a watch in progress ends with a network error). */
  breakAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  block(): void {
    this.blocked = true;
    this.breakAll();
  }

  unblock(): void {
    this.blocked = false;
  }

  answerNextWatchWithGone(): void {
    this.goneOnNextWatch = true;
  }

  async close(): Promise<void> {
    this.breakAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; creationTimestamp?: unknown; labels?: Record<string, string> };
  data?: Record<string, string>;
}

describe('controller kit against a real kube-apiserver', { timeout: 300_000 }, () => {
  let apiserver: TestApiserver;
  /** Everything a test starts, stopped in after() too: a test that times out never reaches its finally. */
  const cleanups: (() => unknown)[] = [];
  const track = <T extends { stop(): unknown } | { close(): unknown }>(resource: T): T => {
    cleanups.push(() => ('stop' in resource ? resource.stop() : resource.close()));
    return resource;
  };

  const kubectl = async (args: string[], stdin?: string): Promise<string> => {
    const result = await apiserver.kubectl(args, stdin);
    assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const applyConfigMap = (namespace: string, name: string, value: string, labels: Record<string, string> = { app: 'kit' }): Promise<string> =>
    kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels }, data: { v: value } }));
  const deleteConfigMap = (namespace: string, name: string): Promise<string> => kubectl(['-n', namespace, 'delete', 'configmap', name]);

  /** An informer of labelled ConfigMaps in `namespace` that records its events as "type name=value". */
  function configMapInformer(kubeConfig: KubeConfig, namespace: string, extra: Partial<ConstructorParameters<typeof Informer<ConfigMap>>[0]> = {}) {
    const events: string[] = [];
    const informer = new Informer<ConfigMap>({
      kubeConfig,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      labelSelector: 'app=kit',
      onEvent: (type: InformerEvent, object) => events.push(`${type} ${object.metadata?.name}=${object.data?.['v']}`),
      backoffMs: { min: 50, max: 400 },
      ...extra,
    });
    track(informer);
    return { informer, events };
  }

  before(async () => {
    apiserver = await TestApiserver.start();
    for (const ns of ['informer', 'restarts', 'relist', 'election', 'events', 'probes']) await kubectl(['create', 'namespace', ns]);
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // already stopped
      }
    }
    await apiserver?.close();
  });

  test('keyOf and splitKey', () => {
    assert.equal(keyOf({ metadata: { namespace: 'ns', name: 'a' } }), 'ns/a');
    assert.equal(keyOf({ metadata: { name: 'a' } }), 'a');
    assert.deepEqual(splitKey('ns/a'), { namespace: 'ns', name: 'a' });
    assert.deepEqual(splitKey('a'), { namespace: undefined, name: 'a' });
  });

  test('Informer syncs, then sees add, update and delete of ConfigMaps (plain JSON in the cache)', { timeout: 90_000 }, async () => {
    await applyConfigMap('informer', 'pre', '0');
    await applyConfigMap('informer', 'unlabelled', 'x', { app: 'other' });
    const { informer, events } = configMapInformer(apiserver.kubeConfig, 'informer');
    try {
      assert.equal(informer.hasSynced, false);
      await informer.start();
      assert.equal(informer.hasSynced, true);
      assert.deepEqual(events, ['add pre=0']);
      const pre = informer.get('informer', 'pre');
      assert.equal(pre?.kind, 'ConfigMap');
      assert.equal(pre?.apiVersion, 'v1');
      assert.equal(typeof pre?.metadata?.creationTimestamp, 'string', 'dates stay strings');
      assert.equal(informer.get('informer', 'unlabelled'), undefined, 'the label selector applies');

      await applyConfigMap('informer', 'one', '1');
      await eventually(() => events.includes('add one=1'), 'add event');
      await applyConfigMap('informer', 'one', '2');
      await eventually(() => events.includes('update one=2'), 'update event');
      assert.equal(informer.get('informer', 'one')?.data?.['v'], '2');
      assert.equal(typeof informer.get('informer', 'one')?.metadata?.creationTimestamp, 'string');
      assert.deepEqual(informer.list('informer').map((o) => o.metadata?.name).sort(), ['one', 'pre']);
      assert.deepEqual(informer.list('elsewhere'), []);
      await deleteConfigMap('informer', 'one');
      await eventually(() => events.includes('delete one=2'), 'delete event');
      assert.equal(informer.get('informer', 'one'), undefined);
      assert.deepEqual(events, ['add pre=0', 'add one=1', 'update one=2', 'delete one=2']);
    } finally {
      informer.stop();
    }
  });

  test('Informer keeps delivering events across watches the server closes (timeoutSeconds) and broken connections', { timeout: 90_000 }, async () => {
    const proxy = track(await FaultyProxy.start(apiserver.kubeConfig));
    const { informer, events } = configMapInformer(proxy.kubeConfig, 'restarts', { watchTimeoutSeconds: 1 });
    try {
      await informer.start();
      const watchesAtStart = proxy.watchRequests;
      for (let i = 1; i <= 3; i++) {
        await sleep(1500); // the server has closed the watch at least once by now
        await applyConfigMap('restarts', `after-timeout-${i}`, `${i}`);
        await eventually(() => events.includes(`add after-timeout-${i}=${i}`), `event ${i} after a server-side close`);
      }
      assert.ok(proxy.watchRequests - watchesAtStart >= 3, `the watch was restarted (${proxy.watchRequests - watchesAtStart} watches)`);

      // A broken connection: the watch fails mid-stream; a change made while it is down arrives after the restart.
      const watches = proxy.watchRequests;
      proxy.block();
      await applyConfigMap('restarts', 'while-broken', 'b');
      await applyConfigMap('restarts', 'after-timeout-1', 'changed');
      await sleep(300);
      proxy.unblock();
      await eventually(() => events.includes('add while-broken=b'), 'a change made while the watch was broken');
      await eventually(() => events.includes('update after-timeout-1=changed'), 'an update made while the watch was broken');
      assert.ok(proxy.watchRequests > watches);
      proxy.breakAll();
      await applyConfigMap('restarts', 'after-break', 'c');
      await eventually(() => events.includes('add after-break=c'), 'event after a cut connection');
      // Each change exactly once: restarts resume from the last resourceVersion, they do not replay.
      assert.deepEqual(
        events.filter((e) => e.startsWith('add ')),
        ['add after-timeout-1=1', 'add after-timeout-2=2', 'add after-timeout-3=3', 'add while-broken=b', 'add after-break=c'],
      );
    } finally {
      informer.stop();
      await proxy.close();
    }
  });

  test('Informer re-lists on 410 Gone and emits the deletes (and adds) that happened while it was not watching', { timeout: 90_000 }, async () => {
    await applyConfigMap('relist', 'keep', 'k');
    await applyConfigMap('relist', 'vanish', 'v');
    await applyConfigMap('relist', 'change', '1');
    const proxy = track(await FaultyProxy.start(apiserver.kubeConfig));
    const { informer, events } = configMapInformer(proxy.kubeConfig, 'relist');
    try {
      await informer.start();
      assert.deepEqual([...events].sort(), ['add change=1', 'add keep=k', 'add vanish=v']);
      events.length = 0;
      proxy.block();
      await deleteConfigMap('relist', 'vanish');
      await applyConfigMap('relist', 'appear', 'a');
      await applyConfigMap('relist', 'change', '2');
      // The next watch is told its resourceVersion is too old: the informer must re-list.
      proxy.answerNextWatchWithGone();
      proxy.unblock();
      await eventually(() => events.length >= 3, 're-list events');
      assert.deepEqual([...events].sort(), ['add appear=a', 'delete vanish=v', 'update change=2']);
      assert.equal(informer.get('relist', 'vanish'), undefined);
      assert.deepEqual(informer.list().map(keyOf).sort(), ['relist/appear', 'relist/change', 'relist/keep']);
      // And it watches again after the re-list.
      await applyConfigMap('relist', 'later', 'l');
      await eventually(() => events.includes('add later=l'), 'watch resumed after the re-list');
    } finally {
      informer.stop();
      await proxy.close();
    }
  });

  test('Informer resync re-lists and reports every object as an update', { timeout: 90_000 }, async () => {
    const { informer, events } = configMapInformer(apiserver.kubeConfig, 'relist', { resyncMs: 300 });
    try {
      await informer.start();
      const objects = informer.list().length;
      events.length = 0;
      await eventually(() => events.filter((e) => e.startsWith('update ')).length >= objects * 2, 'two resyncs');
      assert.ok(events.every((e) => e.startsWith('update ')), events.join(', '));
    } finally {
      informer.stop();
    }
  });

  test('Informer start() rejects when stopped before it synced', { timeout: 90_000 }, async () => {
    const proxy = track(await FaultyProxy.start(apiserver.kubeConfig));
    proxy.block();
    const { informer } = configMapInformer(proxy.kubeConfig, 'informer');
    try {
      const started = informer.start();
      await sleep(200);
      informer.stop();
      await assert.rejects(started, /stopped before it synced/);
      assert.equal(informer.hasSynced, false);
    } finally {
      await proxy.close();
    }
  });

  describe('LeaderElector', () => {
    interface Lease {
      metadata: { resourceVersion: string };
      spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
    }
    const leasePath = (name: string): string => `/apis/coordination.k8s.io/v1/namespaces/election/leases/${name}`;
    const readLease = (name: string): Promise<Lease> => kubeRequest<Lease>(apiserver.kubeConfig, leasePath(name));

    interface Candidate {
      elector: LeaderElector;
      signals: AbortSignal[];
      leaders: string[];
      stopped: number;
      done: Promise<void>;
    }
    function candidate(kubeConfig: KubeConfig, lease: string, identity: string, timing = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 }): Candidate {
      const elector = track(new LeaderElector({ kubeConfig, namespace: 'election', name: lease, identity, ...timing }));
      const c: Candidate = { elector, signals: [], leaders: [], stopped: 0, done: Promise.resolve() };
      c.done = elector.run({
        onStartedLeading: (signal) => {
          c.signals.push(signal);
          // Work that runs until told to stop.
          return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        },
        onStoppedLeading: () => c.stopped++,
        onNewLeader: (leader) => c.leaders.push(leader),
      });
      return c;
    }

    /** Samples isLeader of all candidates until `until` holds; fails if two ever lead at once. */
    async function neverTwoLeaders(candidates: Candidate[], until: () => boolean, what: string, timeoutMs = 30_000): Promise<number> {
      let samples = 0;
      await eventually(
        () => {
          samples++;
          const leading = candidates.filter((c) => c.elector.isLeader).length;
          assert.ok(leading <= 1, `${leading} candidates lead at once`);
          return until();
        },
        what,
        timeoutMs,
      );
      return samples;
    }

    test('two candidates: exactly one leads; close() of the leader hands over at once', { timeout: 90_000 }, async () => {
      // A long lease: a hand-over faster than 15 s proves close() released it rather than letting it expire.
      const timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 200 };
      const a = candidate(apiserver.kubeConfig, 'pair', 'a', timing);
      const b = candidate(apiserver.kubeConfig, 'pair', 'b', timing);
      try {
        await neverTwoLeaders([a, b], () => a.elector.isLeader || b.elector.isLeader, 'a leader');
        // Keep sampling for a while: the leader renews, the other keeps trying, never both lead.
        const started = performance.now();
        const samples = await neverTwoLeaders([a, b], () => performance.now() - started > 2000, 'two seconds of sampling');
        assert.ok(samples > 20);
        const [leader, other] = a.elector.isLeader ? [a, b] : [b, a];
        const leaderId = leader === a ? 'a' : 'b';
        const lease = await readLease('pair');
        assert.equal(lease.spec.holderIdentity, leaderId);
        assert.equal(lease.spec.leaseDurationSeconds, 15);
        assert.match(lease.spec.renewTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'renewTime is a MicroTime');
        assert.match(lease.spec.acquireTime ?? '', /\.\d{6}Z$/);
        assert.equal(typeof lease.spec.leaseTransitions, 'number');
        assert.deepEqual(other.leaders, [leaderId], 'the other candidate observed the leader');
        assert.equal(other.signals.length, 0);

        const closedAt = performance.now();
        const closing = leader.elector.close();
        await neverTwoLeaders([a, b], () => other.elector.isLeader, 'the other candidate takes over', 10_000);
        const handOverMs = performance.now() - closedAt;
        await closing;
        await leader.done;
        assert.ok(handOverMs < 10_000, `hand-over took ${handOverMs} ms`);
        assert.equal(leader.signals[0]?.aborted, true, 'the old leader was told to stop');
        assert.equal(leader.stopped, 1);
        assert.equal(leader.elector.isLeader, false);
        const taken = await readLease('pair');
        assert.equal(taken.spec.holderIdentity, other === a ? 'a' : 'b');
        assert.equal(taken.spec.leaseTransitions, (lease.spec.leaseTransitions ?? 0) + 1);
      } finally {
        await Promise.all([a.elector.close(), b.elector.close()]);
      }
      // The last leader released the lease on close.
      const released = await readLease('pair');
      assert.ok(!released.spec.holderIdentity, `holder ${released.spec.holderIdentity}`);
      assert.equal(released.spec.leaseDurationSeconds, 1);
    });

    test('a leader that finds another holder in the Lease stops leading and its signal aborts', { timeout: 90_000 }, async () => {
      const a = candidate(apiserver.kubeConfig, 'overwritten', 'a');
      try {
        await eventually(() => a.elector.isLeader, 'a leads');
        // Someone else writes the lease (a split brain a correct elector must notice).
        await eventually(async () => {
          const lease = await readLease('overwritten');
          const now = new Date().toISOString().replace('Z', '000Z');
          try {
            await kubeRequest(apiserver.kubeConfig, leasePath('overwritten'), {
              method: 'PUT',
              body: { ...lease, spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: now, leaseDurationSeconds: 3600 } },
            });
            return true;
          } catch {
            return false; // a renewal raced us (409): read again
          }
        }, 'the lease overwritten');
        await eventually(() => !a.elector.isLeader, 'a stops leading', 10_000);
        assert.equal(a.signals[0]?.aborted, true);
        assert.equal(a.stopped, 1);
        assert.deepEqual(a.leaders, ['a', 'intruder']);
        await sleep(500);
        assert.equal(a.elector.isLeader, false, 'a does not take a lease held by someone else back');
        assert.equal((await readLease('overwritten')).spec.holderIdentity, 'intruder');
      } finally {
        await a.elector.close();
      }
      assert.equal((await readLease('overwritten')).spec.holderIdentity, 'intruder', 'close() does not release a lease it does not hold');
    });

    test('a leader whose renewals fail stops leading before the lease expires; the other takes over after expiry', { timeout: 90_000 }, async () => {
      const proxy = track(await FaultyProxy.start(apiserver.kubeConfig));
      const a = candidate(proxy.kubeConfig, 'partition', 'a');
      let b: Candidate | undefined;
      try {
        await eventually(() => a.elector.isLeader, 'a leads');
        b = candidate(apiserver.kubeConfig, 'partition', 'b');
        const both = [a, b];
        await neverTwoLeaders(both, () => b!.leaders.includes('a'), 'b sees a leading');
        proxy.block(); // a can no longer reach the API server
        // a gives up on its own (renewDeadline), before its lease expires for b: never two leaders.
        await neverTwoLeaders(both, () => !a.elector.isLeader, 'a gives up', 10_000);
        assert.equal(a.signals[0]?.aborted, true);
        assert.equal(a.stopped, 1);
        await neverTwoLeaders(both, () => b!.elector.isLeader, 'b takes over after the lease expired');
        // a comes back: b leads, a stays a candidate.
        proxy.unblock();
        const started = performance.now();
        await neverTwoLeaders(both, () => performance.now() - started > 1500, 'sampling after the partition healed');
        assert.equal(b.elector.isLeader, true);
        assert.equal(a.elector.isLeader, false);
        assert.ok(a.leaders.includes('b'));
      } finally {
        await Promise.all([a.elector.close(), b?.elector.close()]);
        await proxy.close();
      }
    });

    test('leader_election_master_status follows leadership', { timeout: 90_000 }, async () => {
      const registry = new Registry();
      const metrics = new ControllerMetrics(registry);
      const elector = track(
        new LeaderElector({
          kubeConfig: apiserver.kubeConfig,
          namespace: 'election',
          name: 'metered',
          identity: 'm',
          metrics,
          leaseDurationMs: 2000,
          renewDeadlineMs: 1500,
          retryPeriodMs: 200,
        }),
      );
      const text = async (): Promise<string> => registry.metrics();
      assert.match(await text(), /leader_election_master_status\{name="metered"\} 0/);
      const done = elector.run({ onStartedLeading: () => undefined });
      await eventually(() => elector.isLeader, 'leads');
      assert.match(await text(), /leader_election_master_status\{name="metered"\} 1/);
      await elector.close();
      await done;
      assert.match(await text(), /leader_election_master_status\{name="metered"\} 0/);
    });
  });

  test('EventRecorder creates events.k8s.io/v1 Events and counts repeats in a series', { timeout: 90_000 }, async () => {
    const target = await kubectl(['-n', 'events', 'create', 'configmap', 'ev-target', '-o', 'json']);
    const uid = (JSON.parse(target) as { metadata: { uid: string } }).metadata.uid;
    const recorder = new EventRecorder({ kubeConfig: apiserver.kubeConfig, controller: 'etcd.robustness.io/operator', instance: 'operator-0' });
    const regarding = { apiVersion: 'v1', kind: 'ConfigMap', name: 'ev-target', namespace: 'events', uid };
    interface Event {
      metadata: { name: string };
      eventTime: string;
      reason: string;
      note: string;
      type: string;
      action: string;
      reportingController: string;
      reportingInstance: string;
      regarding: { apiVersion: string; kind: string; name: string; namespace: string; uid: string };
      series?: { count: number; lastObservedTime: string };
    }
    const list = async (): Promise<Event[]> =>
      (await kubeRequest<{ items: Event[] }>(apiserver.kubeConfig, '/apis/events.k8s.io/v1/namespaces/events/events')).items;

    await recorder.record(regarding, 'Normal', 'RunStarted', 'Start', 'run r1 started');
    let events = await list();
    assert.equal(events.length, 1);
    const first = events[0]!;
    assert.deepEqual(first.regarding, regarding);
    assert.equal(first.reason, 'RunStarted');
    assert.equal(first.note, 'run r1 started');
    assert.equal(first.type, 'Normal');
    assert.equal(first.action, 'Start');
    assert.equal(first.reportingController, 'etcd.robustness.io/operator');
    assert.equal(first.reportingInstance, 'operator-0');
    assert.match(first.eventTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(first.series, undefined);

    await recorder.record(regarding, 'Normal', 'RunStarted', 'Start', 'run r1 started');
    events = await list();
    assert.equal(events.length, 1, 'a repeat updates the event');
    assert.equal(events[0]?.series?.count, 2);
    assert.match(events[0]?.series?.lastObservedTime ?? '', /\.\d{6}Z$/);
    await Promise.all([
      recorder.record(regarding, 'Normal', 'RunStarted', 'Start', 'run r1 started'),
      recorder.record(regarding, 'Normal', 'RunStarted', 'Start', 'run r1 started'),
    ]);
    events = await list();
    assert.equal(events.length, 1);
    assert.equal(events[0]?.series?.count, 4);

    await recorder.record(regarding, 'Warning', 'ViolationDetected', 'Check', `stale read ${'x'.repeat(2000)}`);
    events = await list();
    assert.equal(events.length, 2, 'another reason or note is another event');
    const warning = events.find((e) => e.reason === 'ViolationDetected')!;
    assert.equal(warning.type, 'Warning');
    assert.ok(Buffer.byteLength(warning.note) <= 1024, 'the note is cut to the API limit');

    // Best effort: a failure (no such namespace) is logged, never thrown.
    await recorder.record({ ...regarding, namespace: 'no-such-namespace' }, 'Normal', 'RunStarted', 'Start', 'lost');
  });

  test('ProbeServer serves /healthz, /readyz (503 naming the failing check until ready) and /metrics with controller metrics', { timeout: 90_000 }, async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    // An informer that only enqueues keys, a controller that reconciles them.
    const informer: Informer<ConfigMap> = track(
      new Informer<ConfigMap>({
        kubeConfig: apiserver.kubeConfig,
        path: '/api/v1/namespaces/probes/configmaps',
        onEvent: (_type, object) => controller.enqueue(keyOf(object)),
      }),
    );
    const reconciled: string[] = [];
    const controller = track(
      new Controller({
        name: 'configmaps',
        metrics,
        concurrency: 2,
        reconcile: (key) => {
          const { namespace, name } = splitKey(key);
          if (informer.get(namespace, name)) reconciled.push(key);
          return Promise.resolve();
        },
      }),
    );
    const [metricsPort, healthPort] = await freeLoopbackPorts(2);
    const probes = track(
      await ProbeServer.start({
        host: '127.0.0.1',
        metricsPort: metricsPort!,
        healthPort: healthPort!,
        registry,
        readiness: { informers: () => informer.hasSynced, leader: () => true },
      }),
    );
    const shared = track(await ProbeServer.start({ host: '127.0.0.1', metricsPort: 0, healthPort: 0, registry, readiness: {} }));
    try {
      assert.equal(probes.metricsUrl, `http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(probes.healthUrl, `http://127.0.0.1:${healthPort}`);
      assert.equal((await fetch(`${probes.healthUrl}/healthz`)).status, 200);
      let ready = await fetch(`${probes.healthUrl}/readyz`);
      assert.equal(ready.status, 503);
      const body = await ready.text();
      assert.match(body, /\[-\]informers failed/);
      assert.match(body, /\[\+\]leader ok/);
      assert.equal((await fetch(`${probes.healthUrl}/metrics`)).status, 404, 'separate ports serve separate paths');
      assert.equal((await fetch(probes.metricsUrl.replace('/metrics', '/healthz'))).status, 404);

      await informer.start();
      controller.start();
      await applyConfigMap('probes', 'watched', '1');
      await eventually(() => reconciled.includes('probes/watched'), 'reconciled');

      ready = await fetch(`${probes.healthUrl}/readyz`);
      assert.equal(ready.status, 200);
      assert.match(await ready.text(), /\[\+\]informers ok/);
      const scrape = await fetch(probes.metricsUrl);
      assert.equal(scrape.status, 200);
      assert.match(scrape.headers.get('content-type') ?? '', /text\/plain/);
      const text = await scrape.text();
      assert.match(text, /controller_runtime_reconcile_total\{controller="configmaps",result="success"\} [1-9]/);
      assert.match(text, /controller_runtime_reconcile_time_seconds_count\{controller="configmaps"\} [1-9]/);
      assert.match(text, /controller_runtime_max_concurrent_reconciles\{controller="configmaps"\} 2/);
      assert.match(text, /workqueue_depth\{name="configmaps"\} 0/);
      assert.match(text, /workqueue_adds_total\{name="configmaps"\} [1-9]/);

      // Equal ports: one server with all three paths.
      assert.equal(shared.metricsUrl, `${shared.healthUrl}/metrics`);
      assert.equal((await fetch(`${shared.healthUrl}/readyz`)).status, 200);
      assert.match(await (await fetch(shared.metricsUrl)).text(), /controller_runtime_reconcile_total/);
    } finally {
      await controller.stop();
      informer.stop();
      await probes.close();
      await shared.close();
    }
  });
});
