// LocalPlacement.upgradeMember on real etcd: a 3-member cluster on the previous minor (v3.5) created
// through the local placement is upgraded member by member to the current one (v3.6) with writes in
// between; each member keeps its id and its data, serves with a leader, and reports its new version; a
// member is rolled back to v3.5 while the cluster version is still 3.5; a new v3.6 member joins the mixed
// cluster as a learner (launch.version) and is promoted; leadership moves from a v3.5 leader to a v3.6
// member before the former is upgraded; an unknown version is refused with the member left running; a repeated call does nothing; once every member runs v3.6, etcd's
// cluster version moves to 3.6, and a v3.5 start is refused by etcd from then on. A new placement over the
// same root (an operator restart) reports and starts the persisted versions. A member with its fault
// agent (and the fault-reach flags, whose names differ between v3.5 and v3.6) is upgraded, its agent
// still answering about the new process.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { LocalPlacement, LocalPlacementError } from '../../src/controller/placement/local.ts';
import { robustnessApiVersion, type EtcdCluster, type EtcdClusterSpec } from '../../src/domain/index.ts';
import { AgentClient } from '../../src/faults/agent-client.ts';

const previous = '3.5.35';
const current = '3.6.16';
const namespace = 'upgrade';

function etcdCluster(name: string, replicas: 1 | 3, spec: Partial<EtcdClusterSpec> = {}): EtcdCluster {
  return {
    apiVersion: robustnessApiVersion,
    kind: 'EtcdCluster',
    metadata: { name, namespace, uid: randomUUID(), generation: 1 },
    spec: {
      version: previous,
      replicas,
      topology: 'standard',
      storage: { size: '1Gi' },
      image: { repository: 'gcr.io/etcd-development/etcd', failpoints: true, pullPolicy: 'IfNotPresent' },
      agent: { enabled: false },
      memberGracePeriod: '5m',
      ...spec,
    },
  };
}

/** Starts every member of `cluster` as a founder and waits until each answers healthy. */
async function createCluster(placement: LocalPlacement, cluster: EtcdCluster): Promise<string[]> {
  await placement.ensureCluster(cluster);
  const names = Array.from({ length: cluster.spec.replicas }, (_, i) => `${cluster.metadata.name}-${i}`);
  const peers: string[] = [];
  for (const name of names) peers.push(`${name}=${(await placement.addresses(cluster, name)).peerUrl}`);
  for (const name of names) await placement.startMember(cluster, { name, initialCluster: peers.join(','), initialClusterState: 'new' });
  await Promise.all(names.map((name) => placement.memberProcess(cluster, name)!.waitHealthy(60_000)));
  return names;
}

/** etcd's own /version: the member's server version and the cluster version it sees. */
async function versions(clientUrl: string): Promise<{ etcdserver: string; etcdcluster: string }> {
  const response = await fetch(`${clientUrl}/version`, { signal: AbortSignal.timeout(5000) });
  return (await response.json()) as { etcdserver: string; etcdcluster: string };
}

async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${(last as Error).message})`}`);
}

/** One member's Status through a client pinned to it. */
async function memberStatus(clientUrl: string): Promise<{ version: string; id: string; leader: string; revision: number }> {
  const client = new Etcd3({ hosts: clientUrl });
  try {
    const status = await client.maintenance.status();
    return { version: status.version, id: status.header.member_id, leader: status.leader, revision: Number(status.header.revision) };
  } finally {
    client.close();
  }
}

/** Every key written so far, read back (linearizably) through the member. */
async function assertAllRead(clientUrl: string, written: Map<string, string>): Promise<void> {
  const client = new Etcd3({ hosts: clientUrl });
  try {
    const all = await client.getAll().prefix('/up/').strings();
    assert.deepEqual(all, Object.fromEntries(written), `every key written so far reads back through ${clientUrl}`);
  } finally {
    client.close();
  }
}

describe('LocalPlacement.upgradeMember on real etcd v3.5 → v3.6', { timeout: 300_000 }, () => {
  let root: string;
  let placement: LocalPlacement;
  const opened: LocalPlacement[] = [];

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'local-upgrade-'));
    placement = new LocalPlacement({ root, upgradeTimeoutMs: 30_000 });
    opened.push(placement);
  });

  after(async () => {
    for (const p of opened) await p.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('a 3-member v3.5 cluster is upgraded member by member, rolled back and forward, and restarted by a new operator', async () => {
    const cluster = etcdCluster('up', 3);
    const names = await createCluster(placement, cluster);
    const url = async (name: string): Promise<string> => (await placement.addresses(cluster, name)).clientUrl;
    const placedVersions = async (p = placement): Promise<Record<string, string | undefined>> =>
      Object.fromEntries((await p.listMembers(cluster)).map((m) => [m.name, m.version]));
    assert.deepEqual(await placedVersions(), Object.fromEntries(names.map((n) => [n, previous])));
    for (const name of names) assert.equal((await versions(await url(name))).etcdserver, previous, 'the cluster was created on v3.5');
    const ids = new Map<string, string>();
    for (const name of names) ids.set(name, (await memberStatus(await url(name))).id);

    const client = new Etcd3({ hosts: await Promise.all(names.map(url)) });
    const written = new Map<string, string>();
    let lastRevision = 0;
    const write = async (label: string): Promise<void> => {
      for (let i = 0; i < 5; i++) {
        const key = `/up/${label}/${i}`;
        const { header } = await client.put(key).value(`${label}-${i}`).exec();
        const revision = Number(header.revision);
        assert.ok(revision > lastRevision, `revision ${revision} after ${lastRevision}`);
        lastRevision = revision;
        written.set(key, `${label}-${i}`);
      }
    };
    /** Upgrades (or rolls back) one member and checks it serves on `version` with its id and every key. */
    const upgrade = async (name: string, version: string): Promise<number> => {
      const oldPid = placement.memberProcess(cluster, name)!.pid;
      const started = Date.now();
      await placement.upgradeMember(cluster, name, version);
      const took = Date.now() - started;
      const proc = placement.memberProcess(cluster, name)!;
      assert.notEqual(proc.pid, oldPid, `${name} runs in a new process`);
      const status = await eventually(`${name} serving with a leader`, 30_000, async () => {
        const s = await memberStatus(await url(name));
        return s.leader !== '0' ? s : undefined;
      });
      assert.equal(status.version, version, `${name}'s Status reports etcd ${version}`);
      assert.equal(status.id, ids.get(name), `${name} keeps its member id`);
      assert.equal((await placedVersions())[name], version, `PlacedMember.version of ${name}`);
      assert.equal((await placement.listMembers(cluster)).find((m) => m.name === name)?.state, 'running');
      const record = JSON.parse(readFileSync(path.join(root, namespace, 'up', `${name}.json`), 'utf8')) as { version?: string };
      assert.equal(record.version, version, `${name}'s record persists the version`);
      await write(`after-${name}-${version}`);
      await assertAllRead(await url(name), written);
      return took;
    };

    try {
      await write('before');
      const [first, second, last] = names as [string, string, string];
      const durations: number[] = [];
      durations.push(await upgrade(first, current));
      assert.equal((await versions(await url(first))).etcdcluster, '3.5.0', 'a mixed cluster stays at cluster version 3.5');
      durations.push(await upgrade(second, current));

      // Roll back: while the cluster version is 3.5, a member goes back to v3.5 on its v3.6-written data.
      durations.push(await upgrade(second, previous));
      assert.deepEqual(await placedVersions(), { [first]: current, [second]: previous, [last]: previous });
      durations.push(await upgrade(second, current));

      // A version with no binaries: an error naming it, and the member keeps running as it was.
      const lastPid = placement.memberProcess(cluster, last)!.pid;
      await assert.rejects(placement.upgradeMember(cluster, last, '3.7.0'), (error: unknown) => {
        assert.ok(error instanceof LocalPlacementError, String(error));
        assert.match(error.message, /3\.7\.0/);
        return true;
      });
      assert.equal(placement.memberProcess(cluster, last)!.pid, lastPid, 'the refused upgrade did not touch the process');
      assert.equal((await placedVersions())[last], previous);
      assert.equal((await memberStatus(await url(last))).version, previous);
      await write('after-refused');

      // A new member on v3.6 joins the mixed cluster (a replacement in the middle of an upgrade): added
      // as a learner, started with launch.version, promoted, then removed again.
      const joiner = 'up-3';
      const joinerPeer = (await placement.addresses(cluster, joiner)).peerUrl;
      // etcd refuses a member add until the member serving it has been connected to every peer for 5 s
      // (strict reconfig check): a just restarted member answers 'unhealthy cluster' meanwhile.
      const added = await eventually('the learner added', 30_000, () => client.cluster.memberAdd({ peerURLs: [joinerPeer], isLearner: true }));
      const initialCluster = added.members
        .map((m) => `${m.name === '' ? joiner : m.name}=${m.peerURLs[0]!}`)
        .join(',');
      await placement.startMember(cluster, { name: joiner, initialCluster, initialClusterState: 'existing', version: current });
      assert.equal((await placedVersions())[joiner], current, 'launch.version decides the new member\'s version');
      await eventually(`${joiner} promoted`, 30_000, async () => {
        await client.cluster.memberPromote({ ID: added.member.ID });
        return true;
      });
      assert.equal((await versions(await url(joiner))).etcdserver, current);
      await assertAllRead(await url(joiner), written);
      await client.cluster.memberRemove({ ID: added.member.ID });
      await placement.deleteMember(cluster, joiner);

      // The leader last, after a leader transfer: make `last` (v3.5) the leader, then hand leadership to
      // an upgraded member the way the upgrade does, then upgrade it.
      const leaderOf = async (): Promise<string> => (await memberStatus(await url(first))).leader;
      const moveLeader = async (to: string): Promise<void> => {
        const leaderId = await leaderOf();
        const leaderName = names.find((n) => ids.get(n) === leaderId)!;
        if (leaderName === to) return;
        const pinned = new Etcd3({ hosts: await url(leaderName) });
        try {
          await pinned.maintenance.moveLeader({ targetID: ids.get(to)! });
        } finally {
          pinned.close();
        }
        await eventually(`${to} leading`, 10_000, async () => ((await leaderOf()) === ids.get(to) ? true : undefined));
      };
      await moveLeader(last);
      await moveLeader(first);
      durations.push(await upgrade(last, current));
      const allUpgradedAt = Date.now();
      const clusterVersion = await eventually('the cluster version 3.6.0', 60_000, async () => {
        const v = await versions(await url(first));
        return v.etcdcluster === '3.6.0' ? v : undefined;
      });
      assert.equal(clusterVersion.etcdserver, current);
      console.log(`upgradeMember took (ms): ${durations.join(', ')}; cluster version 3.6 after ${Date.now() - allUpgradedAt} ms`);

      // Idempotent: the same version again leaves the process alone.
      const pids = names.map((n) => placement.memberProcess(cluster, n)!.pid);
      const procs = names.map((n) => placement.memberProcess(cluster, n));
      for (const name of names) await placement.upgradeMember(cluster, name, current);
      assert.deepEqual(names.map((n) => placement.memberProcess(cluster, n)!.pid), pids);
      assert.deepEqual(names.map((n) => placement.memberProcess(cluster, n)), procs, 'no new process objects');

      // Once the cluster version is 3.6, etcd itself refuses a v3.5 member: the placement reports it.
      const refusedAt = Date.now();
      await assert.rejects(placement.upgradeMember(cluster, first, previous), (error: unknown) => {
        assert.ok(error instanceof LocalPlacementError, String(error));
        assert.match(error.message, new RegExp(`${first} did not become healthy on etcd ${previous.replaceAll('.', '\\.')}`));
        return true;
      });
      console.log(`a v3.5 start on a 3.6 cluster failed after ${Date.now() - refusedAt} ms`);
      assert.equal((await placement.listMembers(cluster)).find((m) => m.name === first)?.state, 'failed');
      // ... and going forward again brings it back on its data.
      await upgrade(first, current);
      await write('after-all');
    } finally {
      client.close();
    }

    // An operator restart: a new placement over the same root reports the persisted versions, and
    // starts the members on them (a launch's version is a new member's: the recorded one wins).
    await placement.close();
    const restarted = new LocalPlacement({ root });
    opened.push(restarted);
    assert.deepEqual(await placedVersions(restarted), Object.fromEntries(names.map((n) => [n, current])));
    await restarted.ensureCluster(cluster);
    for (const name of names) await restarted.startMember(cluster, { name, initialCluster: 'ignored=http://127.0.0.1:1', initialClusterState: 'existing', version: previous });
    await Promise.all(names.map((name) => restarted.memberProcess(cluster, name)!.waitHealthy(60_000)));
    for (const name of names) {
      const v = await versions(await url(name));
      assert.equal(v.etcdserver, current, `${name} restarted on its persisted version`);
      assert.equal(v.etcdcluster, '3.6.0');
    }
    await assertAllRead(await url(names[0]!), written);
    await restarted.deleteCluster(cluster);
  });

  test('a member with its fault agent is upgraded: new fault-reach flags, the agent answers about the new process', async () => {
    const cluster = etcdCluster('agent', 1, { agent: { enabled: true } });
    const [name] = (await createCluster(placement, cluster)) as [string];
    const token = (await placement.agentToken(cluster))!;
    const member = (await placement.listMembers(cluster))[0]!;
    assert.ok(member.agentUrl !== undefined && member.failpointUrl !== undefined);
    const agent = new AgentClient(member.agentUrl, token);
    const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

    const oldPid = placement.memberProcess(cluster, name)!.pid!;
    assert.equal((await agent.status()).pid, oldPid);
    // v3.5 knows only the experimental name of the compaction batch limit, and no snapshot catch-up flag.
    assert.ok(cmdline(oldPid).includes('--experimental-compaction-batch-limit=10'), cmdline(oldPid).join(' '));
    assert.ok(!cmdline(oldPid).some((a) => a.startsWith('--snapshot-catchup-entries')));

    const client = new Etcd3({ hosts: member.clientUrl });
    try {
      await client.put('/agent/before').value('1');
      await placement.upgradeMember(cluster, name, current);
      const newPid = placement.memberProcess(cluster, name)!.pid!;
      assert.notEqual(newPid, oldPid);
      assert.ok(cmdline(newPid).includes('--compaction-batch-limit=10'), cmdline(newPid).join(' '));
      assert.ok(cmdline(newPid).includes('--snapshot-catchup-entries=50'));
      assert.equal((await versions(member.clientUrl)).etcdserver, current);
      assert.equal(await client.get('/agent/before').string(), '1');
      // The agent finds etcd by its data dir: it reports (and would fault) the new process.
      assert.equal((await eventually('the agent reporting the new pid', 10_000, async () => {
        const status = await agent.status();
        return status.pid === newPid ? status : undefined;
      })).pid, newPid);
      assert.equal((await placement.listMembers(cluster))[0]?.agentUrl, member.agentUrl);
      // gofail still listens where the member record says (GOFAIL_HTTP survives the new binary).
      const failpoints = await fetch(member.failpointUrl, { signal: AbortSignal.timeout(5000) });
      assert.equal(failpoints.status, 200);
      assert.match(await failpoints.text(), /\w+=/);
    } finally {
      client.close();
    }
    await placement.deleteCluster(cluster);
  });
});
