// The two-node-plus-witness protocol's decision (planTwoNode), step by step through a failover and a
// rejoin. The deterministic simulation (test/unit/witness-sim.test.ts) explores the interleavings; these
// cases pin each step.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PlacedMember, WitnessRecord } from '../../src/domain/index.ts';
import type { EtcdMemberView, EtcdView } from '../../src/controller/etcdcluster/observe.ts';
import { planTwoNode, quorumLost, type TwoNodeAction, type TwoNodeInput } from '../../src/controller/witness/protocol.ts';

const self = { identity: 'op-a', term: 3 };
const now = Date.parse('2026-11-25T12:00:00Z');

function record(changes: Partial<WitnessRecord> = {}): WitnessRecord {
  return { epoch: 4, owner: self.identity, ownerTerm: self.term, phase: 'paired', members: ['c-0', 'c-1'], fenced: [], updatedAt: '2026-11-25T11:00:00Z', ...changes };
}

function member(name: string, id: string, status: 'leader' | 'follower' | 'noLeader' | 'unreachable', options: { learner?: boolean; raftIndex?: number } = {}): EtcdMemberView {
  const view: EtcdMemberView = { id, name, peerUrls: [`http://127.0.0.1:2${id}`], clientUrls: [`http://127.0.0.1:3${id}`], isLearner: options.learner ?? false };
  if (status !== 'unreachable') view.status = { revision: 10, version: '3.6.6', raftIndex: options.raftIndex ?? 100, hasLeader: status !== 'noLeader', dbSize: 1 };
  return view;
}

function etcd(members: EtcdMemberView[], leaderId?: string): EtcdView {
  return { clusterId: '99', leaderId, members };
}

function placed(name: string, id: string, changes: Partial<PlacedMember> = {}): PlacedMember {
  return { name, clientUrl: `http://127.0.0.1:3${id}`, peerUrl: `http://127.0.0.1:2${id}`, state: 'running', since: '2026-11-25T11:00:00Z', ...changes };
}

function input(changes: Partial<TwoNodeInput>): TwoNodeInput {
  return { cluster: 'c', self, now, failoverGraceMs: 3000, witness: { record: record(), version: '7' }, etcd: undefined, placed: [], quorumLostSince: undefined, ...changes };
}

const healthyPair = (): Partial<TwoNodeInput> => ({
  etcd: etcd([member('c-0', '1', 'leader'), member('c-1', '2', 'follower')], '1'),
  placed: [placed('c-0', '1'), placed('c-1', '2')],
});

function written(action: TwoNodeAction): WitnessRecord {
  assert.equal(action.kind, 'writeWitness', JSON.stringify(action));
  return (action).next;
}

describe('planTwoNode: the record', () => {
  test('a new cluster: the first record names the founder, then the founder is bootstrapped', () => {
    const first = planTwoNode(input({ witness: { record: undefined, version: '' } }));
    const r = written(first);
    assert.deepEqual([r.epoch, r.phase, r.members, r.owner, r.ownerTerm], [1, 'single', ['c-0'], 'op-a', 3]);
    assert.equal((first as { expectedVersion: string }).expectedVersion, '');
    assert.deepEqual(planTwoNode(input({ witness: { record: r, version: '1' } })), { kind: 'bootstrap', member: 'c-0' });
  });

  test('an existing pair without a record is adopted as it is', () => {
    const r = written(planTwoNode(input({ witness: { record: undefined, version: '' }, ...healthyPair() })));
    assert.deepEqual([r.epoch, r.phase, r.members], [1, 'paired', ['c-0', 'c-1']]);
  });

  test("another replica's record is claimed first (same content, next epoch, our term)", () => {
    const theirs = record({ owner: 'op-b', ownerTerm: 2 });
    const action = planTwoNode(input({ witness: { record: theirs, version: '7' }, ...healthyPair() }));
    const r = written(action);
    assert.equal((action as { reason: string }).reason, 'claim');
    assert.deepEqual([r.epoch, r.owner, r.ownerTerm, r.phase, r.members], [5, 'op-a', 3, 'paired', ['c-0', 'c-1']]);
  });

  test('a record of a newer term refuses this replica (it lost its Lease)', () => {
    const action = planTwoNode(input({ witness: { record: record({ owner: 'op-b', ownerTerm: 4 }), version: '7' }, ...healthyPair() }));
    assert.equal(action.kind, 'refused');
    assert.match((action as { reason: string }).reason, /op-b at term 4, newer than ours \(3\)/);
  });
});

describe('planTwoNode: forming the pair', () => {
  const single = record({ phase: 'single', members: ['c-0'] });
  test('a single serving member: the replacement is announced in the witness before etcd hears of it', () => {
    const r = written(planTwoNode(input({ witness: { record: single, version: '7' }, etcd: etcd([member('c-0', '1', 'leader')], '1'), placed: [placed('c-0', '1')] })));
    assert.deepEqual([r.epoch, r.phase, r.members], [5, 'paired', ['c-0', 'c-1']]);
  });

  test('announced: added as a learner, then promoted once it answers', () => {
    const paired = record({ members: ['c-0', 'c-1'] });
    assert.deepEqual(planTwoNode(input({ witness: { record: paired, version: '8' }, etcd: etcd([member('c-0', '1', 'leader')], '1'), placed: [placed('c-0', '1')] })), { kind: 'addLearner', member: 'c-1' });
    const withLearner = etcd([member('c-0', '1', 'leader'), member('c-1', '2', 'follower', { learner: true })], '1');
    assert.deepEqual(planTwoNode(input({ witness: { record: paired, version: '8' }, etcd: withLearner, placed: [placed('c-0', '1'), placed('c-1', '2')] })), { kind: 'promote', member: 'c-1', id: '2' });
  });

  test('a learner etcd has and nothing runs (the start after its member add never happened) is started, not added again', () => {
    const paired = record({ members: ['c-0', 'c-1'] });
    const orphan: EtcdMemberView = { id: '2', name: '', peerUrls: ['http://127.0.0.1:22'], clientUrls: [], isLearner: true };
    const action = planTwoNode(input({ witness: { record: paired, version: '8' }, etcd: etcd([member('c-0', '1', 'leader'), orphan], '1'), placed: [placed('c-0', '1')] }));
    assert.deepEqual(action, { kind: 'startMember', member: 'c-1', initialCluster: 'c-0=http://127.0.0.1:21,c-1=http://127.0.0.1:22' });
  });

  test('a healthy pair is steady', () => {
    assert.deepEqual(planTwoNode(input(healthyPair())), { kind: 'steady' });
  });
});

describe('planTwoNode: failover', () => {
  const leaderDown = (): Partial<TwoNodeInput> => ({
    etcd: etcd([member('c-0', '1', 'unreachable'), member('c-1', '2', 'noLeader')], undefined),
    placed: [placed('c-0', '1', { state: 'failed' }), placed('c-1', '2')],
  });

  test('no quorum within the grace: no failover (a member that comes back within it is restarted)', () => {
    const action = planTwoNode(input({ ...leaderDown(), quorumLostSince: now - 2999 }));
    assert.deepEqual(action, { kind: 'restartMember', member: 'c-0' });
  });

  test('no quorum past the grace: the witness is won for the next epoch naming the answering survivor', () => {
    const action = planTwoNode(input({ ...leaderDown(), quorumLostSince: now - 3000 }));
    const r = written(action);
    assert.equal((action as { reason: string }).reason, 'failover');
    assert.equal((action as { expectedVersion: string }).expectedVersion, '7');
    assert.deepEqual([r.epoch, r.phase, r.survivor, r.failoverEpoch, r.fencedMember, r.fenced, r.members], [5, 'failingOver', 'c-1', 5, 'c-0', ['c-0'], ['c-1']]);
  });

  test('a partition (both answer, neither leads): the more up-to-date member survives', () => {
    const split = etcd([member('c-0', '1', 'noLeader', { raftIndex: 90 }), member('c-1', '2', 'noLeader', { raftIndex: 120 })]);
    const r = written(planTwoNode(input({ etcd: split, placed: [placed('c-0', '1'), placed('c-1', '2')], quorumLostSince: now - 5000 })));
    assert.deepEqual([r.survivor, r.fencedMember], ['c-1', 'c-0']);
  });

  test('nobody answers: no failover (nothing to promote), waiting', () => {
    const dark = etcd([member('c-0', '1', 'unreachable'), member('c-1', '2', 'unreachable')]);
    const action = planTwoNode(input({ etcd: dark, placed: [placed('c-0', '1'), placed('c-1', '2')], quorumLostSince: now - 60_000 }));
    assert.equal(action.kind, 'wait');
  });

  test('a learner is never a survivor', () => {
    const joining = etcd([member('c-0', '1', 'unreachable'), member('c-1', '2', 'noLeader', { learner: true })]);
    const action = planTwoNode(input({ etcd: joining, placed: [placed('c-0', '1', { state: 'failed' }), placed('c-1', '2')], quorumLostSince: now - 60_000 }));
    assert.notEqual(action.kind, 'writeWitness');
  });

  const failing = record({ epoch: 5, phase: 'failingOver', survivor: 'c-1', failoverEpoch: 5, fencedMember: 'c-0', fenced: ['c-0'], members: ['c-1'] });

  test('failingOver: fence first, then recover the survivor, then record it serves alone', () => {
    const base = { witness: { record: failing, version: '9' }, etcd: leaderDown().etcd };
    assert.deepEqual(planTwoNode(input({ ...base, placed: [placed('c-0', '1', { state: 'failed' }), placed('c-1', '2')] })), { kind: 'fence', member: 'c-0', epoch: 5 });
    assert.deepEqual(planTwoNode(input({ ...base, placed: [placed('c-0', '1', { state: 'failed', fenced: true }), placed('c-1', '2')] })), { kind: 'recoverSurvivor', member: 'c-1', failoverEpoch: 5 });
    const recovering = [placed('c-0', '1', { state: 'failed', fenced: true }), placed('c-1', '2', { recoveredEpoch: 5 })];
    assert.equal(planTwoNode(input({ ...base, placed: recovering })).kind, 'wait');
    const alone = etcd([member('c-1', '2', 'leader')], '2');
    const r = written(planTwoNode(input({ witness: base.witness, etcd: alone, placed: recovering })));
    assert.deepEqual([r.epoch, r.phase, r.members, r.survivor, r.failoverEpoch, r.fenced], [6, 'single', ['c-1'], undefined, undefined, ['c-0']]);
  });

  test('a replica taking over a failover half way keeps its failoverEpoch: the survivor is not recovered twice', () => {
    const claimed = written(planTwoNode(input({ self: { identity: 'op-b', term: 4 }, witness: { record: failing, version: '9' } })));
    assert.deepEqual([claimed.epoch, claimed.failoverEpoch, claimed.survivor], [6, 5, 'c-1']);
    const recovering = [placed('c-0', '1', { state: 'failed', fenced: true }), placed('c-1', '2', { recoveredEpoch: 5 })];
    const action = planTwoNode(input({ self: { identity: 'op-b', term: 4 }, witness: { record: claimed, version: '10' }, etcd: leaderDown().etcd, placed: recovering }));
    assert.notEqual(action.kind, 'recoverSurvivor');
  });

  test('after the failover the replacement is announced; the fenced runner is deleted once the pair is whole', () => {
    const single = record({ epoch: 6, phase: 'single', members: ['c-1'], fenced: ['c-0'], fencedMember: 'c-0' });
    const alone = etcd([member('c-1', '2', 'leader')], '2');
    const fencedRunner = placed('c-0', '1', { state: 'failed', fenced: true });
    const r = written(planTwoNode(input({ witness: { record: single, version: '11' }, etcd: alone, placed: [fencedRunner, placed('c-1', '2')] })));
    assert.deepEqual(r.members, ['c-1', 'c-2']);
    const whole = etcd([member('c-1', '2', 'leader'), member('c-2', '3', 'follower')], '2');
    const paired = record({ epoch: 7, phase: 'paired', members: ['c-1', 'c-2'], fenced: ['c-0'] });
    assert.deepEqual(planTwoNode(input({ witness: { record: paired, version: '12' }, etcd: whole, placed: [fencedRunner, placed('c-1', '2'), placed('c-2', '3')] })), { kind: 'deleteRunner', member: 'c-0' });
    assert.deepEqual(planTwoNode(input({ witness: { record: paired, version: '12' }, etcd: whole, placed: [placed('c-1', '2'), placed('c-2', '3')] })), { kind: 'steady' });
  });

  test("the survivor's forced-start mark goes before anything else once the failover is over", () => {
    const single = record({ epoch: 6, phase: 'single', members: ['c-1'], fenced: ['c-0'], fencedMember: 'c-0' });
    const alone = etcd([member('c-1', '2', 'leader')], '2');
    const marked = placed('c-1', '2', { recoveredEpoch: 5, recovering: true });
    assert.deepEqual(planTwoNode(input({ witness: { record: single, version: '11' }, etcd: alone, placed: [marked] })), { kind: 'finishRecovery', member: 'c-1' });
    const r = written(planTwoNode(input({ witness: { record: single, version: '11' }, etcd: alone, placed: [{ ...marked, recovering: false }] })));
    assert.equal(r.phase, 'paired');
  });

  test('a fenced name is never reused, even once its runner is gone', () => {
    const single = record({ epoch: 6, phase: 'single', members: ['c-0'], fenced: ['c-1'], fencedMember: 'c-1' });
    const r = written(planTwoNode(input({ witness: { record: single, version: '11' }, etcd: etcd([member('c-0', '1', 'leader')], '1'), placed: [placed('c-0', '1')] })));
    assert.deepEqual(r.members, ['c-0', 'c-2']);
  });
});

test('quorumLost: no voter that answers has a leader', () => {
  assert.equal(quorumLost(undefined), true);
  assert.equal(quorumLost(etcd([member('c-0', '1', 'leader'), member('c-1', '2', 'unreachable')], '1')), false);
  assert.equal(quorumLost(etcd([member('c-0', '1', 'noLeader'), member('c-1', '2', 'unreachable')])), true);
  assert.equal(quorumLost(etcd([member('c-0', '1', 'unreachable'), member('c-1', '2', 'leader', { learner: true })])), true);
});
