// Two replicas of `etcd-robustness operator` (separate processes, --runtime=local, one shared data dir)
// campaign for the same coordination.k8s.io Lease on a real kube-apiserver. Only the holder reconciles;
// when it is SIGKILLed (its local etcd member dies with it: parent-death signal) the other replica takes
// the Lease once it expired, starts the member again from its data, and the EtcdCluster is Available again
// with the same member id. A SIGTERM stops the last replica cleanly: exit 0, the Lease released.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EtcdCluster, RobustnessRunResource } from '../../src/domain/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { alive, etcdPids, Replica } from '../helpers/operator-replica.ts';
import { eventually, installCrds, kubectlJson, kubectlOk, reconcileTotal, samples, scrape } from '../helpers/operator.ts';

const namespace = 'leader-election';
const leaseName = 'etcd-robustness-operator';
const leaseDurationS = 4;
/** The Lease is free leaseDuration after the leader's last renewal (at most one retry period before the
 * kill); a candidate retries every retry period (lease/7, jittered by 20 %); the rest is slack. */
const takeoverBoundMs = 12_000;

const clusterManifest = `apiVersion: etcd.robustness.io/v1alpha1
kind: EtcdCluster
metadata:
  name: solo
  namespace: ${namespace}
spec:
  version: "3.6.16"
  replicas: 1
  agent:
    enabled: false
`;

/** A run the leader drives when it is killed, watches on: its history is cut mid-flight (invoke lines keep that free of false violations). */
const runManifest = `apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata:
  name: cut-short
  namespace: ${namespace}
spec:
  clusterRef:
    name: solo
  mode: exclusive
  duration: 5m
  traffic:
    qps:
      target: 50
`;

interface Lease {
  metadata: { resourceVersion: string };
  spec?: { holderIdentity?: string | null; leaseDurationSeconds?: number; leaseTransitions?: number; renewTime?: string; acquireTime?: string };
}

describe('two operator replicas with leader election', { timeout: 240_000 }, () => {
  let apiserver: TestApiserver;
  let dataDir: string;
  let replicas: Replica[] = [];
  let leader: Replica;
  let follower: Replica;
  let memberId: string;
  let transitionsBefore: number;

  before(async () => {
    apiserver = await TestApiserver.start();
    await installCrds(apiserver);
    await kubectlOk(apiserver, ['create', 'namespace', namespace]);
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'operator-leader-election-'));
    const options = { namespace, leaseDurationS };
    replicas = [new Replica('replica-a', apiserver.kubeconfigPath, dataDir, options), new Replica('replica-b', apiserver.kubeconfigPath, dataDir, options)];
    await Promise.all(replicas.map((r) => r.started()));
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.kill()));
    // Members die with their operator (parent-death signal); should one have survived, stop it (and fail).
    const survivors = dataDir === undefined ? [] : etcdPids(dataDir);
    for (const pid of survivors) process.kill(pid, 'SIGKILL');
    await apiserver?.close();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
    assert.deepEqual(survivors, [], 'no etcd process of the shared data dir outlives the replicas');
  });

  const readLease = (): Promise<Lease | undefined> => kubectlJson<Lease>(apiserver, ['-n', namespace, 'get', `leases.coordination.k8s.io/${leaseName}`]);
  const holder = async (): Promise<string | undefined> => (await readLease())?.spec?.holderIdentity ?? undefined;
  const getRun = (): Promise<RobustnessRunResource | undefined> => kubectlJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'cut-short']);
  const getCluster = (): Promise<EtcdCluster | undefined> => kubectlJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', 'solo']);
  const available = (c: EtcdCluster | undefined): boolean => c?.status?.conditions?.find((x) => x.type === 'Available')?.status === 'True';
  const masterStatus = async (r: Replica): Promise<number | undefined> =>
    samples(await scrape(r.metricsUrl), 'leader_election_master_status').find((s) => s.labels['name'] === leaseName)?.value;
  const describeState = async (): Promise<string> =>
    `lease holder ${await holder()}; cluster ${JSON.stringify((await getCluster())?.status ?? null)}\n${replicas.map((r) => `--- ${r.identity} (${r.running ? 'running' : 'exited'}):\n${r.logTail(15)}`).join('\n')}`;

  test('exactly one replica holds the Lease', async () => {
    const identity = await eventually('a Lease holder', 30_000, holder, describeState);
    leader = replicas.find((r) => r.identity === identity)!;
    follower = replicas.find((r) => r.identity !== identity)!;
    assert.ok(leader, `the holder ${identity} is one of the replicas`);
    const lease = (await readLease())!;
    assert.equal(lease.spec?.leaseDurationSeconds, leaseDurationS);
    transitionsBefore = lease.spec?.leaseTransitions ?? 0;

    // Over several renew periods: the holder stays, it renews, and each replica knows which one it is.
    const renewed = lease.spec?.renewTime;
    await sleep(2000);
    const later = (await readLease())!;
    assert.equal(later.spec?.holderIdentity, leader.identity, 'the holder does not change while it renews');
    assert.notEqual(later.spec?.renewTime, renewed, 'the holder renews the Lease');
    assert.equal(await masterStatus(leader), 1);
    assert.equal(await masterStatus(follower), 0);
    for (const r of replicas) {
      for (const probe of ['healthz', 'readyz']) {
        const response = await fetch(`${r.healthUrl}/${probe}`);
        assert.equal(response.status, 200, `${r.identity} /${probe}: a waiting replica is healthy and ready`);
      }
    }
  });

  test('only the leader reconciles: the EtcdCluster becomes Available', async () => {
    await kubectlOk(apiserver, ['apply', '-f', '-'], clusterManifest);
    const cluster = await eventually('EtcdCluster solo Available', 90_000, async () => {
      const c = await getCluster();
      return available(c) && c?.status?.members?.[0]?.id !== undefined ? c : undefined;
    }, describeState, 500);
    const members = cluster.status!.members!;
    assert.equal(members.length, 1);
    assert.equal(members[0]!.name, 'solo-0');
    assert.equal(members[0]!.healthy, true);
    assert.equal(members[0]!.role, 'leader');
    memberId = members[0]!.id!;
    assert.match(memberId, /^[0-9a-f]+$/);
    assert.equal(cluster.status!.observedGeneration, cluster.metadata.generation);

    const leaderReconciles = await reconcileTotal(leader.metricsUrl, 'etcdcluster');
    assert.ok(leaderReconciles.total > 0, `the leader reconciled (${leaderReconciles.total})`);
    const followerReconciles = await reconcileTotal(follower.metricsUrl, 'etcdcluster');
    assert.ok(followerReconciles.samples === 0 || followerReconciles.total === 0, `the follower never reconciled (${JSON.stringify(followerReconciles)})`);
    assert.equal(await holder(), leader.identity, 'the leadership did not move');
    // One etcd process runs the member: the leader's.
    assert.equal(etcdPids(dataDir).length, 1, `one etcd process: ${etcdPids(dataDir).join(', ')}`);
  });

  test('the leader drives a RobustnessRun against it, noting in status where it records', async () => {
    await kubectlOk(apiserver, ['apply', '-f', '-'], runManifest);
    const run = await eventually('RobustnessRun cut-short running with traffic', 60_000, async () => {
      const r = await getRun();
      return r?.status?.phase === 'Running' && (r.status.operations?.ok ?? 0) > 0 ? r : undefined;
    }, describeState, 250);
    assert.equal(run.status?.recording?.replica, leader.identity);
    assert.ok(existsSync(path.join(run.status.recording.path, 'history')), 'the history is recorded where status says');
  });

  test('SIGKILL of the leader: the other replica takes the Lease within the lease time and restarts the member from its data', async (t) => {
    const leaderEtcd = etcdPids(dataDir);
    assert.equal(leaderEtcd.length, 1);
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    assert.deepEqual(await leader.exited, { code: null, signal: 'SIGKILL' });
    // The dead leader's last renewal: nobody may take the Lease before it expired.
    const lastRenewal = Date.parse((await readLease())?.spec?.renewTime ?? '');
    assert.ok(!Number.isNaN(lastRenewal));

    // The member died with its operator (parent-death signal), not at the next leader's hands.
    await eventually(`etcd ${leaderEtcd[0]} to die with its operator`, 5000, async () => Promise.resolve(alive(leaderEtcd[0]!) ? undefined : true), undefined, 50);

    await eventually(`${follower.identity} to take the Lease`, takeoverBoundMs + 5000, async () => ((await holder()) === follower.identity ? true : undefined), describeState, 100);
    const takeoverMs = Date.now() - killedAt;
    assert.ok(takeoverMs < takeoverBoundMs, `took the Lease ${takeoverMs} ms after the kill (bound ${takeoverBoundMs} ms)`);
    const lease = (await readLease())!;
    assert.equal(lease.spec?.leaseTransitions, transitionsBefore + 1, 'one leadership transition');
    const acquiredAfterMs = Date.parse(lease.spec?.acquireTime ?? '') - lastRenewal;
    assert.ok(acquiredAfterMs >= leaseDurationS * 1000, `taken ${acquiredAfterMs} ms after the last renewal: not before the Lease expired`);

    // The status the dead leader wrote still says Available: first wait for the new leader's own
    // reconcile (counted when one completes, so it can lag the etcd restart it performs).
    await eventually('the new leader to complete a reconcile', 60_000, async () => ((await reconcileTotal(follower.metricsUrl, 'etcdcluster')).total > 0 ? true : undefined), describeState, 250);
    const cluster = await eventually('EtcdCluster solo Available again', 60_000, async () => {
      const c = await getCluster();
      return available(c) && c?.status?.members?.[0]?.healthy === true ? c : undefined;
    }, describeState, 250);
    const availableMs = Date.now() - killedAt;
    assert.equal(cluster.status!.members!.length, 1);
    assert.equal(cluster.status!.members![0]!.name, 'solo-0');
    assert.equal(cluster.status!.members![0]!.id, memberId, 'the same member: its data was kept');
    const restarted = etcdPids(dataDir);
    assert.equal(restarted.length, 1);
    assert.notEqual(restarted[0], leaderEtcd[0], 'a new etcd process, started by the new leader');
    assert.equal(await masterStatus(follower), 1);
    t.diagnostic(`lease taken over ${takeoverMs} ms after the kill (${acquiredAfterMs} ms after the last renewal); the cluster Available again ${availableMs} ms after the kill`);
  });

  test('the run the killed leader drove ends Aborted (OperatorRestarted), with a report of what it recorded, linked from its status', async (t) => {
    const run = await eventually('RobustnessRun cut-short ended', 60_000, async () => {
      const r = await getRun();
      return r?.status?.phase !== undefined && r.status.phase !== 'Running' && r.status.phase !== 'Pending' ? r : undefined;
    }, async () => JSON.stringify((await getRun())?.status ?? null), 250);
    const status = run.status!;
    assert.equal(status.phase, 'Aborted', JSON.stringify(status));
    const succeeded = status.conditions?.find((c) => c.type === 'Succeeded');
    assert.equal(succeeded?.reason, 'OperatorRestarted', JSON.stringify(status.conditions));
    assert.match(succeeded?.message ?? '', new RegExp(`^the operator replica ${leader.identity} running it stopped during the run`));
    assert.equal(status.conditions?.find((c) => c.type === 'Running')?.reason, 'Interrupted');
    t.diagnostic(`Succeeded: ${succeeded?.message ?? ''}`);
    assert.equal(status.recording, undefined);
    // The same report as a finished run's: stored, and linked from status and the run's record.
    assert.equal(status.report?.kind, 'configMap', JSON.stringify(status));
    assert.deepEqual(status.lastRun?.report, status.report);
    const cm = JSON.parse(await kubectlOk(apiserver, ['-n', namespace, 'get', 'configmap', status.report.name, '-o', 'json'])) as { binaryData: Record<string, string> };
    const verdict = JSON.parse(gunzipSync(Buffer.from(cm.binaryData['verdict.json.gz']!, 'base64')).toString('utf8')) as { verdict: string; reason?: string; outcome: { phase: string; reason: string }; operations: { recorded: number } };
    assert.deepEqual([verdict.outcome.phase, verdict.outcome.reason], ['Aborted', 'OperatorRestarted']);
    // Cut by SIGKILL with writes in flight and watches on: what was recorded checks without a false violation.
    assert.notEqual(verdict.verdict, 'violation', verdict.reason);
    assert.ok(verdict.operations.recorded > 0, 'the recorded history was read');
    assert.ok(Object.keys(cm.binaryData).some((k) => /^history-\d+\.jsonl\.gz$/.test(k)), `the history is stored: ${Object.keys(cm.binaryData).join(', ')}`);
    const events = JSON.parse(await kubectlOk(apiserver, ['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json'])) as { items: { reason: string; note: string; regarding: { name: string } }[] };
    assert.ok(events.items.some((e) => e.regarding.name === 'cut-short' && e.reason === 'RunAborted' && e.note.includes('OperatorRestarted')), 'a RunAborted Event says why');
    await kubectlOk(apiserver, ['-n', namespace, 'delete', 'robustnessrun', 'cut-short', '--wait=true', '--timeout=60s']);
  });

  test('SIGTERM of the last replica: exit 0, the Lease released, no member left running', async () => {
    follower.child.kill('SIGTERM');
    const exit = await Promise.race([follower.exited, sleep(30_000, 'timeout' as const, { ref: false })]);
    assert.notEqual(exit, 'timeout', `${follower.identity} did not exit within 30 s of SIGTERM:\n${follower.logTail()}`);
    assert.deepEqual(exit, { code: 0, signal: null }, follower.logTail());
    const lease = (await readLease())!;
    assert.equal(lease.spec?.holderIdentity ?? '', '', 'the Lease is released on a clean stop');
    assert.deepEqual(etcdPids(dataDir), [], 'the members stopped with the operator');
    assert.ok(/released the lease/.test(follower.logTail(100)), 'the log says so');
  });
});
