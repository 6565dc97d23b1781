// The operator dies in the middle of a two-node-plus-witness failover, and another replica finishes it.
//
// Two `etcd-robustness operator` processes (--runtime=local, one shared --data-dir, leader election with a
// 4 s Lease) on a real kube-apiserver run a twoNodeWitness EtcdCluster whose witness is a Lease. Under a
// write load through the cluster's service address, the etcd leader member is crashed with its agent's
// crash fault. As soon as the witness record says `failingOver` (the leading replica won the failover), the
// leading replica is SIGKILLed; its members die with it (parent-death signal), and so does the service
// proxy the load goes through. The other replica takes the Lease, claims the record, fences the crashed
// member (it never runs again), recovers the survivor alone and makes the pair whole with a new member.
// Every acknowledged write survives the failover and the operator crash.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { witnessRecordAnnotation } from '../../src/controller/witness/store-kube.ts';
import { parseWitnessRecord, type EtcdCluster, type WitnessRecord } from '../../src/domain/index.ts';
import { AgentClient } from '../../src/faults/agent-client.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { etcdPids, etcdPidsOn, Replica } from '../helpers/operator-replica.ts';
import { eventually, installCrds, kubectlJson, kubectlOk } from '../helpers/operator.ts';
import { assertNoAcknowledgedWriteLost, getCluster, pairManifest, waitPair, WriteLoad } from '../helpers/two-node.ts';

const namespace = 'pair-operator-crash';
const name = 'pair';
const witnessLease = `${name}-witness`;
const electionLease = 'etcd-robustness-operator';
const leaseDurationS = 4;
const prefix = '/operator-crash/';

interface Lease {
  metadata: { annotations?: Record<string, string> };
  spec?: { holderIdentity?: string | null; leaseTransitions?: number };
}

/** The standby's log lines about the cluster and its leadership from `since` on, as `+ms message`. */
function steps(replica: Replica, since: number): string[] {
  const out: string[] = [];
  for (const line of replica.logLines()) {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof entry !== 'object' || entry === null) continue;
    const { msg, ts } = entry as { msg?: unknown; ts?: unknown };
    if (typeof msg !== 'string' || typeof ts !== 'string') continue;
    const at = Date.parse(ts);
    if (at >= since && /EtcdCluster|local placement|lead/i.test(msg)) out.push(`  +${at - since} ms ${msg}`);
  }
  return out;
}

interface ClusterEvent {
  reason: string;
  note: string;
  reportingInstance?: string;
  regarding: { name: string };
}

describe('twoNodeWitness: the leading operator replica is killed in the middle of a failover', { timeout: 300_000 }, () => {
  let apiserver: TestApiserver;
  let dataDir: string;
  let leases: CoordinationV1Api;
  let replicas: Replica[] = [];
  let load: WriteLoad | undefined;
  let fenceWatch: NodeJS.Timeout | undefined;

  before(async () => {
    apiserver = await TestApiserver.start();
    await installCrds(apiserver);
    await kubectlOk(apiserver, ['create', 'namespace', namespace]);
    leases = apiserver.kubeConfig.makeApiClient(CoordinationV1Api);
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'two-node-operator-crash-'));
    const options = { namespace, leaseDurationS, keepLines: 2000 };
    replicas = [new Replica('replica-a', apiserver.kubeconfigPath, dataDir, options), new Replica('replica-b', apiserver.kubeconfigPath, dataDir, options)];
    await Promise.all(replicas.map((r) => r.started()));
  });

  after(async () => {
    if (fenceWatch !== undefined) clearInterval(fenceWatch);
    await load?.stop().catch(() => undefined);
    await Promise.all(replicas.map((r) => r.kill()));
    // Members die with their operator (parent-death signal, a few ms after it); should one have survived,
    // stop it (and fail).
    let survivors = dataDir === undefined ? [] : etcdPids(dataDir);
    for (let i = 0; i < 20 && survivors.length > 0; i++) {
      await sleep(100);
      survivors = etcdPids(dataDir);
    }
    for (const pid of survivors) process.kill(pid, 'SIGKILL');
    await apiserver?.close();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
    assert.deepEqual(survivors, [], 'no etcd process of the shared data dir outlives the replicas');
  });

  const clusterDir = (): string => path.join(dataDir, namespace, name);
  const holder = async (): Promise<string | undefined> =>
    (await kubectlJson<Lease>(apiserver, ['-n', namespace, 'get', `leases.coordination.k8s.io/${electionLease}`]))?.spec?.holderIdentity ?? undefined;
  /** The witness record, read with one GET of the Lease (fast enough to poll every 50 ms). */
  const readRecord = async (): Promise<WitnessRecord | undefined> => {
    const lease = await leases.readNamespacedLease({ namespace, name: witnessLease });
    const text = lease.metadata?.annotations?.[witnessRecordAnnotation];
    return text === undefined ? undefined : parseWitnessRecord('lease', JSON.parse(text));
  };
  /** The witness record the way a user reads it. */
  const kubectlRecord = async (): Promise<WitnessRecord> => {
    const lease = await kubectlJson<Lease>(apiserver, ['-n', namespace, 'get', 'lease', witnessLease]);
    const text = lease?.metadata.annotations?.[witnessRecordAnnotation];
    assert.ok(text, `the Lease ${witnessLease} carries the record`);
    return parseWitnessRecord('lease', JSON.parse(text));
  };
  const events = async (): Promise<ClusterEvent[]> => {
    const result = await apiserver.kubectl(['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json']);
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as { items: ClusterEvent[] }).items.filter((e) => e.regarding.name === name);
  };
  const servicePort = (): number => (JSON.parse(readFileSync(path.join(clusterDir(), 'service.json'), 'utf8')) as { port: number }).port;
  const describeState = async (): Promise<string> => {
    const record = await readRecord().catch((error: unknown) => `(${String(error)})`);
    const status = (await getCluster(apiserver, namespace, name).catch(() => undefined))?.status ?? null;
    return `holder ${await holder()}; record ${JSON.stringify(record)}; status ${JSON.stringify(status)}\n${replicas.map((r) => `--- ${r.identity} (${r.running ? 'running' : 'exited'}):\n${r.logTail(30)}`).join('\n')}`;
  };

  let leading: Replica;
  let standby: Replica;
  let paired: EtcdCluster;

  test('the pair forms under the leading replica', async () => {
    await kubectlOk(apiserver, ['apply', '-f', '-'], pairManifest(namespace, name, { kind: 'lease' }));
    paired = await waitPair(apiserver, namespace, name, 120_000);
    const identity = await eventually('a leader-election Lease holder', 10_000, holder, describeState);
    leading = replicas.find((r) => r.identity === identity)!;
    standby = replicas.find((r) => r.identity !== identity)!;
    assert.ok(leading, `the holder ${identity} is one of the replicas`);
    const record = await kubectlRecord();
    assert.equal(record.phase, 'paired');
    assert.equal(record.owner, leading.identity);
    assert.deepEqual([...record.members].sort(), paired.status!.members!.map((m) => m.name).sort());
  });

  test('SIGKILL of the leading replica while failingOver: the other replica finishes the failover, no acknowledged write is lost', async (t) => {
    const members = paired.status!.members!;
    const crashed = members.find((m) => m.role === 'leader')!.name;
    const survivor = members.find((m) => m.role === 'follower')!.name;
    const dir = clusterDir();
    const agentUrl = (JSON.parse(readFileSync(path.join(dir, `${crashed}.json`), 'utf8')) as { addresses: { agentUrl?: string } }).addresses.agentUrl;
    assert.ok(agentUrl, `${crashed} has an agent`);
    const token = readFileSync(path.join(dir, 'agent-token'), 'utf8').trim();
    const crashedData = path.join(dir, `${crashed}.etcd`);
    const service = `http://127.0.0.1:${servicePort()}`;
    const pairedRecord = await readRecord();
    assert.ok(pairedRecord);

    load = new WriteLoad(service, prefix);
    await sleep(1500);
    assert.ok(load.acknowledged.length > 0, 'the pair takes writes before the fault');

    // The crash: etcd SIGKILLed and held down by the agent; the pair has no quorum.
    await new AgentClient(agentUrl, token).inject({ type: 'crash', ttlMs: 120_000 });
    const faultAt = Date.now();
    await eventually(`${crashed}'s etcd to die`, 5000, async () => Promise.resolve(etcdPidsOn(crashedData).length === 0 ? true : undefined), undefined, 20);
    // From now on, no etcd may ever run on the crashed member's data: sampled until the end of the test.
    const fenceViolations: string[] = [];
    fenceWatch = setInterval(() => {
      const pids = etcdPidsOn(crashedData);
      if (pids.length > 0) fenceViolations.push(`${new Date().toISOString()}: etcd ${pids.join(',')} runs on ${crashedData}`);
    }, 100);

    // The leading replica wins the failover in the witness (after the 3 s grace)...
    const failingOver = await eventually(
      'the witness record to say failingOver',
      20_000,
      async () => {
        const r = await readRecord();
        return r?.phase === 'failingOver' ? r : undefined;
      },
      describeState,
      50,
    );
    // ...and dies right then, with its members and its service proxy.
    leading.child.kill('SIGKILL');
    const killedAt = Date.now();
    assert.deepEqual(await leading.exited, { code: null, signal: 'SIGKILL' });
    assert.equal(failingOver.owner, leading.identity);
    assert.equal(failingOver.survivor, survivor);
    assert.equal(failingOver.fencedMember, crashed);
    assert.equal(failingOver.epoch, pairedRecord.epoch + 1);
    // How far the first replica got: the marks it leaves on disk.
    const survivorRecord = JSON.parse(readFileSync(path.join(dir, `${survivor}.json`), 'utf8')) as { recoveredEpoch?: number };
    const progress = [
      `fence mark ${existsSync(path.join(dir, `${crashed}.fenced`)) ? 'written' : 'absent'}`,
      `survivor recoveredEpoch ${survivorRecord.recoveredEpoch ?? 'unset'}`,
      `recover mark ${existsSync(path.join(dir, `${survivor}.recover`)) ? 'present' : 'absent'}`,
    ].join(', ');
    const atKill = await readRecord();
    t.diagnostic(`killed ${leading.identity} ${killedAt - faultAt} ms after the crash fault, at witness epoch ${failingOver.epoch} (failingOver); at the kill: ${progress}; the record was then at epoch ${atKill?.epoch} (${atKill?.phase})`);
    await eventually('the members to die with their operator', 5000, async () => Promise.resolve(etcdPids(dataDir).length === 0 ? true : undefined), describeState, 50);

    // The standby takes the Lease once it expired, claims the record and finishes the failover.
    const phases: string[] = [`${failingOver.epoch}:${failingOver.phase}:${failingOver.owner}`];
    const whole = await eventually(
      'the standby replica to make the pair whole in the witness',
      120_000,
      async () => {
        const r = await readRecord();
        if (r && phases.at(-1) !== `${r.epoch}:${r.phase}:${r.owner}`) phases.push(`${r.epoch}:${r.phase}:${r.owner}`);
        return r?.phase === 'paired' && r.owner === standby.identity && !r.members.includes(crashed) && r.members.length === 2 ? r : undefined;
      },
      describeState,
      50,
    );
    assert.equal(await holder(), standby.identity, 'the standby holds the leader-election Lease');
    // The status written by the standby (not the one the dead replica left), once the pair is whole.
    await eventually('the status of the standby replica', 60_000, async () => {
      const c = await getCluster(apiserver, namespace, name);
      return (c?.status?.witness?.epoch ?? 0) >= whole.epoch ? c : undefined;
    }, describeState, 100);
    const cluster = await waitPair(apiserver, namespace, name, 120_000);
    const pairAt = Date.now();
    const names = cluster.status!.members!.map((m) => m.name).sort();
    assert.ok(names.includes(survivor) && !names.includes(crashed), `the pair is ${names.join(', ')}: the survivor ${survivor} and a new member`);
    assert.deepEqual(names, [...whole.members].sort());

    // The record: fenced for good, owned by the standby at a newer term.
    const record = await kubectlRecord();
    assert.equal(record.phase, 'paired');
    assert.ok(record.fenced.includes(crashed), `fenced ${record.fenced.join(', ')} includes ${crashed}`);
    assert.equal(record.owner, standby.identity);
    assert.ok(record.ownerTerm > failingOver.ownerTerm, `owner term ${record.ownerTerm} > ${failingOver.ownerTerm}`);
    assert.ok(!record.members.includes(crashed));
    assert.deepEqual(cluster.status!.witness!.fenced, record.fenced);

    // The fenced member never ran again (and is not running now).
    clearInterval(fenceWatch);
    fenceWatch = undefined;
    assert.deepEqual(etcdPidsOn(crashedData), [], `no etcd runs on ${crashedData}`);
    assert.deepEqual(fenceViolations, [], 'the fenced member never started again');

    // Every acknowledged write survived the failover and the operator crash.
    await sleep(1000);
    await load.stop();
    const writableMs = load.writableAfter(faultAt);
    const endpoint = `http://127.0.0.1:${servicePort()}`;
    const { acknowledged } = await assertNoAcknowledgedWriteLost(endpoint, load, prefix);
    const failed = load.attempts.length - acknowledged;
    load = undefined;
    assert.ok(writableMs !== undefined, 'the cluster took writes again');
    assert.equal(endpoint, service, 'the standby serves the cluster on the same service address');

    // Events: the dead replica started the failover; the standby claimed it and completed it.
    const all = await events();
    const by = (reason: string): string[] => [...new Set(all.filter((e) => e.reason === reason).map((e) => e.reportingInstance ?? '?'))];
    const started = by('FailoverStarted');
    const claimed = by('WitnessClaimed');
    const completed = by('FailoverCompleted');
    const announced = by('ReplacementAnnounced');
    assert.ok(claimed.includes(standby.identity), `WitnessClaimed from ${standby.identity}: ${claimed.join(', ')}`);
    assert.ok(announced.includes(standby.identity), `ReplacementAnnounced (single → paired) from ${standby.identity}: ${announced.join(', ')}`);
    // MemberFenced and SurvivorRecovering are written after their step: a replica killed in between
    // leaves the step done without its Event, and the standby does not do it again. The marks on disk
    // are what is guaranteed: the fence mark stays after the fenced runner is deleted, and the survivor
    // was recovered for this failover.
    assert.ok(existsSync(path.join(dir, `${crashed}.fenced`)), `the fence mark of ${crashed} stays`);
    const recovered = (JSON.parse(readFileSync(path.join(dir, `${survivor}.json`), 'utf8')) as { recoveredEpoch?: number }).recoveredEpoch;
    assert.equal(recovered, failingOver.failoverEpoch, `${survivor} was recovered for the failover of epoch ${failingOver.failoverEpoch}`);
    const lastFailover = cluster.status!.witness!.lastFailover;
    if (lastFailover !== undefined) {
      // The dead replica's status patch after the failover write got through: the standby finishes it.
      assert.equal(lastFailover.epoch, failingOver.epoch);
      assert.deepEqual([lastFailover.survivor, lastFailover.fenced], [survivor, crashed]);
      assert.ok(lastFailover.writableAt !== undefined, `lastFailover.writableAt: ${JSON.stringify(lastFailover)}`);
      assert.ok(completed.includes(standby.identity), `FailoverCompleted from ${standby.identity}: ${completed.join(', ')}`);
    } else {
      // The dead replica never wrote its status after the failover: the standby knows no failover start
      // and so reports no FailoverCompleted; the record still shows it went single → paired (above).
      assert.ok(!completed.includes(standby.identity), `no FailoverCompleted from ${standby.identity} without a known failover start: ${completed.join(', ')}`);
    }

    const acquiredAt = Date.parse(
      (await kubectlJson<{ spec?: { acquireTime?: string } }>(apiserver, ['-n', namespace, 'get', `leases.coordination.k8s.io/${electionLease}`]))?.spec?.acquireTime ?? '',
    );
    t.diagnostic(`witness records seen after the kill: ${phases.join(' → ')} → ${record.epoch}:${record.phase}:${record.owner}`);
    t.diagnostic(
      `FailoverStarted from [${started.join(', ')}], MemberFenced from [${by('MemberFenced').join(', ')}], SurvivorRecovering from [${by('SurvivorRecovering').join(', ')}], WitnessClaimed from [${claimed.join(', ')}], FailoverCompleted from [${completed.join(', ')}]; status.witness.lastFailover ${JSON.stringify(lastFailover ?? null)}`,
    );
    t.diagnostic(
      `crash fault → writable again ${writableMs} ms (the kill ${killedAt - faultAt} ms after the fault, the Lease taken ${acquiredAt - killedAt} ms after the kill); pair whole ${pairAt - faultAt} ms after the fault; ${acknowledged} writes acknowledged, ${failed} failed`,
    );
    t.diagnostic(`${standby.identity} after the kill:\n${steps(standby, killedAt).join('\n')}`);
  });
});
