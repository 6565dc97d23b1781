// WatchProbe against a real 3-member etcd cluster: progress notifications, exactly-once delivery, resuming
// after the member dies, resuming after a compaction cancel, and closing while the member is down.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { checkWatches, type CommittedRevision } from '../../src/checker/index.ts';
import type { KeyValue, WatchEvent, WatchResponse, WatchStream } from '../../src/domain/index.ts';
import { LocalEtcdCluster, type LocalEtcdMember } from '../../src/local/index.ts';
import { monotonicNs, recordingEtcdClient } from '../../src/probes/index.ts';
import { WatchProbe } from '../../src/probes/watch-probe.ts';

/** One writer at a time: replays its acknowledged writes into the events etcd must emit for them. */
class Writer {
  readonly committed: CommittedRevision[] = [];
  private readonly etcd: Etcd3;
  private readonly kvs = new Map<string, KeyValue>();

  constructor(etcd: Etcd3) {
    this.etcd = etcd;
  }

  get lastRevision(): number {
    return this.committed.at(-1)?.revision ?? 0;
  }

  async put(key: string, value: string): Promise<number> {
    const r = await this.etcd.kv.put({ key: Buffer.from(key), value: Buffer.from(value) }, { deadline: Date.now() + 5000 });
    const revision = Number(r.header.revision);
    const previous = this.kvs.get(key);
    const kv: KeyValue = { key, value, modRevision: revision, createRevision: previous?.createRevision ?? revision, version: (previous?.version ?? 0) + 1 };
    this.kvs.set(key, kv);
    const event: WatchEvent = { type: 'put', key, value, modRevision: revision, createRevision: kv.createRevision!, version: kv.version!, isCreate: previous === undefined };
    if (previous !== undefined) event.prevKV = previous;
    this.committed.push({ revision, events: [event] });
    return revision;
  }

  /** Deletes a key this writer put; returns the revision. */
  async delete(key: string): Promise<number> {
    const r = await this.etcd.kv.deleteRange({ key: Buffer.from(key) }, { deadline: Date.now() + 5000 });
    const revision = Number(r.header.revision);
    const previous = this.kvs.get(key);
    assert.ok(previous !== undefined && Number(r.deleted) === 1, `deleted ${key}, which should exist`);
    this.kvs.delete(key);
    this.committed.push({ revision, events: [{ type: 'delete', key, modRevision: revision, prevKV: previous }] });
    return revision;
  }

  /** Write i of a fixed mix over four keys: mostly puts, every fifth deletes a key that exists. */
  async step(prefix: string, i: number): Promise<number> {
    const key = `${prefix}${i % 4}`;
    return i % 5 === 4 && this.kvs.has(key) ? this.delete(key) : this.put(key, `v${i}`);
  }

  async currentRevision(): Promise<number> {
    return Number((await this.etcd.kv.range({ key: Buffer.from('/none') })).header.revision);
  }
}

/** A probe and everything it reported. */
interface Probed {
  probe: WatchProbe;
  streams: WatchStream[];
  /** Callbacks so far, to prove none come after close(). */
  calls: number;
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what()}`);
    await sleep(25);
  }
}

/** Every event of the streams in order, each stream up to its end. */
function eventsOf(streams: WatchStream[]): WatchEvent[] {
  return streams.flatMap((s) => s.responses.flatMap((r) => r.events));
}

/** The highest revision a stream showed delivered (its last event or progress notification), or just below its start. */
function deliveredUpTo(stream: WatchStream): number {
  const revisions = stream.responses.flatMap((r) => (r.progress === true ? [r.revision!] : r.events.map((e) => e.modRevision)));
  return Math.max(stream.request.startRevision! - 1, ...revisions);
}

function lastProgress(stream: WatchStream | undefined): number {
  return Math.max(0, ...(stream?.responses ?? []).filter((r) => r.progress === true).map((r) => r.revision!));
}

/** Exactly the committed writes, each once, in revision order. */
function assertExactlyOnce(events: WatchEvent[], committed: CommittedRevision[], label: string): void {
  const got = events.map((e) => `${e.modRevision} ${e.type} ${e.key}`);
  const want = committed.flatMap((c) => c.events.map((e) => `${e.modRevision} ${e.type} ${e.key}`));
  assert.deepEqual(got, want, `${label}: delivered events differ from the writes`);
}

describe('WatchProbe on a real etcd cluster', { timeout: 120_000 }, () => {
  let cluster: LocalEtcdCluster;
  const etcds: Etcd3[] = [];
  const probes: WatchProbe[] = [];
  let nextId = 1;

  const client = (endpoints: string[]): Etcd3 => {
    const etcd = recordingEtcdClient(endpoints);
    etcds.push(etcd);
    return etcd;
  };

  const startProbe = (member: LocalEtcdMember, prefix: string, startRevision: number, extra: { progressIntervalMs?: number; resumeBackoffMs?: { initial: number; max: number } } = {}): Probed => {
    const probed: Probed = { probe: undefined as unknown as WatchProbe, streams: [], calls: 0 };
    probed.probe = WatchProbe.start(client([member.endpoint]), {
      prefix,
      startRevision,
      member: member.name,
      clock: monotonicNs,
      progressNotify: true,
      progressIntervalMs: extra.progressIntervalMs ?? 100,
      nextStreamId: () => nextId++,
      onStreamOpened: (stream) => {
        assert.equal(stream.responses.length, 0);
        probed.streams.push(stream);
        probed.calls++;
      },
      onResponse: (streamId: number, response: WatchResponse) => {
        assert.equal(probed.streams.at(-1)?.id, streamId);
        assert.equal(probed.streams.at(-1)?.responses.at(-1), response);
        probed.calls++;
      },
      ...(extra.resumeBackoffMs ? { resumeBackoffMs: extra.resumeBackoffMs } : {}),
    });
    probes.push(probed.probe);
    return probed;
  };

  /** Waits until the probe's current stream has a progress notification at or above revision. */
  const waitForProgress = (probed: Probed, revision: number): Promise<void> =>
    waitFor(() => lastProgress(probed.streams.at(-1)) >= revision, 10_000, () => `a progress notification at ${revision}; streams [id, member, last progress]: ${JSON.stringify(probed.streams.map((s) => [s.id, s.member, lastProgress(s)]))}`);

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3 });
  });

  after(async () => {
    await Promise.all(probes.map((p) => p.close()));
    for (const etcd of etcds) etcd.close();
    await cluster?.close();
  });

  test('a probe per member delivers every write exactly once, in order, and confirms it with a progress notification', async () => {
    const prefix = '/probe/';
    const writer = new Writer(client(cluster.endpoints));
    const start = (await writer.currentRevision()) + 1;
    // A few writes before the probes start: they catch up from the start revision.
    for (let i = 0; i < 10; i++) await writer.step(prefix, i);
    const probed = cluster.members.map((m) => startProbe(m, prefix, start));
    for (let i = 10; i < 80; i++) {
      await writer.step(prefix, i);
      if (i % 10 === 0) await sleep(20);
    }
    const final = writer.lastRevision;
    for (const p of probed) await waitForProgress(p, final);
    for (const p of probed) await p.probe.close();

    for (const [i, p] of probed.entries()) {
      assert.equal(p.probe.streams, 1);
      assert.equal(p.probe.resumes, 0);
      assert.equal(p.streams.length, 1);
      const stream = p.streams[0]!;
      assert.equal(stream.member, cluster.members[i]!.name);
      assert.deepEqual(stream.request, { key: prefix, end: '/probe0', startRevision: start, progressNotify: true, prevKV: true });
      // The creation acknowledgement is not recorded: every response has events or is a progress notification.
      for (const r of stream.responses) assert.ok(r.progress === true ? r.events.length === 0 : r.events.length > 0, JSON.stringify(r));
      assert.ok(p.probe.progressNotifications > 0);
      assert.equal(p.probe.progressNotifications, stream.responses.filter((r) => r.progress).length);
      assert.ok(p.probe.lastRevision >= final);
      assertExactlyOnce(eventsOf(p.streams), writer.committed, stream.member);
    }
    const streams = probed.flatMap((p) => p.streams);
    assert.deepEqual(checkWatches({ streams, committed: writer.committed, prefix, historyStart: start }), []);
    // The checker sees a dropped event in these streams.
    const tampered = structuredClone(streams[0]!);
    const index = tampered.responses.findIndex((r, i) => i > 0 && r.events.length > 0);
    tampered.responses.splice(index, 1);
    assert.ok(checkWatches({ streams: [tampered], committed: writer.committed, prefix, historyStart: start }).some((v) => v.property === 'reliable'));
  });

  test('killing the member a probe watches: the stream ends with an error and a new one resumes from the last revision + 1', async () => {
    const prefix = '/kill/';
    // Write through the leader and kill a follower, so every write is acknowledged.
    const statuses = await Promise.all(cluster.members.map(async (m) => ({ member: m, status: await client([m.endpoint]).maintenance.status() })));
    const leaderId = statuses[0]!.status.leader;
    const leader = statuses.find((s) => s.status.header.member_id === leaderId)!.member;
    const victim = statuses.find((s) => s.status.header.member_id !== leaderId)!.member;
    const writer = new Writer(client([leader.endpoint]));
    const start = (await writer.currentRevision()) + 1;
    const probed = cluster.members.map((m) => startProbe(m, prefix, start, { resumeBackoffMs: { initial: 50, max: 400 } }));
    const victimProbe = probed[cluster.members.indexOf(victim)]!;

    let stop = false;
    let writes = 0;
    const writing = (async () => {
      for (let i = 0; !stop; i++, writes++) {
        await writer.step(prefix, i);
        await sleep(5);
      }
    })();
    try {
      await waitFor(() => victimProbe.streams[0]?.responses.some((r) => r.events.length > 0) === true, 10_000, () => 'the victim probe saw no event');
      await victim.kill();
      await waitFor(() => victimProbe.streams[0]!.responses.at(-1)?.canceled === true, 10_000, () => 'the broken stream recorded no end');
      const writesWhileDown = writes;
      await sleep(700);
      assert.ok(writes > writesWhileDown, 'writes continue while the member is down');
      await victim.restart();
      await waitFor(() => victimProbe.streams.length >= 2, 15_000, () => 'the probe did not resume');
      await sleep(300);
    } finally {
      stop = true;
      await writing;
      if (!victim.running) await victim.restart();
    }
    const final = writer.lastRevision;
    for (const p of probed) await waitForProgress(p, final);
    for (const p of probed) await p.probe.close();

    const broken = victimProbe.streams[0]!;
    const end = broken.responses.at(-1)!;
    assert.equal(end.canceled, true);
    assert.equal(typeof end.error, 'string');
    assert.equal(end.events.length, 0);
    assert.ok(victimProbe.probe.resumes >= 1);
    assert.equal(victimProbe.probe.resumes, victimProbe.streams.length - 1);
    // Each new stream starts exactly after what the previous one delivered.
    for (let i = 1; i < victimProbe.streams.length; i++) {
      const previous = victimProbe.streams[i - 1]!;
      assert.ok(previous.responses.at(-1)?.canceled, `stream ${previous.id} did not end before the next one`);
      assert.equal(victimProbe.streams[i]!.request.startRevision, deliveredUpTo(previous) + 1);
    }
    assert.ok(deliveredUpTo(broken) < final, 'the member died before the last write');
    for (const p of probed) assertExactlyOnce(eventsOf(p.streams), writer.committed, p.streams[0]!.member!);
    const streams = probed.flatMap((p) => p.streams);
    assert.deepEqual(checkWatches({ streams, committed: writer.committed, prefix, historyStart: start }), []);
  });

  test('a watch from a compacted revision is canceled with the compact revision and resumes from it', async () => {
    const prefix = '/compact/';
    const writer = new Writer(client(cluster.endpoints));
    const start = (await writer.currentRevision()) + 1;
    const revisions: number[] = [];
    for (let i = 0; i < 12; i++) revisions.push(await writer.step(prefix, i));
    const compactRevision = revisions[6]!;
    await client(cluster.endpoints).kv.compact({ revision: compactRevision, physical: true });

    const probed = startProbe(cluster.members[0]!, prefix, start);
    await waitFor(() => probed.streams.length >= 2, 10_000, () => 'no resume after the compaction');
    await waitForProgress(probed, writer.lastRevision);
    await probed.probe.close();

    const [canceled, resumed] = probed.streams;
    assert.equal(canceled!.request.startRevision, start);
    assert.equal(canceled!.responses.length, 1);
    assert.equal(canceled!.responses[0]!.canceled, true);
    assert.equal(canceled!.responses[0]!.compactRevision, compactRevision);
    assert.equal(resumed!.request.startRevision, compactRevision);
    assert.equal(probed.probe.resumes, 1);
    // Everything from the compact revision on, once.
    assertExactlyOnce(eventsOf(probed.streams), writer.committed.filter((c) => c.revision >= compactRevision), 'after compaction');
    assert.deepEqual(checkWatches({ streams: probed.streams, committed: writer.committed, prefix, historyStart: start, compactRevision }), []);
  });

  test('close() while the member is down stops the reconnect loop', async () => {
    const prefix = '/close/';
    const member = cluster.members[1]!;
    const writer = new Writer(client([cluster.members[0]!.endpoint]));
    const start = (await writer.currentRevision()) + 1;
    await writer.step(prefix, 0);
    const probed = startProbe(member, prefix, start, { resumeBackoffMs: { initial: 20, max: 50 } });
    try {
      await waitForProgress(probed, writer.lastRevision);
      await member.kill();
      await waitFor(() => probed.streams[0]!.responses.at(-1)?.canceled === true, 10_000, () => 'the broken stream recorded no end');
      await sleep(300); // several failed reconnect attempts
      const began = Date.now();
      await probed.probe.close();
      assert.ok(Date.now() - began < 1000, `close() took ${Date.now() - began} ms`);
      const calls = probed.calls;
      await member.restart();
      await writer.step(prefix, 1);
      await sleep(500);
      assert.equal(probed.calls, calls, 'the probe reported something after close()');
      assert.equal(probed.probe.streams, 1);
      await probed.probe.close(); // idempotent
    } finally {
      if (!member.running) await member.restart();
    }
  });
});
