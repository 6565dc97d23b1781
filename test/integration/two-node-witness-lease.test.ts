// The two-node-plus-witness failover end to end with the Kubernetes Lease witness: the operator
// (--runtime=local) keeps the witness record in a coordination.k8s.io Lease of a real kube-apiserver, in
// a namespace of its own. The leader crashes under write load; the follower serves alone, no
// acknowledged write is lost, the Lease holds the new epoch, and the pair is made whole.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type { LocalPlacement } from '../../src/controller/placement/local.ts';
import { witnessRecordAnnotation } from '../../src/controller/witness/store-kube.ts';
import { parseWitnessRecord, type WitnessRecord } from '../../src/domain/index.ts';
import { AgentClient } from '../../src/faults/agent-client.ts';
import type { TestApiserver } from '../helpers/kube-apiserver.ts';
import { kubectlJson, kubectlOk, LocalOperatorEnvironment } from '../helpers/operator.ts';
import { assertNoAcknowledgedWriteLost, eventReasons, pairManifest, waitFailover, waitPair, WriteLoad } from '../helpers/two-node.ts';

const namespace = 'pair-lease';
const witnessNamespace = 'witnesses';
const name = 'pair';
let env: LocalOperatorEnvironment | undefined;
let apiserver: TestApiserver;
let placement: LocalPlacement;

before(async () => {
  env = await LocalOperatorEnvironment.start(namespace, 'op-lease');
  ({ apiserver, placement } = env);
  // The witness Lease's namespace; the operator watches only `namespace`, so it may come after the start.
  await kubectlOk(apiserver, ['create', 'namespace', witnessNamespace]);
});

after(async () => {
  await env?.close();
});

async function leaseRecord(): Promise<{ record: WitnessRecord; holder: string | undefined; transitions: number | undefined }> {
  const lease = await kubectlJson<{ metadata: { annotations?: Record<string, string> }; spec: { holderIdentity?: string; leaseTransitions?: number } }>(apiserver, [
    '-n',
    witnessNamespace,
    'get',
    'lease',
    'pair-witness',
  ]);
  assert.ok(lease, 'the witness Lease exists');
  const text = lease.metadata.annotations?.[witnessRecordAnnotation];
  assert.ok(text, 'the Lease carries the record');
  return { record: parseWitnessRecord('lease', JSON.parse(text)), holder: lease.spec.holderIdentity, transitions: lease.spec.leaseTransitions };
}

test('with a Lease witness: the pair forms, the leader crashes under load, the follower takes over, the pair is made whole', async () => {
  await kubectlOk(apiserver, ['apply', '-f', '-'], pairManifest(namespace, name, { kind: 'lease', namespace: witnessNamespace, name: 'pair-witness' }));
  const before = await waitPair(apiserver, namespace, name);
  const first = await leaseRecord();
  assert.equal(first.record.phase, 'paired');
  assert.deepEqual(first.record.members, ['pair-0', 'pair-1']);
  assert.equal(first.holder, 'op-lease');
  assert.equal(first.transitions, first.record.epoch);
  assert.equal(before.status!.witness!.witness, `lease ${witnessNamespace}/pair-witness`);

  const members = before.status!.members!;
  const leader = members.find((m) => m.role === 'leader')!;
  const follower = members.find((m) => m.role === 'follower')!;
  const runtime = placement.runtimeMembers(before).find((m) => m.name === leader.name)!;
  const service = await placement.serviceEndpoint(before);
  const load = new WriteLoad(service, '/lease-load/');
  await sleep(1500);
  await new AgentClient(runtime.agentUrl!, (await placement.agentToken(before))!).inject({ type: 'crash', ttlMs: 120_000 });
  const faultAt = Date.now();
  const failover = await waitFailover(apiserver, namespace, name, before.status!.witness!.epoch!);
  assert.deepEqual([failover.survivor, failover.fenced], [follower.name, leader.name]);
  await sleep(3000);
  await load.stop();
  const writable = load.writableAfter(faultAt);
  assert.ok(writable !== undefined, 'writable again');
  console.log(`Lease witness: fault → writable again in ${writable} ms`);
  await assertNoAcknowledgedWriteLost(service, load, '/lease-load/');

  const whole = await waitPair(apiserver, namespace, name);
  assert.ok(!whole.status!.members!.some((m) => m.name === leader.name));
  const last = await leaseRecord();
  assert.equal(last.record.phase, 'paired');
  assert.ok(last.record.fenced.includes(leader.name));
  assert.ok(last.record.epoch > failover.epoch);
  assert.equal(whole.status!.witness!.epoch, last.record.epoch);
  const reasons = (await eventReasons(apiserver, namespace, name)).map((e) => e.reason);
  for (const reason of ['WitnessInitialized', 'FailoverStarted', 'MemberFenced', 'SurvivorRecovering', 'FailoverCompleted', 'ReplacementAnnounced']) {
    assert.ok(reasons.includes(reason), `${reason} in ${reasons.join(',')}`);
  }
});
