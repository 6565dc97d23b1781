// The two-node-plus-witness topology end to end on real etcd: the operator (--runtime=local) against a
// real kube-apiserver, the members as real etcd processes with their fault agents, the HTTP witness as a
// real process. Failover after the leader is crashed under write load, after the follower is crashed,
// after a partition between the pair; each time no acknowledged write is lost, the fenced member never
// starts again (by hand neither), and the pair is made whole with a new member. A replica that lost its
// Lease is refused by the witness.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdClusterReconciler } from '../../src/controller/etcdcluster/reconciler.ts';
import { EventRecorder } from '../../src/controller/kit/index.ts';
import type { Operator } from '../../src/controller/operator.ts';
import { LocalPlacement } from '../../src/controller/placement/local.ts';
import { HttpWitness } from '../../src/controller/witness/store-http.ts';
import type { EtcdCluster } from '../../src/domain/index.ts';
import { AgentClient } from '../../src/faults/agent-client.ts';
import { etcdBinaries, etcdMemberFlags, LocalWitness } from '../../src/local/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { installCrds, kubectlOk, startLocalOperator } from '../helpers/operator.ts';
import { assertNoAcknowledgedWriteLost, eventReasons, getCluster, pairManifest, waitFailover, waitPair, WriteLoad } from '../helpers/two-node.ts';

const namespace = 'pair';
const name = 'pair';
let apiserver: TestApiserver;
let witness: LocalWitness;
let placement: LocalPlacement;
let operator: Operator;
let root: string;
const failoverTimes: number[] = [];

const startOperator = (identity: string): Promise<Operator> => startLocalOperator(apiserver, placement, namespace, identity);

before(async () => {
  apiserver = await TestApiserver.start();
  await installCrds(apiserver);
  await kubectlOk(apiserver, ['create', 'namespace', namespace]);
  root = mkdtempSync(path.join(os.tmpdir(), 'two-node-'));
  witness = new LocalWitness({ dataDir: path.join(root, 'witness') });
  witness.start();
  await witness.waitReady();
  placement = new LocalPlacement({ root: path.join(root, 'members') });
  operator = await startOperator('op-a');
});

after(async () => {
  await operator?.close();
  await witness?.close();
  await apiserver?.close();
  if (failoverTimes.length > 0) console.log(`fault → writable again (ms): ${failoverTimes.join(', ')}`);
  // TWO_NODE_KEEP=1 keeps the members' data and logs for a post-mortem.
  if (process.env['TWO_NODE_KEEP'] === '1') console.log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
});

const current = async (): Promise<EtcdCluster> => (await getCluster(apiserver, namespace, name))!;

test('the pair forms: two voters, the witness record names them', async () => {
  await kubectlOk(apiserver, ['apply', '-f', '-'], pairManifest(namespace, name, { kind: 'http', url: witness.url }));
  const cluster = await waitPair(apiserver, namespace, name);
  assert.deepEqual(cluster.status!.members!.map((m) => m.name), ['pair-0', 'pair-1']);
  const { record } = await new HttpWitness(witness.url).read();
  assert.equal(record?.phase, 'paired');
  assert.deepEqual(record?.members, ['pair-0', 'pair-1']);
  assert.equal(record?.owner, 'op-a');
  assert.equal(record?.ownerTerm, 1, 'the first Lease holder has term 1');
  assert.equal(cluster.status!.witness!.epoch, record?.epoch);
  const reasons = (await eventReasons(apiserver, namespace, name)).map((e) => e.reason);
  for (const reason of ['WitnessInitialized', 'ClusterBootstrapped', 'ReplacementAnnounced', 'MemberAdded', 'MemberPromoted']) assert.ok(reasons.includes(reason), `${reason} in ${reasons.join(',')}`);
});

/** Crashes (SIGKILL, kept down by the crash fault's hold) the member `role` under write load; checks the failover. */
async function crashUnderLoad(role: 'leader' | 'follower'): Promise<void> {
  const before = await waitPair(apiserver, namespace, name);
  const members = before.status!.members!;
  const victim = members.find((m) => m.role === role)!;
  const survivor = members.find((m) => m.role !== role)!;
  const runtime = placement.runtimeMembers(before).find((m) => m.name === victim.name)!;
  const token = (await placement.agentToken(before))!;
  const guard = path.join(root, 'members', namespace, name, `${victim.name}.guard.sh`);
  const service = await placement.serviceEndpoint(before);
  const prefix = `/load-${role}/`;
  const load = new WriteLoad(service, prefix);
  await sleep(1500);
  await new AgentClient(runtime.agentUrl!, token).inject({ type: 'crash', ttlMs: 120_000 });
  const faultAt = Date.now();
  const failover = await waitFailover(apiserver, namespace, name, before.status!.witness!.epoch!);
  assert.equal(failover.survivor, survivor.name);
  assert.equal(failover.fenced, victim.name);
  await sleep(3000);
  await load.stop();
  const writable = load.writableAfter(faultAt);
  assert.ok(writable !== undefined, 'a write succeeded after the failover');
  failoverTimes.push(writable);
  const { acknowledged } = await assertNoAcknowledgedWriteLost(service, load, prefix);
  assert.ok(acknowledged > 20, `only ${acknowledged} writes were acknowledged`);
  assert.ok(load.acknowledged.some((a) => a.invokedAt > faultAt), 'writes were acknowledged after the fault');

  // The fenced member never starts again: its start command refuses, by hand too.
  const byHand = spawnSync(guard, [], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(byHand.status, 77, `the guard of ${victim.name} exited ${byHand.status}: ${byHand.stderr}`);
  assert.match(byHand.stderr, /fenced by the witness/);

  const whole = await waitPair(apiserver, namespace, name);
  const names = whole.status!.members!.map((m) => m.name);
  assert.ok(names.includes(survivor.name) && !names.includes(victim.name), names.join(','));
  const { record } = await new HttpWitness(witness.url).read();
  assert.ok(record?.fenced.includes(victim.name));
  const reasons = (await eventReasons(apiserver, namespace, name)).map((e) => e.reason);
  for (const reason of ['FailoverStarted', 'MemberFenced', 'SurvivorRecovering', 'FailoverCompleted']) assert.ok(reasons.includes(reason), `${reason} in ${reasons.join(',')}`);
}

test('the leader crashes under write load: the follower serves alone, no acknowledged write is lost, the pair is made whole', async () => {
  await crashUnderLoad('leader');
});

test('the follower crashes under write load: the leader serves alone, the pair is made whole', async () => {
  await crashUnderLoad('follower');
});

test('a partition between the pair: one side is fenced, the other serves; a fenced member run by hand cannot serve', async () => {
  const before = await waitPair(apiserver, namespace, name);
  const members = before.status!.members!;
  const token = (await placement.agentToken(before))!;
  const runtime = placement.runtimeMembers(before);
  const [a, b] = members;
  const peers = Object.fromEntries(members.map((m) => [m.id!, m.name]));
  const rules = [
    { from: a!.name, to: b!.name, action: 'blackhole' as const },
    { from: b!.name, to: a!.name, action: 'blackhole' as const },
  ];
  const service = await placement.serviceEndpoint(before);
  const prefix = '/load-partition/';
  const load = new WriteLoad(service, prefix);
  await sleep(1000);
  for (const m of runtime) await new AgentClient(m.agentUrl!, token).inject({ type: 'network', rules, ttlMs: 30_000, peers });
  const faultAt = Date.now();
  const failover = await waitFailover(apiserver, namespace, name, before.status!.witness!.epoch!);
  assert.notEqual(failover.survivor, failover.fenced);
  await sleep(3000);
  await load.stop();
  const writable = load.writableAfter(faultAt);
  assert.ok(writable !== undefined);
  failoverTimes.push(writable);
  await assertNoAcknowledgedWriteLost(service, load, prefix);

  // Even without its guard, the fenced member's etcd started on (a copy of) its data cannot serve: its
  // only peer removed it from the membership.
  const cluster = await current();
  const fenced = runtime.find((m) => m.name === failover.fenced)!;
  const dataDir = placement.dataDir(cluster, fenced.name);
  assert.ok(existsSync(dataDir), 'the fenced member keeps its data until the pair is whole');
  const copy = path.join(root, 'fenced-copy.etcd');
  cpSync(dataDir, copy, { recursive: true });
  const args = readFileSync(path.join(root, 'members', namespace, name, `${fenced.name}.json`), 'utf8');
  const addresses = (JSON.parse(args) as { addresses: { clientUrl: string; peerUrl: string; peerListenUrl: string } }).addresses;
  const survivorPeer = cluster.status!.members!.find((m) => m.name === failover.survivor)!.peerUrl!;
  const etcd = spawnEtcd(copy, fenced.name, addresses, `${fenced.name}=${addresses.peerUrl},${failover.survivor}=${survivorPeer}`);
  try {
    const client = new Etcd3({ hosts: [addresses.clientUrl], dialTimeout: 1000 });
    try {
      const deadline = Date.now() + 8000;
      let served = false;
      while (Date.now() < deadline && etcd.exitCode === null) {
        served = await client
          .put('/fenced-write')
          .value('x')
          .options({ deadline: Date.now() + 1000 })
          .exec()
          .then(() => true)
          .catch(() => false);
        if (served) break;
      }
      assert.equal(served, false, 'the fenced member served a write');
    } finally {
      client.close();
    }
  } finally {
    etcd.kill('SIGKILL');
  }
  await waitPair(apiserver, namespace, name);
});

function spawnEtcd(dataDir: string, member: string, a: { clientUrl: string; peerUrl: string; peerListenUrl: string }, initialCluster: string): ReturnType<typeof spawn> {
  return spawn(
    etcdBinaries('current').etcd,
    etcdMemberFlags({ name: member, ...a }, { dataDir, initialCluster, initialClusterState: 'existing' }),
    { stdio: 'ignore' },
  );
}

test('a replica that lost its Lease is refused by the witness', async () => {
  await waitPair(apiserver, namespace, name);
  // op-a goes (its members stop with it); op-b takes the Lease (term 2) and claims the witness record.
  await operator.close();
  operator = await startOperator('op-b');
  const claimed = await new HttpWitness(witness.url).read();
  const deadline = Date.now() + 60_000;
  let record = claimed.record;
  while (record?.owner !== 'op-b' && Date.now() < deadline) {
    await sleep(250);
    record = (await new HttpWitness(witness.url).read()).record;
  }
  assert.equal(record?.owner, 'op-b');
  assert.equal(record.ownerTerm, 2);
  await waitPair(apiserver, namespace, name);

  // op-a, still believing it leads (term 1), reconciles: the witness record is not its to change.
  const before = await new HttpWitness(witness.url).read();
  const stale = new EtcdClusterReconciler({
    kubeConfig: apiserver.kubeConfig,
    placement,
    events: new EventRecorder({ kubeConfig: apiserver.kubeConfig, controller: 'etcd.robustness.io/operator', instance: 'op-a' }),
    identity: () => ({ identity: 'op-a', term: 1 }),
  });
  await stale.reconcile(`${namespace}/${name}`);
  await stale.close();
  const afterStale = await new HttpWitness(witness.url).read();
  assert.equal(afterStale.version, before.version, 'the stale replica changed nothing');
  const notes = await eventReasons(apiserver, namespace, name);
  assert.ok(notes.some((e) => e.reason === 'WitnessOwnedElsewhere' && /op-b at term 2/.test(e.note)), JSON.stringify(notes.slice(-5)));
  // And a write it would make is refused by the witness itself.
  const next = { ...afterStale.record!, epoch: afterStale.record!.epoch + 1, owner: 'op-a', ownerTerm: 1, updatedAt: new Date().toISOString() };
  const refused = await new HttpWitness(witness.url).compareAndSwap(afterStale.version, next);
  assert.equal(refused.ok, false);
  assert.match(refused.ok ? '' : refused.reason, /term 1 of op-a is older than term 2 of op-b/);
});
