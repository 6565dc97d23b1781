// Histories recorded from a real 3-member etcd cluster under concurrent traffic, with a member killed
// and restarted in the middle, checked offline and live.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { checkHistory, LiveChecker, parseHistory, serializeHistory } from '../../src/checker/index.ts';
import type { History, Operation } from '../../src/domain/index.ts';
import { LocalEtcdCluster } from '../../src/local/index.ts';
import { HistoryRecorder, RecordingClient, recordingEtcdClient, WatchRecorder } from '../../src/probes/index.ts';
import { runTraffic } from '../helpers/traffic.ts';

const artifacts = new URL('../artifacts/', import.meta.url).pathname;

describe('checking histories recorded from a real etcd cluster', { timeout: 180_000 }, () => {
  let cluster: LocalEtcdCluster;
  const etcds: Etcd3[] = [];
  let recorded: History | undefined;

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3 });
  });

  after(async () => {
    for (const e of etcds) e.close();
    await cluster?.close();
  });

  test('concurrent clients and a watch per member, with a member killed and restarted: linearizable offline and live, watches hold', async () => {
    const recorder = new HistoryRecorder();
    const live = new LiveChecker({ mode: 'exclusive' });
    recorder.onOperation((op) => {
      live.push(op);
      live.advance(recorder.watermark());
    });
    // Two clients pinned to each member plus two over all members, as etcd's robustness traffic does.
    const clients: RecordingClient[] = [];
    for (const member of cluster.members) {
      for (let i = 0; i < 2; i++) {
        const etcd = recordingEtcdClient([member.endpoint]);
        etcds.push(etcd);
        clients.push(new RecordingClient(etcd, recorder, { timeoutMs: 500, member: member.name }));
      }
    }
    for (let i = 0; i < 2; i++) {
      const etcd = recordingEtcdClient(cluster.endpoints);
      etcds.push(etcd);
      clients.push(new RecordingClient(etcd, recorder, { timeoutMs: 500 }));
    }

    // One watch per member over the traffic's prefix, from the first revision.
    const watches: WatchRecorder[] = [];
    for (const [i, member] of cluster.members.entries()) {
      const etcd = recordingEtcdClient([member.endpoint]);
      etcds.push(etcd);
      watches.push(
        await WatchRecorder.start(etcd, {
          id: i + 1,
          prefix: '/robustness/',
          startRevision: 2,
          member: member.name,
          clock: recorder.clock,
          onResponse: (response) => live.pushWatchResponse(response),
        }),
      );
    }

    let stop = false;
    const traffic = runTraffic(clients, { prefix: '/robustness/', keys: 5, until: () => stop, seed: 7 });
    await sleep(1500);
    const victim = cluster.member('m3');
    await victim.kill();
    await sleep(1000);
    await victim.restart();
    await sleep(1500);
    stop = true;
    const stats = await traffic;

    // Let every watch catch up with the last write before closing it.
    const finalRevision = Math.max(...recorder.operations.map((op) => (op.response as { revision?: number } | undefined)?.revision ?? 0));
    const reached = (w: WatchRecorder): number => Math.max(0, ...w.stream.responses.flatMap((r) => r.events.map((e) => e.modRevision)));
    for (let i = 0; i < 100 && watches.some((w) => reached(w) < finalRevision); i++) await sleep(100);
    for (const w of watches) await w.close();

    const history: History = {
      meta: { kind: 'meta', mode: 'exclusive', initialRevision: 1 },
      operations: recorder.operations,
      watches: watches.map((w) => w.stream),
    };
    mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, 'real-etcd-kill.jsonl');
    writeFileSync(file, serializeHistory(history));

    assert.ok(stats.ok > 200, `too little traffic got through: ${JSON.stringify(stats)}`);
    assert.ok(stats.failed + stats.unknown > 0, `killing a member should fail some requests: ${JSON.stringify(stats)}`);
    assert.ok(history.operations.some((op) => op.return === null), 'expected some unknown-outcome operations from the killed member');

    const offline = checkHistory(parseHistory(serializeHistory(history), file), { timeoutMs: 60_000 });
    assert.equal(offline.verdict, 'linearizable', JSON.stringify(offline.linearizability.violation ?? offline.linearizability.inconclusive ?? offline.watch.violations.slice(0, 3)));
    recorded = history;
    assert.equal(offline.watch.checked, 3);
    assert.deepEqual(offline.watch.violations, []);
    for (const w of watches) assert.ok(reached(w) >= finalRevision, `watch ${w.stream.id} stopped at ${reached(w)} < ${finalRevision}`);
    assert.equal(live.finish(), 'linearizable');
    // Every acknowledged, linearizable operation was settled, plus the unknown writes the live checker
    // resolved from later observations.
    const acknowledged = history.operations.filter((op) => op.return !== null && op.response !== undefined && !('error' in op.response)).length;
    assert.equal(live.stats().processed, acknowledged + live.stats().resolved);
  });

  test('a recorded watch stream with one event removed breaks the reliable guarantee', () => {
    assert.ok(recorded, 'the first test did not record a history');
    const watches = structuredClone(recorded.watches);
    const stream = watches[0]!;
    const withEvents = stream.responses.findIndex((r, i) => i > 0 && i < stream.responses.length - 1 && r.events.length > 0);
    assert.ok(withEvents > 0, 'the watch recorded too few responses');
    const [dropped] = stream.responses.splice(withEvents, 1);
    const report = checkHistory({ ...recorded, watches });
    assert.equal(report.verdict, 'violation');
    const reliable = report.watch.violations.filter((v) => v.property === 'reliable' && v.watch === stream.id);
    assert.ok(reliable.length > 0, JSON.stringify(report.watch.violations.slice(0, 3)));
    assert.ok(reliable.some((v) => v.events.some((e) => e.modRevision === dropped!.events[0]!.modRevision)));
  });

  // Two faults' triggers share a recording client: a 1,000 ops/s run wrote overlapping operations of one
  // stream, and its history could not be read back.
  test('overlapping calls on one recording client become operations of different streams', async () => {
    const recorder = new HistoryRecorder();
    const etcd = recordingEtcdClient(cluster.endpoints);
    etcds.push(etcd);
    const client = new RecordingClient(etcd, recorder, { timeoutMs: 2000 });
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => client.execute({ type: 'put', key: '/overlap/k', value: `v${i}` })));
    assert.deepEqual(outcomes.map((o) => o.kind), Array(8).fill('ok'));
    const byClient = new Map<number, Operation[]>();
    for (const op of recorder.operations) byClient.set(op.client, [...(byClient.get(op.client) ?? []), op]);
    assert.ok(byClient.size > 1, 'all on one stream');
    for (const ops of byClient.values()) {
      ops.sort((a, b) => a.call - b.call);
      for (let i = 1; i < ops.length; i++) assert.ok(ops[i - 1]!.return! <= ops[i]!.call, `client ${ops[i]!.client}: operations overlap`);
    }
    assert.equal(checkHistory({ meta: { kind: 'meta', mode: 'shared', prefix: '/overlap/' }, operations: recorder.operations, watches: [] }).verdict, 'linearizable');
  });

  test('the same recorded history with one read altered is a violation', async () => {
    const recorder = new HistoryRecorder();
    const etcd = recordingEtcdClient(cluster.endpoints);
    etcds.push(etcd);
    const clients = [new RecordingClient(etcd, recorder, { timeoutMs: 1000 }), new RecordingClient(etcd, recorder, { timeoutMs: 1000 })];
    let n = 0;
    await runTraffic(clients, { prefix: '/tamper/', keys: 3, until: () => ++n > 300, seed: 3 });
    const operations = recorder.operations.slice();
    const readIndex = operations.findIndex((op) => op.request.type === 'range' && op.request.end === undefined && op.response !== undefined && 'kvs' in op.response && op.response.kvs.length > 0);
    assert.ok(readIndex >= 0, 'no read with a value was recorded');
    const read = structuredClone(operations[readIndex]!);
    (read.response as { kvs: { value?: string }[] }).kvs[0]!.value = 'tampered';
    operations[readIndex] = read;
    // This cluster already has data from the first test: start from what a shared cluster looks like.
    const report = checkHistory({ meta: { kind: 'meta', mode: 'shared', prefix: '/tamper/' }, operations, watches: [] });
    assert.equal(report.verdict, 'violation');
    assert.equal(report.linearizability.violation?.unplaceable[0], readIndex);
    const untouched = checkHistory({ meta: { kind: 'meta', mode: 'shared', prefix: '/tamper/' }, operations: recorder.operations, watches: [] });
    assert.equal(untouched.verdict, 'linearizable');
  });
});
