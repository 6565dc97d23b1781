// etcd-wal-commit (tools/etcd-wal-commit, src/local/wal-commit.ts) on real etcd: the failover hazard of a
// two-voter cluster, reproduced, and its fix.
//
// With two voters the leader commits an entry once the follower has it durably (the follower fsyncs
// before it acks), but the follower learns the commit index only from the leader's next message. The
// leader's peer traffic to the follower is delayed by a constant 1.5 s (the follower's answers are not),
// so the follower holds ~1.5 s of acknowledged writes it does not know are committed. The leader is
// SIGKILLed while writes flow, and the messages it had in flight die with it (its proxies close: they
// would carry the commit index of every acknowledged write), then the follower is stopped gracefully.
// `etcd --force-new-cluster` alone on a copy of its data dir discards the entries past its commit
// index: acknowledged writes are gone. commitSurvivorLog first, then --force-new-cluster: all are kept.
import assert from 'node:assert/strict';
import { closeSync, cpSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { checkHistory } from '../../src/checker/index.ts';
import type { History, Operation, PutResponse, RangeResponse } from '../../src/domain/index.ts';
import { PeerProxy } from '../../src/faults/peer-proxy.ts';
import { memberIdHex } from '../../src/faults/peer-proxy-rules.ts';
import { commitSurvivorLog, etcdBinaries, etcdMemberFlags, freeLoopbackPorts, LocalEtcdMember, WalCommitError, type MemberAddresses } from '../../src/local/index.ts';
import { HistoryRecorder, RecordingClient, recordingEtcdClient } from '../../src/probes/index.ts';

const prefix = '/wal-commit/';
const prefixEnd = '/wal-commit0';
/** The constant delay of every byte the leader sends the follower. */
const delayMs = 1500;
const writers = 16;
/** Tolerate the delay: a follower that hears nothing for 1.5 s when the delay begins must not campaign. */
const timing = ['--heartbeat-interval=100', '--election-timeout=5000'];

interface Acked {
  value: string;
  revision: number;
}

const hostPort = (url: string): { host: string; port: number } => {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
};

async function memberStatus(endpoint: string): Promise<{ id: string; leader: string; raftIndex: number; appliedIndex: number } | undefined> {
  try {
    const response = await fetch(`${endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
    const body = (await response.json()) as { header?: { member_id?: string }; leader?: string; raftIndex?: string; raftAppliedIndex?: string };
    return {
      id: memberIdHex(body.header?.member_id ?? '0'),
      leader: memberIdHex(body.leader ?? '0'),
      raftIndex: Number(body.raftIndex ?? 0),
      appliedIndex: Number(body.raftAppliedIndex ?? 0),
    };
  } catch {
    return undefined;
  }
}

/**
 * Flips the last data byte of the middle record of the newest WAL file: the record's CRC no longer
 * matches. Walks etcd's framing (an 8-byte little-endian length whose top byte carries the padding).
 */
function corruptMiddleRecord(walDir: string): void {
  const newest = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!;
  const fd = openSync(path.join(walDir, newest), 'r+');
  try {
    const size = fstatSync(fd).size;
    const records: { start: number; length: number }[] = [];
    const frame = Buffer.alloc(8);
    for (let offset = 0; offset + 8 <= size; ) {
      readSync(fd, frame, 0, 8, offset);
      const field = frame.readBigInt64LE(0);
      if (field === 0n) break; // preallocated space
      const length = Number(BigInt.asUintN(64, field) & 0x00ffffffffffffffn);
      const padding = field < 0n ? Number((BigInt.asUintN(64, field) >> 56n) & 0x7n) : 0;
      records.push({ start: offset + 8, length });
      offset += 8 + length + padding;
    }
    assert.ok(records.length > 4, `too few records in ${newest}: ${records.length}`);
    const target = records[Math.floor(records.length / 2)]!;
    const byte = Buffer.alloc(1);
    const at = target.start + target.length - 1;
    readSync(fd, byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

describe('etcd-wal-commit: failover onto the survivor of a two-voter cluster', { timeout: 300_000 }, () => {
  const binaries = etcdBinaries('current');
  const root = mkdtempSync(path.join(os.tmpdir(), 'etcd-wal-commit-'));
  const members: LocalEtcdMember[] = [];
  const proxies: PeerProxy[] = [];
  const etcds: Etcd3[] = [];
  const recorder = new HistoryRecorder();
  /** Every acknowledged write: key → value and the revision the client saw. */
  const acked = new Map<string, Acked>();
  let writes: Operation[] = [];
  let maxRevision = 0;
  let follower = '';
  let safeMember: LocalEtcdMember | undefined;

  function client(endpoint: string, timeoutMs: number): RecordingClient {
    const etcd = recordingEtcdClient([endpoint]);
    etcds.push(etcd);
    return new RecordingClient(etcd, recorder, { timeoutMs });
  }

  /** A single member started on a copy of the follower's data dir with --force-new-cluster, on fresh ports. */
  async function forceNewCluster(copyRoot: string): Promise<LocalEtcdMember> {
    const [client, peer] = await freeLoopbackPorts(2);
    const a: MemberAddresses = { name: follower, clientUrl: `http://127.0.0.1:${client}`, peerUrl: `http://127.0.0.1:${peer}`, peerListenUrl: `http://127.0.0.1:${peer}`, failpointUrl: undefined };
    const member = new LocalEtcdMember(a, binaries, [
      `--name=${follower}`,
      `--data-dir=${path.join(copyRoot, `${follower}.etcd`)}`,
      `--listen-client-urls=${a.clientUrl}`,
      `--advertise-client-urls=${a.clientUrl}`,
      `--listen-peer-urls=${a.peerListenUrl}`,
      `--initial-advertise-peer-urls=${a.peerUrl}`,
      '--force-new-cluster',
    ], copyRoot);
    members.push(member);
    member.start();
    await member.waitHealthy(30_000);
    return member;
  }

  /** Reads the whole prefix (recorded), after every write of the first cluster returned. */
  async function readAll(member: LocalEtcdMember): Promise<{ kvs: Map<string, string>; revision: number; op: Operation }> {
    const before = recorder.operations.length;
    const outcome = await client(member.endpoint, 5000).execute({ type: 'range', key: prefix, end: prefixEnd });
    assert.equal(outcome.kind, 'ok', JSON.stringify(outcome));
    const response = (outcome as { response: RangeResponse }).response;
    const op = recorder.operations.slice(before).find((o) => o.request.type === 'range')!;
    return { kvs: new Map(response.kvs.map((kv) => [kv.key, kv.value ?? ''])), revision: response.revision ?? 0, op };
  }

  function missingAcked(kvs: Map<string, string>): string[] {
    return [...acked].filter(([key, { value }]) => kvs.get(key) !== value).map(([key]) => key);
  }

  function history(read: Operation): History {
    return { meta: { kind: 'meta', mode: 'exclusive', initialRevision: 1 }, operations: [...writes, read], watches: [] };
  }

  before(async () => {
    // Two voters, each behind a peer proxy (the advertised peer URL is the proxy's).
    const ports = await freeLoopbackPorts(6);
    const addresses: MemberAddresses[] = ['m1', 'm2'].map((name, i) => ({
      name,
      clientUrl: `http://127.0.0.1:${ports[i * 3]}`,
      peerUrl: `http://127.0.0.1:${ports[i * 3 + 1]}`,
      peerListenUrl: `http://127.0.0.1:${ports[i * 3 + 2]}`,
      failpointUrl: undefined,
    }));
    for (const a of addresses) proxies.push(await PeerProxy.start({ member: a.name, listen: hostPort(a.peerUrl), target: hostPort(a.peerListenUrl) }));
    const clusterRoot = path.join(root, 'cluster');
    mkdirSync(clusterRoot);
    const initialCluster = addresses.map((a) => `${a.name}=${a.peerUrl}`).join(',');
    for (const a of addresses) {
      members.push(
        new LocalEtcdMember(a, binaries, [
          ...etcdMemberFlags(a, { dataDir: path.join(clusterRoot, `${a.name}.etcd`), initialCluster, initialClusterState: 'new', token: `wal-commit-${path.basename(root)}` }),
          // Snapshots on both members: the tool must open the WAL at the newest one, as etcd does.
          '--snapshot-count=20',
          ...timing,
        ], clusterRoot),
      );
    }
    const [m1, m2] = members as [LocalEtcdMember, LocalEtcdMember];
    m1.start();
    m2.start();
    await Promise.all([m1.waitHealthy(), m2.waitHealthy()]);

    const statuses = await Promise.all([m1, m2].map((m) => memberStatus(m.endpoint)));
    const ids = new Map(statuses.map((s, i) => [s!.id, members[i]!.name]));
    for (const p of proxies) p.setPeers(ids);
    const leaderName = ids.get(statuses[0]!.leader);
    assert.ok(leaderName, `no leader: ${JSON.stringify(statuses)}`);
    const leader = members.find((m) => m.name === leaderName)!;
    follower = members.find((m) => m.name !== leaderName)!.name;
    const survivor = members.find((m) => m.name === follower)!;

    for (const p of proxies) p.setRules([{ from: leader.name, to: follower, action: 'delay', delayMs }]);
    await sleep(delayMs + 500);

    // Writers on the leader, one unique key per put.
    let stop = false;
    const outcomes = { ok: 0, unknown: 0, failed: 0 };
    const write = async (w: number): Promise<void> => {
      const c = client(leader.endpoint, 15_000);
      for (let i = 0; !stop; i++) {
        const key = `${prefix}w${w}/${i}`;
        const value = `v${w}.${i}`;
        const outcome = await c.execute({ type: 'put', key, value });
        outcomes[outcome.kind] += 1;
        if (outcome.kind === 'ok') {
          const revision = (outcome.response as PutResponse).revision ?? 0;
          acked.set(key, { value, revision });
          maxRevision = Math.max(maxRevision, revision);
        }
      }
    };
    const loops = Array.from({ length: writers }, (_, w) => write(w));
    const startedAt = Date.now();
    while (Date.now() - startedAt < 6000 || acked.size < 2 * writers) {
      if (Date.now() - startedAt > 30_000) assert.fail(`writes too slow: ${JSON.stringify(outcomes)}`);
      await sleep(100);
    }
    const beforeKill = await memberStatus(survivor.endpoint);

    // The leader dies and its messages in flight with it.
    const killed = leader.kill();
    for (const p of proxies) void p.close();
    await killed;
    stop = true;
    await Promise.all(loops);
    writes = recorder.operations.slice();
    const exit = await survivor.stop();
    assert.ok(exit && (exit.code === 0 || exit.signal === 'SIGTERM'), `the follower did not stop gracefully: ${JSON.stringify(exit)}`);
    console.log(`# leader ${leader.name}, follower ${follower}; writes: ${JSON.stringify(outcomes)}; highest acknowledged revision ${maxRevision}; follower before the kill: ${JSON.stringify(beforeKill)}`);

    const snaps = readdirSync(path.join(survivor.dataDir, 'member', 'snap')).filter((f) => f.endsWith('.snap'));
    assert.ok(snaps.length > 0, 'the follower took a snapshot: the tool reads the WAL from it');
    for (const copy of ['naive', 'safe']) {
      mkdirSync(path.join(root, copy));
      cpSync(survivor.dataDir, path.join(root, copy, `${follower}.etcd`), { recursive: true });
    }
  });

  after(async () => {
    for (const e of etcds) e.close();
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(members.map((m) => m.close()));
    rmSync(root, { recursive: true, force: true });
  });

  test('--force-new-cluster alone on the follower loses acknowledged writes (a linearizability violation)', async (t) => {
    const member = await forceNewCluster(path.join(root, 'naive'));
    const { kvs, revision, op } = await readAll(member);
    await member.stop();
    const missing = missingAcked(kvs);
    const discarded = /"msg":"discarding uncommitted WAL entries".*"number-of-discarded-entries":(\d+)/.exec(readFileSync(member.logFile, 'utf8'));
    assert.ok(discarded, 'etcd logs the entries it discards');
    t.diagnostic(`etcd discarded ${discarded[1]} uncommitted WAL entries`);
    t.diagnostic(`naive: ${missing.length} of ${acked.size} acknowledged writes missing; revision ${revision} < ${maxRevision} acknowledged`);
    assert.ok(missing.length >= 1, `expected lost acknowledged writes (revision ${revision}, highest acknowledged ${maxRevision})`);
    assert.ok(revision < maxRevision);
    const report = checkHistory(history(op), { timeoutMs: 60_000 });
    assert.equal(report.verdict, 'violation', JSON.stringify(report.linearizability.inconclusive ?? report.verdict));
  });

  test('commitSurvivorLog, then --force-new-cluster: every acknowledged write is kept (linearizable)', async (t) => {
    const dataDir = path.join(root, 'safe', `${follower}.etcd`);
    const dry = await commitSurvivorLog(dataDir, { dryRun: true });
    const result = await commitSurvivorLog(dataDir);
    t.diagnostic(`commitSurvivorLog: ${JSON.stringify(result)} (dry run: ${JSON.stringify(dry)})`);
    assert.deepEqual(dry, result, 'the dry run reports what the run does');
    assert.ok(result.commitAfter > result.commitBefore, JSON.stringify(result));
    assert.equal(result.commitAfter, result.lastIndex);
    const again = await commitSurvivorLog(dataDir);
    assert.deepEqual(again, { commitBefore: result.lastIndex, commitAfter: result.lastIndex, lastIndex: result.lastIndex }, 'a second run changes nothing');

    safeMember = await forceNewCluster(path.join(root, 'safe'));
    const { kvs, revision, op } = await readAll(safeMember);
    assert.deepEqual(missingAcked(kvs), [], 'every acknowledged write is present with its value');
    assert.ok(revision >= maxRevision, `revision ${revision} >= ${maxRevision}, the highest any client saw`);
    t.diagnostic(`safe: ${acked.size} acknowledged writes all present, ${kvs.size - acked.size} unacknowledged took effect; revision ${revision}`);
    const report = checkHistory(history(op), { timeoutMs: 60_000 });
    assert.equal(report.verdict, 'linearizable', JSON.stringify(report.linearizability.violation ?? report.linearizability.inconclusive));
  });

  test('errors: a missing data dir, one without a WAL, a running etcd (refused, data intact), a corrupt WAL', async () => {
    const missing = path.join(root, 'no-such-dir');
    await assert.rejects(commitSurvivorLog(missing), (error: unknown) => {
      assert.ok(error instanceof WalCommitError);
      assert.equal(error.dataDir, missing);
      assert.equal(error.exitCode, 1);
      assert.match(error.stderr, /data dir .*no-such-dir does not exist/);
      return true;
    });
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    await assert.rejects(commitSurvivorLog(empty), /no WAL in .*empty\/member\/wal/);

    // etcd holds its WAL's file locks while it runs: the tool opens nothing for writing.
    const running = safeMember;
    assert.ok(running?.running, 'the safe member from the previous test runs');
    await assert.rejects(commitSurvivorLog(running.dataDir), (error: unknown) => {
      assert.ok(error instanceof WalCommitError);
      assert.match(error.stderr, /WAL .*member\/wal is locked by another process: is etcd running/);
      return true;
    });
    await assert.rejects(commitSurvivorLog(running.dataDir, { dryRun: true }), /is locked/);
    const { kvs } = await readAll(running);
    assert.deepEqual(missingAcked(kvs), [], 'the running member still serves every acknowledged write');
    const put = await client(running.endpoint, 5000).execute({ type: 'put', key: `${prefix}after-refusal`, value: 'x' });
    assert.equal(put.kind, 'ok', 'and still takes writes');
    await running.stop();
    const stopped = await commitSurvivorLog(running.dataDir, { dryRun: true });
    assert.equal(stopped.commitBefore, stopped.lastIndex, `a gracefully stopped single member knows its whole log committed: ${JSON.stringify(stopped)}`);

    const corrupt = path.join(root, 'corrupt');
    cpSync(running.dataDir, corrupt, { recursive: true });
    corruptMiddleRecord(path.join(corrupt, 'member', 'wal'));
    await assert.rejects(commitSurvivorLog(corrupt), (error: unknown) => {
      assert.ok(error instanceof WalCommitError);
      assert.match(error.stderr, /WAL .*corrupt\/member\/wal is corrupt/);
      return true;
    });
  });
});
