// The fault agent's survivor recovery (src/faults/agent-recovery.ts) with tools/etcd-launcher, as a member
// Pod of a twoNodeWitness cluster runs them, on a real two-member etcd cluster of local processes: the
// other member is stopped (the pair has lost quorum), the agent brings the survivor back alone inside
// its running launcher (etcd held, killed, its log committed by etcd-wal-commit, started with
// --force-new-cluster), every acknowledged write is still there, a second request for the same failover
// does nothing, and once the recovery is finished the survivor's next start is a plain one.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { AgentClient, AgentRequestError } from '../../src/faults/agent-client.ts';
import { FaultAgent } from '../../src/faults/agent.ts';
import { findEtcdProcess } from '../../src/faults/agent-process.ts';
import { forceFile, recoveryHoldFile } from '../../src/faults/agent-recovery.ts';
import { holdFile } from '../../src/faults/hold.ts';
import { commitSurvivorLog, etcdBinaries, freeLoopbackPorts, launcherBinary } from '../../src/local/index.ts';
import { etcdMemberFlags } from '../../src/local/etcd-cluster.ts';
import { eventually } from '../helpers/operator.ts';

const token = 'recovery-token-0123456789';

/** A member's etcd under the launcher, with the holds and the force file a twoNodeWitness member Pod has. */
class LaunchedMember {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<number | null>;
  constructor(launcher: string, etcd: string, dataDir: string, flags: string[]) {
    const args = [`--hold-file=${holdFile(dataDir)}`, `--hold-file=${recoveryHoldFile(dataDir)}`, `--force-file=${forceFile(dataDir)}`, '--', etcd, ...flags];
    this.child = spawn(launcher, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }
  /** The launcher's own lines (etcd's log lines are JSON). */
  launcherLines(): string[] {
    return this.stderr.split('\n').filter((line) => line.startsWith('etcd-launcher:'));
  }
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

describe('agent survivor recovery under etcd-launcher, on a real two-member cluster', { timeout: 180_000 }, () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'agent-recovery-'));
  const dataDir = (name: string): string => path.join(root, `${name}.etcd`);
  const members: LaunchedMember[] = [];
  const clients: Etcd3[] = [];
  let agent: FaultAgent;
  let survivorUrl = '';
  /** Every acknowledged write: key → value. */
  const acked = new Map<string, string>();

  const client = (...endpoints: string[]): Etcd3 => {
    const etcd = new Etcd3({ hosts: endpoints, dialTimeout: 2000 });
    clients.push(etcd);
    return etcd;
  };

  before(async () => {
    const etcd = etcdBinaries('current').etcd;
    const launcher = launcherBinary();
    const [c1, p1, c2, p2] = await freeLoopbackPorts(4);
    const url = (port: number | undefined): string => `http://127.0.0.1:${port!}`;
    const initialCluster = `m1=${url(p1)},m2=${url(p2)}`;
    for (const [name, c, p] of [['m1', c1, p1], ['m2', c2, p2]] as const) {
      const a = { name, clientUrl: url(c), peerUrl: url(p), peerListenUrl: url(p) };
      members.push(new LaunchedMember(launcher, etcd, dataDir(name), etcdMemberFlags(a, { dataDir: dataDir(name), initialCluster, initialClusterState: 'new', token: 'agent-recovery' })));
    }
    survivorUrl = url(c2);
    agent = await FaultAgent.start({ member: 'm2', dataDir: dataDir('m2'), listen: { host: '127.0.0.1', port: 0 }, token, commitLog: (dir) => commitSurvivorLog(dir) });
    const pair = client(url(c1), survivorUrl);
    await eventually('the pair to serve', 30_000, async () => pair.put('/ready').value('1').then(() => true, () => undefined), () => Promise.resolve(members.map((m) => m.stderr.slice(-400)).join('\n')));
    for (let i = 0; i < 200; i++) {
      await pair.put(`/k/${i}`).value(`v${i}`);
      acked.set(`/k/${i}`, `v${i}`);
    }
  });

  after(async () => {
    for (const etcd of clients) etcd.close();
    await agent?.close();
    for (const member of members) await member.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('the other member gone, the survivor is brought back alone with every acknowledged write; once per failover', async () => {
    await members[0]!.stop();
    const survivor = members[1]!;
    const before = findEtcdProcess(dataDir('m2'));
    assert.ok(before !== undefined, 'the survivor runs');
    const agentClient = new AgentClient(agent.url, token);
    assert.equal(await agentClient.recoveryEpoch(), undefined, 'no force file yet');

    assert.deepEqual(await agentClient.recover(7), { epoch: 7, recovered: true });
    assert.equal(await agentClient.recoveryEpoch(), 7);
    assert.ok(existsSync(forceFile(dataDir('m2'))), 'the force file is on the data volume');
    assert.ok(!existsSync(recoveryHoldFile(dataDir('m2'))), 'the recovery hold is released');

    const alone = client(survivorUrl);
    const writable = await eventually('the survivor to serve alone', 60_000, async () => alone.put('/after').value('1').then(() => true, () => undefined), () => Promise.resolve(survivor.stderr.slice(-800)));
    assert.ok(writable);
    const after = findEtcdProcess(dataDir('m2'));
    assert.ok(after !== undefined && after !== before, `etcd was restarted in place (pid ${before} -> ${after})`);
    assert.equal(survivor.child.exitCode, null, 'the launcher (the container) kept running');
    assert.ok(survivor.launcherLines().some((l) => /force-new-cluster exists: starting etcd with --force-new-cluster/.test(l)), survivor.launcherLines().join('\n'));
    const list = await alone.cluster.memberList({});
    assert.deepEqual(list.members.map((m) => m.name), ['m2'], 'a one-member cluster');
    const kept = await alone.getAll().prefix('/k/').strings();
    assert.equal(Object.keys(kept).length, acked.size, 'every acknowledged write survived');
    for (const [key, value] of acked) assert.equal(kept[key], value, key);

    // The same failover again (a slow operator replica), or an older one: nothing is killed or rewritten.
    assert.deepEqual(await agentClient.recover(7), { epoch: 7, recovered: false });
    assert.deepEqual(await agentClient.recover(5), { epoch: 7, recovered: false });
    assert.equal(findEtcdProcess(dataDir('m2')), after, 'not killed again');
  });

  test('finishing the recovery removes the force file: a later crash restarts the survivor plainly, still alone and whole', async () => {
    const survivor = members[1]!;
    const agentClient = new AgentClient(agent.url, token);
    assert.equal(await agentClient.finishRecovery(), true);
    assert.equal(await agentClient.finishRecovery(), false, 'idempotent');
    assert.equal(await agentClient.recoveryEpoch(), undefined);
    const forcedStarts = survivor.launcherLines().filter((l) => l.includes('starting etcd with --force-new-cluster')).length;
    const pid = findEtcdProcess(dataDir('m2'))!;
    process.kill(pid, 'SIGKILL');
    const alone = client(survivorUrl);
    await eventually(
      'the survivor to serve again after a crash',
      60_000,
      async () => (findEtcdProcess(dataDir('m2')) !== pid ? alone.put('/after-crash').value('1').then(() => true, () => undefined) : undefined),
      () => Promise.resolve(survivor.stderr.slice(-800)),
    );
    assert.equal(survivor.launcherLines().filter((l) => l.includes('starting etcd with --force-new-cluster')).length, forcedStarts, 'a plain start');
    assert.deepEqual((await alone.cluster.memberList({})).members.map((m) => m.name), ['m2']);
    assert.equal(Object.keys(await alone.getAll().prefix('/k/').strings()).length, acked.size);
  });

  test('bad requests are refused with what was wrong; an agent without etcd-wal-commit says so and leaves etcd running', async () => {
    const refused = async (body: unknown): Promise<string> => {
      const response = await fetch(`${agent.url}/v1/recovery`, { method: 'PUT', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(response.status, 400);
      return ((await response.json()) as { error: string }).error;
    };
    assert.match(await refused({ epoch: 0 }), /"epoch" must be a positive whole number .*got 0/);
    assert.match(await refused({ epoch: 2, force: true }), /unknown field "force"/);
    assert.match(await refused([1]), /a JSON object \{ "epoch": N \}/);

    const pid = findEtcdProcess(dataDir('m2'));
    const bare = await FaultAgent.start({ member: 'm2', dataDir: dataDir('m2'), listen: { host: '127.0.0.1', port: 0 }, token });
    try {
      const error = await new AgentClient(bare.url, token).recover(99).then(
        () => assert.fail('an agent without etcd-wal-commit recovered'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof AgentRequestError && error.status === 409, String(error));
      assert.match(error.agentMessage, /without etcd-wal-commit/);
    } finally {
      await bare.close();
    }
    assert.equal(findEtcdProcess(dataDir('m2')), pid, 'etcd was not touched');
  });
});
