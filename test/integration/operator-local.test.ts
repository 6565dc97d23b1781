// End to end with --runtime=local: the operator against a real kube-apiserver, members as real etcd
// processes. kubectl applies the samples; the EtcdCluster becomes Available with 3 healthy members,
// scales to 5 and back to 3, replaces a member whose process was killed and whose data was wiped; a
// RobustnessRun with faults passes with status, Events and metrics; deleting everything stops every
// member and leaves no fault in place.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Operator } from '../../src/controller/operator.ts';
import { LocalPlacement } from '../../src/controller/placement/local.ts';
import type { EtcdCluster, RobustnessRunResource } from '../../src/domain/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, installCrds, kubectlJson, kubectlOk, startLocalOperator } from '../helpers/operator.ts';

const namespace = 'e2e';
let apiserver: TestApiserver;
let operator: Operator;
let placement: LocalPlacement;
let root: string;

const kubectl = (args: string[], stdin?: string): Promise<string> => kubectlOk(apiserver, args, stdin);
const getJson = <T>(kind: string, name: string): Promise<T | undefined> => kubectlJson<T>(apiserver, ['-n', namespace, 'get', kind, name]);

const clusterState = async (): Promise<string> => JSON.stringify((await getJson<EtcdCluster>('etcdcluster', 'demo'))?.status ?? null);

/** The cluster once it is Available, Running, with `n` healthy voting members and no learner. */
async function waitMembers(n: number, timeoutMs = 90_000): Promise<EtcdCluster> {
  return eventually(
    `EtcdCluster demo Running with ${n} healthy voting members`,
    timeoutMs,
    async () => {
      const c = await getJson<EtcdCluster>('etcdcluster', 'demo');
      const s = c?.status;
      const members = s?.members ?? [];
      const ok =
        s?.phase === 'Running' &&
        s.readyMembers === n &&
        members.length === n &&
        members.every((m) => m.healthy && (m.role === 'leader' || m.role === 'follower')) &&
        s.conditions?.find((x) => x.type === 'Available')?.status === 'True' &&
        s.conditions.find((x) => x.type === 'Progressing')?.status === 'False';
      return ok ? c : undefined;
    },
    clusterState,
  );
}

before(async () => {
  apiserver = await TestApiserver.start();
  await installCrds(apiserver);
  await kubectl(['create', 'namespace', namespace]);
  root = mkdtempSync(path.join(os.tmpdir(), 'operator-local-'));
  placement = new LocalPlacement({ root });
  operator = await startLocalOperator(apiserver, placement, namespace, 'e2e-operator');
});

after(async () => {
  await operator.close();
  await apiserver.close();
  rmSync(root, { recursive: true, force: true });
});

test('the sample EtcdCluster becomes Available with 3 healthy members, status from etcd', async () => {
  await kubectl(['-n', namespace, 'apply', '-f', 'config/samples/etcdcluster.yaml']);
  const cluster = await waitMembers(3);
  const status = cluster.status!;
  assert.deepEqual(cluster.metadata.finalizers, ['etcd.robustness.io/cluster-cleanup']);
  assert.equal(status.observedGeneration, cluster.metadata.generation);
  assert.equal(status.members!.filter((m) => m.role === 'leader').length, 1);
  assert.equal(status.leader, status.members!.find((m) => m.role === 'leader')!.name);
  assert.deepEqual(status.members!.map((m) => m.name), ['demo-0', 'demo-1', 'demo-2']);
  for (const m of status.members!) {
    assert.match(m.id ?? '', /^[0-9a-f]+$/);
    assert.equal(m.version, '3.6.16');
    assert.ok((m.revision ?? 0) >= 1);
  }
  assert.equal(status.endpoints!.length, 3);
  assert.match(status.clusterId ?? '', /^[0-9a-f]+$/);
  // The members are real: every endpoint answers etcd's /health.
  for (const endpoint of status.endpoints!) {
    const health = (await (await fetch(`${endpoint}/health`)).json()) as { health: string };
    assert.equal(health.health, 'true');
  }
  const events = await kubectl(['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json']);
  const reasons = (JSON.parse(events) as { items: { reason: string; regarding: { name: string } }[] }).items.filter((e) => e.regarding.name === 'demo').map((e) => e.reason);
  assert.ok(reasons.includes('ClusterBootstrapped'), reasons.join(','));
  assert.ok(reasons.includes('MemberAdded'), reasons.join(','));
  assert.ok(reasons.includes('MemberPromoted'), reasons.join(','));
});

test('scales to 5 and back to 3, one member at a time', async () => {
  await kubectl(['-n', namespace, 'patch', 'etcdcluster', 'demo', '--type=merge', '-p', '{"spec":{"replicas":5}}']);
  const five = await waitMembers(5, 120_000);
  assert.equal(five.status!.observedGeneration, five.metadata.generation);
  await kubectl(['-n', namespace, 'patch', 'etcdcluster', 'demo', '--type=merge', '-p', '{"spec":{"replicas":3}}']);
  const three = await waitMembers(3, 120_000);
  // Members beyond the spec were removed from etcd and then stopped: only 3 members run.
  assert.equal(placement.runtimeMembers(three).length, 3);
  assert.ok(three.status!.members!.some((m) => m.role === 'leader'));
});

test('a member whose process was killed and whose data was wiped is replaced by a new member', async () => {
  const before = (await waitMembers(3)).status!;
  const victim = before.members!.find((m) => m.role === 'follower')!;
  const cluster = (await getJson<EtcdCluster>('etcdcluster', 'demo'))!;
  const proc = placement.memberProcess(cluster, victim.name);
  assert.ok(proc?.pid !== undefined, `member ${victim.name} runs`);
  rmSync(placement.dataDir(cluster, victim.name), { recursive: true, force: true });
  process.kill(proc.pid, 'SIGKILL');
  const after = await eventually(
    `${victim.name} replaced`,
    120_000,
    async () => {
      const c = await waitMembers(3, 120_000);
      return c.status!.members!.some((m) => m.name === victim.name) ? undefined : c;
    },
    clusterState,
  );
  const names = after.status!.members!.map((m) => m.name);
  assert.ok(!names.includes(victim.name));
  assert.ok(!after.status!.members!.some((m) => m.id === victim.id), 'the replacement has a new member id');
  const events = JSON.parse(await kubectl(['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json'])) as { items: { reason: string; note: string }[] };
  assert.ok(events.items.some((e) => e.reason === 'MemberReplaced' && e.note.includes(victim.name)), 'a MemberReplaced event names the member');
});

test('the sample RobustnessRun passes with faults, status, Events, metrics and a stored report', async () => {
  const sample = readFileSync('config/samples/robustnessrun-against-cluster.yaml', 'utf8').replace(/duration: 60s/, 'duration: 20s');
  assert.match(sample, /duration: 20s/);
  await kubectl(['-n', namespace, 'apply', '-f', '-'], sample);
  const done = await eventually(
    'RobustnessRun demo-faults finished',
    240_000,
    async () => {
      const r = await getJson<RobustnessRunResource>('robustnessrun', 'demo-faults');
      const phase = r?.status?.phase;
      return phase !== undefined && phase !== 'Pending' && phase !== 'Running' ? r : undefined;
    },
    async () => JSON.stringify((await getJson<RobustnessRunResource>('robustnessrun', 'demo-faults'))?.status ?? null),
  );
  const status = done.status!;
  assert.equal(status.phase, 'Passed', JSON.stringify(status));
  assert.equal(status.verdict, 'linearizable');
  assert.equal(status.runNumber, 1);
  assert.ok(status.operations!.ok > 100, `operations ${JSON.stringify(status.operations)}`);
  assert.ok(status.faults!.injected >= 1, `faults ${JSON.stringify(status.faults)}`);
  assert.equal(status.faults!.active, 0);
  assert.deepEqual(status.violations, []);
  assert.ok(status.startTime !== undefined && status.endTime !== undefined && status.endTime > status.startTime);
  assert.equal(status.lastRun?.phase, 'Passed');
  assert.equal(status.history?.length, 1);
  assert.equal(status.report?.kind, 'configMap');
  assert.equal(status.conditions?.find((c) => c.type === 'Succeeded')?.status, 'True');
  assert.equal(status.conditions?.find((c) => c.type === 'Running')?.status, 'False');
  const cm = JSON.parse(await kubectl(['-n', namespace, 'get', 'configmap', status.report.name, '-o', 'json'])) as { binaryData?: Record<string, string> };
  assert.ok(cm.binaryData?.['verdict.json.gz'] !== undefined, 'the stored report holds the verdict');

  const events = JSON.parse(await kubectl(['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json'])) as { items: { reason: string; regarding: { name: string; kind: string } }[] };
  const reasons = new Set(events.items.filter((e) => e.regarding.kind === 'RobustnessRun' && e.regarding.name === 'demo-faults').map((e) => e.reason));
  for (const reason of ['RunStarted', 'FaultInjected', 'FaultHealed', 'RunPassed']) assert.ok(reasons.has(reason), `${reason} in ${[...reasons].join(',')}`);

  const metrics = await (await fetch(operator.metricsUrl)).text();
  assert.match(metrics, /etcd_robustness_operations_total\{[^}]*run="e2e\/demo-faults"[^}]*cluster="e2e\/demo"/);
  assert.match(metrics, /etcd_robustness_fault_injections_total\{/);
  assert.match(metrics, /controller_runtime_reconcile_total\{controller="etcdcluster",result="[a-z_]+"\} [1-9]/);
  assert.match(metrics, /workqueue_depth\{name="robustnessrun"\}/);
  // The cluster came through the faults healthy: repairs resumed, every member serves.
  await waitMembers(3, 120_000);
});

test('a RobustnessRun whose fault names a member the cluster does not have is refused before any traffic, naming the members', async () => {
  await kubectl(['-n', namespace, 'apply', '-f', '-'], `apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata:
  name: bad-member
spec:
  clusterRef:
    name: demo
  mode: exclusive
  duration: 10s
  faults:
    choices:
      - fault: kill
        target: member
        member: etcd-99
`);
  const refused = await eventually(
    'RobustnessRun bad-member refused',
    60_000,
    async () => {
      const r = await getJson<RobustnessRunResource>('robustnessrun', 'bad-member');
      return r?.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'UnknownMember') ? r : undefined;
    },
    async () => JSON.stringify((await getJson<RobustnessRunResource>('robustnessrun', 'bad-member'))?.status ?? null),
  );
  const ready = refused.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal(ready.status, 'False');
  // The members as they are now (a replaced member has a new name).
  const names = placement.runtimeMembers((await getJson<EtcdCluster>('etcdcluster', 'demo'))!).map((m) => m.name);
  assert.equal(names.length, 3);
  assert.equal(ready.message, `spec.faults.choices[0].member: kill targets member "etcd-99", which this cluster does not have (its members: ${names.join(', ')})`);
  assert.equal(refused.status?.phase, 'Pending');
  assert.equal(refused.status?.runNumber, undefined, 'no run started');
  const events = JSON.parse(await kubectl(['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json'])) as { items: { reason: string; regarding: { name: string } }[] };
  const reasons = events.items.filter((e) => e.regarding.name === 'bad-member').map((e) => e.reason);
  assert.ok(reasons.includes('UnknownMember') && !reasons.includes('RunStarted'), reasons.join(','));
  await kubectl(['-n', namespace, 'delete', 'robustnessrun', 'bad-member', '--wait=true', '--timeout=60s']);
});

/** A run that is still going when its cluster is deleted (faults every few seconds). */
const doomedRun = `apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata:
  name: doomed
spec:
  clusterRef:
    name: demo
  mode: exclusive
  duration: 5m
  traffic:
    qps:
      target: 100
  faults:
    interval: {min: 1s, max: 2s}
    choices:
      - fault: pause
`;

interface EventItem {
  reason: string;
  note: string;
  eventTime?: string;
  metadata: { creationTimestamp: string };
  regarding: { name: string; kind: string };
}

test('deleting the cluster mid-run stops the run first (Aborted: TargetDeleted, faults healed, report stored), then its members', async () => {
  await kubectl(['-n', namespace, 'delete', 'robustnessrun', 'demo-faults', '--wait=true', '--timeout=60s']);
  const cluster = (await getJson<EtcdCluster>('etcdcluster', 'demo'))!;
  const members = placement.runtimeMembers(cluster);
  assert.equal(members.length, 3);
  const endpoints = [...members.map((m) => m.endpoint), ...members.flatMap((m) => (m.agentUrl === undefined ? [] : [m.agentUrl]))];
  assert.equal(endpoints.length, 6, 'three members and their fault agents');

  await kubectl(['-n', namespace, 'apply', '-f', '-'], doomedRun);
  const running = async (): Promise<string> => JSON.stringify((await getJson<RobustnessRunResource>('robustnessrun', 'doomed'))?.status ?? null);
  await eventually(
    'RobustnessRun doomed running with traffic and a fault injected',
    120_000,
    async () => {
      const s = (await getJson<RobustnessRunResource>('robustnessrun', 'doomed'))?.status;
      return s?.phase === 'Running' && (s.operations?.ok ?? 0) > 0 && (s.faults?.injected ?? 0) > 0 ? true : undefined;
    },
    running,
  );
  await kubectl(['-n', namespace, 'delete', 'etcdcluster', 'demo', '--wait=true', '--timeout=120s']);
  assert.equal(await getJson('etcdcluster', 'demo'), undefined);

  // The run did not carry on against nothing: it stopped, healed, checked what it recorded and said why.
  const run = (await getJson<RobustnessRunResource>('robustnessrun', 'doomed'))!;
  const status = run.status!;
  assert.equal(status.phase, 'Aborted', JSON.stringify(status));
  const succeeded = status.conditions?.find((c) => c.type === 'Succeeded');
  assert.equal(succeeded?.status, 'False');
  assert.equal(succeeded?.reason, 'TargetDeleted');
  assert.match(succeeded?.message ?? '', /^EtcdCluster e2e\/demo was deleted during the run/);
  assert.equal(status.lastRun?.phase, 'Aborted');
  assert.equal(status.recording, undefined, 'the recording note goes when the run ends');
  assert.equal(status.report?.kind, 'configMap', 'the aborted run has a report like a finished one');
  const cm = JSON.parse(await kubectl(['-n', namespace, 'get', 'configmap', status.report.name, '-o', 'json'])) as { binaryData: Record<string, string> };
  const verdict = JSON.parse(gunzipSync(Buffer.from(cm.binaryData['verdict.json.gz']!, 'base64')).toString('utf8')) as {
    outcome: { phase: string; reason: string };
    stoppedEarly?: string;
    faults: { injected: number; events: { id: number; phase: string }[] };
  };
  assert.deepEqual([verdict.outcome.phase, verdict.outcome.reason], ['Aborted', 'TargetDeleted']);
  assert.equal(verdict.stoppedEarly, 'EtcdCluster e2e/demo was deleted during the run');
  assert.ok(verdict.faults.injected >= 1);
  // Every fault injected was healed (or said it failed) before the run ended.
  for (const inject of verdict.faults.events.filter((e) => e.phase === 'inject')) {
    assert.ok(verdict.faults.events.some((e) => e.id === inject.id && (e.phase === 'heal' || e.phase === 'failed')), `fault ${inject.id} healed: ${JSON.stringify(verdict.faults.events)}`);
  }
  // ...and only then were the members removed: the run's end Event comes before the cluster's deletion.
  const events = (JSON.parse(await kubectl(['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json'])) as { items: EventItem[] }).items;
  const at = (e: EventItem | undefined): number => Date.parse(e?.eventTime ?? e?.metadata.creationTimestamp ?? '');
  const aborted = events.find((e) => e.regarding.kind === 'RobustnessRun' && e.regarding.name === 'doomed' && e.reason === 'RunAborted');
  const deleted = events.find((e) => e.regarding.kind === 'EtcdCluster' && e.regarding.name === 'demo' && e.reason === 'ClusterDeleted');
  assert.match(aborted?.note ?? '', /TargetDeleted: EtcdCluster e2e\/demo was deleted/);
  assert.ok(!events.some((e) => e.regarding.name === 'doomed' && e.reason === 'RunPassed'), 'no RunPassed Event');
  assert.ok(at(aborted) <= at(deleted), `the run ended (${aborted?.eventTime}) before the members were removed (${deleted?.eventTime})`);
  assert.ok(Date.parse(status.endTime!) <= at(deleted), `the run's end ${status.endTime} is before the cluster's deletion ${deleted?.eventTime}`);
  await kubectl(['-n', namespace, 'delete', 'robustnessrun', 'doomed', '--wait=true', '--timeout=60s']);
  assert.equal(placement.runtimeMembers(cluster).length, 0);
  assert.ok(!existsSync(path.join(root, namespace, 'demo')), 'the cluster folder is deleted');
  for (const endpoint of endpoints) {
    await assert.rejects(fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) }), `nothing answers at ${endpoint}`);
  }
});
