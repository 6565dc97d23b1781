import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { EtcdMemberView, EtcdView } from '../../src/controller/etcdcluster/observe.ts';
import { initialClusterOf, memberName, nextMemberName, planCluster, type ClusterAction, type PlanInput } from '../../src/controller/etcdcluster/plan.ts';
import type { PlacedMember } from '../../src/domain/runtime.ts';

const cluster = 'main';
const now = Date.parse('2025-01-01T12:00:00Z');
const grace = 60_000;
const iso = (ms: number): string => new Date(ms).toISOString();

const peer = (i: number): string => `http://${cluster}-${i}.peer:2380`;
const client = (i: number): string => `http://${cluster}-${i}.client:2379`;
const id = (i: number): string => String(1000 + i);

const status = (hasLeader = true): NonNullable<EtcdMemberView['status']> => ({ revision: 10, version: '3.6.0', raftIndex: 20, hasLeader, dbSize: 4096 });

/** A started member serving as a voter, unless overridden. */
function member(i: number, overrides: Partial<EtcdMemberView> = {}): EtcdMemberView {
  return { id: id(i), name: `${cluster}-${i}`, peerUrls: [peer(i)], clientUrls: [client(i)], isLearner: false, status: status(), ...overrides };
}

function runner(i: number, state: PlacedMember['state'] = 'running', since = now - 1000): PlacedMember {
  return { name: `${cluster}-${i}`, clientUrl: client(i), peerUrl: peer(i), state, since: iso(since) };
}

/** `leader` null: no member sees a leader. */
function view(members: EtcdMemberView[], leader: number | null = 0): EtcdView {
  return { clusterId: '77', leaderId: leader === null ? undefined : id(leader), members };
}

function input(overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    cluster,
    replicas: 3,
    gracePeriodMs: grace,
    now,
    placed: [],
    etcd: undefined,
    unhealthySince: new Map(),
    repairsPaused: false,
    ...overrides,
  };
}

/** A healthy cluster of the given member indexes, every member running, leader the first. */
function healthy(indexes: number[], overrides: Partial<PlanInput> = {}): PlanInput {
  return input({ replicas: indexes.length, etcd: view(indexes.map((i) => member(i)), indexes[0] ?? null), placed: indexes.map((i) => runner(i)), ...overrides });
}

describe('nextMemberName', () => {
  test('starts at 0 and continues after the highest index seen anywhere', () => {
    assert.equal(nextMemberName({ cluster, placed: [], etcd: undefined }), 'main-0');
    assert.equal(nextMemberName({ cluster, placed: [runner(0), runner(4)], etcd: view([member(2)]) }), 'main-5');
    assert.equal(nextMemberName({ cluster, placed: [runner(0)], etcd: view([member(7)]) }), 'main-8');
    assert.equal(nextMemberName({ cluster, placed: [runner(0)], etcd: undefined, pendingMember: { name: 'main-9', peerUrl: peer(9) } }), 'main-10');
  });

  test('ignores names of other clusters and names that are not <cluster>-<n>', () => {
    const placed = [runner(1), { ...runner(2), name: 'other-40' }, { ...runner(3), name: 'main-x-50' }, { ...runner(4), name: 'mainframe-60' }];
    assert.equal(nextMemberName({ cluster, placed, etcd: undefined }), 'main-2');
  });

  test('escapes regular expression characters in the cluster name', () => {
    const placed = [{ ...runner(0), name: 'a.b-3' }, { ...runner(1), name: 'aXb-9' }];
    assert.equal(nextMemberName({ cluster: 'a.b', placed, etcd: undefined }), 'a.b-4');
  });
});

describe('memberName', () => {
  test('a started member is known by its own name', () => {
    assert.equal(memberName(member(3), { placed: [] }), 'main-3');
  });

  test('an unstarted member (empty name) is known by the runner or pending member with its peer URL', () => {
    const unstarted = member(2, { name: '', status: undefined });
    assert.equal(memberName(unstarted, { placed: [runner(2)] }), 'main-2');
    assert.equal(memberName(unstarted, { placed: [], pendingMember: { name: 'main-2', peerUrl: peer(2) } }), 'main-2');
    assert.equal(memberName(unstarted, { placed: [runner(1)], pendingMember: { name: 'main-5', peerUrl: peer(5) } }), undefined);
  });
});

describe('initialClusterOf', () => {
  test('lists every member name=peerURL, naming unstarted members by their runner or the pending member', () => {
    const members = [member(0), member(1), member(2, { name: '', status: undefined, isLearner: true })];
    assert.equal(initialClusterOf(members, { placed: [], pendingMember: { name: 'main-2', peerUrl: peer(2) } }), `main-0=${peer(0)},main-1=${peer(1)},main-2=${peer(2)}`);
  });

  test('leaves out members without a known name or without a peer URL', () => {
    const members = [member(0), member(1, { name: '', status: undefined }), member(2, { peerUrls: [] })];
    assert.equal(initialClusterOf(members, { placed: [] }), `main-0=${peer(0)}`);
  });
});

describe('planCluster without etcd', () => {
  test('nothing placed: bootstrap <cluster>-0', () => {
    assert.deepEqual(planCluster(input()), { kind: 'bootstrap', member: 'main-0' });
  });

  test('a failed runner is restarted', () => {
    assert.deepEqual(planCluster(input({ placed: [runner(0, 'running'), runner(1, 'failed'), runner(2, 'dataLost')] })), { kind: 'restartMember', member: 'main-1' });
  });

  test('runners starting or running: wait for etcd to answer', () => {
    assert.equal(planCluster(input({ placed: [runner(0, 'starting'), runner(1, 'dataLost')] })).kind, 'wait');
    assert.equal(planCluster(input({ placed: [runner(0, 'running')] })).kind, 'wait');
  });

  test('every runner lost its data: lost, naming them', () => {
    const action = planCluster(input({ placed: [runner(0, 'dataLost'), runner(1, 'dataLost')] }));
    assert.equal(action.kind, 'lost');
    assert.match((action as { reason: string }).reason, /main-0, main-1/);
  });
});

describe('planCluster: placement drift', () => {
  test('a member added to etcd (empty name) matched to the pending member and not placed is started with the full initial cluster', () => {
    const etcd = view([member(0), member(1), member(2, { name: '', status: undefined, isLearner: true })]);
    const action = planCluster(input({ etcd, placed: [runner(0), runner(1)], pendingMember: { name: 'main-2', peerUrl: peer(2) } }));
    assert.deepEqual(action, { kind: 'startMember', member: 'main-2', initialCluster: `main-0=${peer(0)},main-1=${peer(1)},main-2=${peer(2)}` });
  });

  test('a runner etcd does not know is deleted', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0), runner(1), runner(2), runner(3, 'starting')] });
    assert.deepEqual(planCluster(plan), { kind: 'deleteRunner', member: 'main-3' });
  });

  test('a runner etcd knows only by peer URL (started, not yet named) is not deleted', () => {
    const etcd = view([member(0), member(1), member(2, { name: '', status: undefined, isLearner: true })]);
    const action = planCluster(input({ etcd, placed: [runner(0), runner(1), runner(2, 'starting')] }));
    assert.deepEqual(action, { kind: 'wait', reason: 'learner main-2 is starting' });
  });

  test('a member nobody knows the name of is removed as unknown', () => {
    const etcd = view([member(0), member(1), member(5, { name: '', status: undefined })]);
    assert.deepEqual(planCluster(input({ etcd, placed: [runner(0), runner(1)] })), { kind: 'removeMember', member: peer(5), id: id(5), reason: 'unknown' });
  });

  test('a started member the placement no longer lists (its PVC went with its Pod) lost its data: it is replaced, never started on empty storage', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0), runner(1)] });
    assert.deepEqual(planCluster(plan), { kind: 'removeMember', member: 'main-2', id: id(2), reason: 'dataLost' });
  });

  test('a leader the placement no longer lists waits for another leader, as a leader that lost its data does', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(1), runner(2)] });
    assert.equal(plan.etcd?.leaderId, id(0));
    assert.deepEqual(planCluster(plan), { kind: 'wait', reason: 'the leader main-0 lost its data; waiting for another leader before removing it' });
  });
});

describe('planCluster: repairs', () => {
  test('a runner whose data was lost is removed from etcd', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0), runner(1, 'dataLost'), runner(2)] });
    assert.deepEqual(planCluster(plan), { kind: 'removeMember', member: 'main-1', id: id(1), reason: 'dataLost' });
  });

  test('a leader whose data was lost is not removed: wait for another leader, or the cluster is lost if it is the only member', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0, 'dataLost'), runner(1), runner(2)] });
    assert.equal(plan.etcd?.leaderId, id(0));
    assert.equal(planCluster(plan).kind, 'wait');
    assert.equal(planCluster(healthy([0], { replicas: 1, placed: [runner(0, 'dataLost')] })).kind, 'lost');
  });

  test('a failed runner within the grace period is restarted', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0), runner(1, 'failed', now - grace + 1), runner(2)] });
    plan.etcd!.members[1]!.status = undefined;
    assert.deepEqual(planCluster(plan), { kind: 'restartMember', member: 'main-1' });
  });

  test('a failed runner exactly at the grace period is still restarted', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0), runner(1, 'failed', now - grace), runner(2)] });
    assert.deepEqual(planCluster(plan), { kind: 'restartMember', member: 'main-1' });
  });

  test('a failed runner past the grace period is removed as down', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0), runner(1, 'failed', now - grace - 1), runner(2)] });
    plan.etcd!.members[1]!.status = undefined;
    assert.deepEqual(planCluster(plan), { kind: 'removeMember', member: 'main-1', id: id(1), reason: 'down' });
  });

  test('the leader is never removed as down: it is restarted instead', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0, 'failed', now - 10 * grace), runner(1), runner(2)] });
    assert.deepEqual(planCluster(plan), { kind: 'restartMember', member: 'main-0' });
  });

  test('without a known leader nothing is removed as down', () => {
    const plan = healthy([0, 1, 2], { placed: [runner(0), runner(1, 'failed', now - 10 * grace), runner(2)] });
    plan.etcd = { ...plan.etcd!, leaderId: undefined };
    assert.deepEqual(planCluster(plan), { kind: 'restartMember', member: 'main-1' });
  });

  test('a member that does not answer past the grace period is removed as down', () => {
    const plan = healthy([0, 1, 2], { unhealthySince: new Map([[id(2), now - grace - 1]]) });
    plan.etcd!.members[2]!.status = undefined;
    assert.deepEqual(planCluster(plan), { kind: 'removeMember', member: 'main-2', id: id(2), reason: 'down' });
  });

  test('a member that does not answer within the grace period is waited for', () => {
    const plan = healthy([0, 1, 2], { unhealthySince: new Map([[id(2), now - grace + 1]]) });
    plan.etcd!.members[2]!.status = status(false);
    assert.deepEqual(planCluster(plan), { kind: 'wait', reason: 'waiting for main-2 to serve' });
  });

  test('an old unhealthySince entry of a member that serves again is ignored', () => {
    const plan = healthy([0, 1, 2], { unhealthySince: new Map([[id(2), now - 10 * grace]]) });
    assert.deepEqual(planCluster(plan), { kind: 'steady' });
  });
});

describe('planCluster: learners', () => {
  test('a learner with a status is promoted', () => {
    const plan = healthy([0, 1, 2]);
    plan.etcd!.members[2] = member(2, { isLearner: true, status: status(true) });
    assert.deepEqual(planCluster(plan), { kind: 'promote', member: 'main-2', id: id(2) });
    plan.etcd!.members[2] = member(2, { isLearner: true, status: status(false) });
    assert.deepEqual(planCluster(plan), { kind: 'promote', member: 'main-2', id: id(2) });
  });

  test('a learner without a status is waited for', () => {
    const plan = healthy([0, 1, 2]);
    plan.etcd!.members[2] = member(2, { isLearner: true, status: undefined });
    assert.deepEqual(planCluster(plan), { kind: 'wait', reason: 'learner main-2 is starting' });
  });
});

describe('planCluster: scaling', () => {
  test('fewer members than replicas, all serving: add a learner with the next index', () => {
    assert.deepEqual(planCluster(healthy([0], { replicas: 3 })), { kind: 'addLearner', member: 'main-1' });
  });

  test('indexes only grow: a replaced member name is not reused', () => {
    assert.deepEqual(planCluster(healthy([0, 2], { replicas: 3 })), { kind: 'addLearner', member: 'main-3' });
    assert.deepEqual(planCluster(healthy([1, 4], { replicas: 5 })), { kind: 'addLearner', member: 'main-5' });
  });

  test('the pending name is reused when the pending member never got into etcd', () => {
    const plan = healthy([0, 1], { replicas: 3, pendingMember: { name: 'main-4', peerUrl: peer(4) } });
    assert.deepEqual(planCluster(plan), { kind: 'addLearner', member: 'main-4' });
  });

  test('the pending name is not reused when it is in etcd or placed', () => {
    // The pending member main-1 is a voter now: the next member is main-2.
    assert.deepEqual(planCluster(healthy([0, 1], { replicas: 3, pendingMember: { name: 'main-1', peerUrl: peer(1) } })), { kind: 'addLearner', member: 'main-2' });
  });

  test('a member that does not serve blocks scaling up', () => {
    const plan = healthy([0, 1], { replicas: 3 });
    plan.etcd!.members[1]!.status = undefined;
    assert.equal(planCluster(plan).kind, 'wait');
  });

  test('more members than replicas: remove the highest-index non-leader', () => {
    assert.deepEqual(planCluster(healthy([0, 1, 2, 3, 4], { replicas: 3 })), { kind: 'removeMember', member: 'main-4', id: id(4), reason: 'scaleDown' });
    const plan = healthy([0, 1, 2, 3, 4], { replicas: 3 });
    plan.etcd = { ...plan.etcd!, leaderId: id(4) };
    assert.deepEqual(planCluster(plan), { kind: 'removeMember', member: 'main-3', id: id(3), reason: 'scaleDown' });
  });

  test('index order is numeric, not lexical', () => {
    const plan = healthy([0, 9, 10], { replicas: 1 });
    assert.deepEqual(planCluster(plan), { kind: 'removeMember', member: 'main-10', id: id(10), reason: 'scaleDown' });
  });

  test('steady when every member matches the spec', () => {
    for (const indexes of [[0], [0, 1, 2], [3, 5, 8, 9, 12]]) assert.deepEqual(planCluster(healthy(indexes)), { kind: 'steady' });
  });
});

describe('planCluster: repairs paused', () => {
  test('no repairs, no learner promotion and no scaling', () => {
    const paused = { repairsPaused: true };
    const dataLost = healthy([0, 1, 2], { ...paused, placed: [runner(0), runner(1, 'dataLost'), runner(2)] });
    assert.deepEqual(planCluster(dataLost), { kind: 'steady' });
    const failed = healthy([0, 1, 2], { ...paused, placed: [runner(0), runner(1, 'failed', now - 10 * grace), runner(2)] });
    assert.deepEqual(planCluster(failed), { kind: 'steady' });
    const unanswering = healthy([0, 1, 2], { ...paused, unhealthySince: new Map([[id(2), now - 10 * grace]]) });
    unanswering.etcd!.members[2]!.status = undefined;
    assert.deepEqual(planCluster(unanswering), { kind: 'steady' });
    assert.deepEqual(planCluster(healthy([0], { ...paused, replicas: 3 })), { kind: 'steady' });
    assert.deepEqual(planCluster(healthy([0, 1, 2, 3, 4], { ...paused, replicas: 3 })), { kind: 'steady' });
  });

  test('an unknown member is left alone', () => {
    const etcd = view([member(0), member(5, { name: '', status: undefined })]);
    assert.deepEqual(planCluster(input({ etcd, placed: [runner(0)], repairsPaused: true })), { kind: 'steady' });
  });

  test('placement drift is still fixed', () => {
    const extra = healthy([0, 1, 2], { repairsPaused: true, placed: [runner(0), runner(1), runner(2), runner(3)] });
    assert.deepEqual(planCluster(extra), { kind: 'deleteRunner', member: 'main-3' });
    const etcd = view([member(0), member(1), member(2, { name: '', status: undefined, isLearner: true })]);
    const unstarted = input({ etcd, placed: [runner(0), runner(1)], pendingMember: { name: 'main-2', peerUrl: peer(2) }, repairsPaused: true });
    assert.equal(planCluster(unstarted).kind, 'startMember');
  });
});

// ---- properties over generated small clusters ----

interface GenMember {
  index: number;
  started: boolean;
  isLearner: boolean;
  answers: boolean;
  hasLeader: boolean;
  runner: PlacedMember['state'] | 'none';
  downForMs: number;
  unhealthyForMs: number | undefined;
}

/** Mostly running, so that the later steps of the plan (learners, scaling) are reached often. */
const stateArb = fc.oneof(
  { arbitrary: fc.constant<PlacedMember['state']>('running'), weight: 12 },
  { arbitrary: fc.constantFrom<PlacedMember['state'] | 'none'>('starting', 'failed', 'dataLost', 'none'), weight: 4 },
);
const mostly = (weight: number): fc.Arbitrary<boolean> => fc.integer({ min: 1, max: 10 }).map((n) => n <= weight);

const genMemberArb = (index: number): fc.Arbitrary<GenMember> =>
  fc.record({
    index: fc.constant(index),
    started: mostly(9),
    isLearner: mostly(2),
    answers: mostly(8),
    hasLeader: mostly(8),
    runner: stateArb,
    downForMs: fc.integer({ min: 0, max: 3 * grace }),
    unhealthyForMs: fc.option(fc.integer({ min: 0, max: 3 * grace }), { nil: undefined }),
  });

const planInputArb: fc.Arbitrary<PlanInput> = fc
  .record({
    replicas: fc.constantFrom(1, 3, 5),
    indexes: fc.uniqueArray(fc.integer({ min: 0, max: 12 }), { maxLength: 6 }),
    extraRunners: fc.uniqueArray(fc.record({ index: fc.integer({ min: 13, max: 16 }), state: fc.constantFrom<PlacedMember['state']>('starting', 'running', 'failed', 'dataLost') }), {
      maxLength: 2,
      selector: (r) => r.index,
    }).chain((runners) => mostly(2).map((some) => (some ? runners : []))),
    etcdAbsent: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    leaderPick: fc.nat(),
    hasLeader: mostly(9),
    pending: fc.option(fc.integer({ min: 0, max: 17 }), { nil: undefined }),
    repairsPaused: mostly(2),
  })
  .chain((shape) => fc.tuple(fc.constant(shape), fc.tuple(...shape.indexes.map(genMemberArb))))
  .map(([shape, gens]) => {
    const members: EtcdMemberView[] = [];
    const placed: PlacedMember[] = [];
    const unhealthySince = new Map<string, number>();
    for (const g of gens) {
      // An unstarted member has no name and does not answer; etcd names it once it starts.
      members.push(member(g.index, { name: g.started ? `${cluster}-${g.index}` : '', isLearner: g.isLearner, status: g.started && g.answers ? status(g.hasLeader) : undefined }));
      if (g.runner !== 'none') placed.push(runner(g.index, g.runner, now - g.downForMs));
      if (g.unhealthyForMs !== undefined) unhealthySince.set(id(g.index), now - g.unhealthyForMs);
    }
    for (const r of shape.extraRunners) placed.push(runner(r.index, r.state, now - 1000));
    // The leader, when there is one, is a started voter.
    const voters = gens.filter((g) => g.started && !g.isLearner);
    const leader = shape.hasLeader && voters.length > 0 ? voters[shape.leaderPick % voters.length]!.index : null;
    return input({
      replicas: shape.replicas,
      placed,
      etcd: shape.etcdAbsent ? undefined : view(members, leader),
      unhealthySince,
      pendingMember: shape.pending === undefined ? undefined : { name: `${cluster}-${shape.pending}`, peerUrl: peer(shape.pending) },
      repairsPaused: shape.repairsPaused,
    });
  });

const actionKinds = new Set<ClusterAction['kind']>(['bootstrap', 'startMember', 'restartMember', 'removeMember', 'deleteRunner', 'promote', 'addLearner', 'wait', 'lost', 'steady']);
const membershipChanges = new Set<ClusterAction['kind']>(['removeMember', 'promote', 'addLearner']);
const serves = (m: EtcdMemberView): boolean => m.status?.hasLeader === true;

describe('planCluster properties', () => {
  test('never removes the leader (while the leader does not report lost data)', () => {
    fc.assert(
      fc.property(planInputArb, (plan) => {
        const leaderId = plan.etcd?.leaderId;
        const action = planCluster(plan);
        if (action.kind === 'removeMember') assert.notEqual(action.id, leaderId);
      }),
      { numRuns: 2000 },
    );
  });

  test('one action per step, and at most one membership change', () => {
    fc.assert(
      fc.property(planInputArb, (plan) => {
        const action = planCluster(plan);
        assert.ok(actionKinds.has(action.kind), action.kind);
        const changes = [action].filter((a) => membershipChanges.has(a.kind));
        assert.ok(changes.length <= 1);
        if (plan.etcd === undefined) assert.ok(['bootstrap', 'restartMember', 'wait', 'lost'].includes(action.kind), action.kind);
        if (plan.repairsPaused && plan.etcd !== undefined) assert.ok(['startMember', 'deleteRunner', 'steady'].includes(action.kind), action.kind);
        if (action.kind === 'removeMember' || action.kind === 'promote') assert.ok(plan.etcd?.members.some((m) => m.id === action.id));
        if (action.kind === 'promote') assert.ok(plan.etcd?.members.find((m) => m.id === action.id)?.isLearner);
      }),
      { numRuns: 2000 },
    );
  });

  test('never adds a learner while a learner exists or a member does not serve, nor beyond replicas', () => {
    fc.assert(
      fc.property(planInputArb, (plan) => {
        const action = planCluster(plan);
        if (action.kind !== 'addLearner') return;
        const members = plan.etcd!.members;
        assert.ok(!members.some((m) => m.isLearner));
        assert.ok(members.every(serves));
        assert.ok(members.length < plan.replicas);
        assert.ok(!plan.repairsPaused);
      }),
      { numRuns: 2000 },
    );
  });

  test('nextMemberName never returns a name in use', () => {
    fc.assert(
      fc.property(planInputArb, (plan) => {
        const name = nextMemberName(plan);
        const inUse = [...plan.placed.map((p) => p.name), ...(plan.etcd?.members.map((m) => m.name) ?? []), plan.pendingMember?.name];
        assert.ok(!inUse.includes(name), `${name} in ${inUse.join(',')}`);
        assert.match(name, /^main-\d+$/);
      }),
      { numRuns: 2000 },
    );
  });

  test('an added learner name is never one etcd or the placement uses', () => {
    fc.assert(
      fc.property(planInputArb, (plan) => {
        const action = planCluster(plan);
        if (action.kind !== 'addLearner' && action.kind !== 'bootstrap') return;
        const inUse = [...plan.placed.map((p) => p.name), ...(plan.etcd?.members.map((m) => memberName(m, plan)) ?? [])];
        assert.ok(!inUse.includes(action.member));
      }),
      { numRuns: 2000 },
    );
  });

  test('steady when every member serves under its runner name, no learner, count == replicas, no runner failed', () => {
    const healthyArb = fc
      .record({
        indexes: fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 5 }).filter((a) => [1, 3, 5].includes(a.length)),
        leaderPick: fc.nat(),
        unhealthyForMs: fc.array(fc.option(fc.integer({ min: 0, max: 10 * grace }), { nil: undefined }), { minLength: 5, maxLength: 5 }),
        runnerSinceMs: fc.array(fc.integer({ min: 0, max: 10 * grace }), { minLength: 5, maxLength: 5 }),
        repairsPaused: fc.boolean(),
      })
      .map(({ indexes, leaderPick, unhealthyForMs, runnerSinceMs, repairsPaused }) => {
        const unhealthySince = new Map<string, number>();
        indexes.forEach((i, k) => {
          const ms = unhealthyForMs[k];
          if (ms !== undefined) unhealthySince.set(id(i), now - ms);
        });
        return healthy(indexes, {
          etcd: view(indexes.map((i) => member(i)), indexes[leaderPick % indexes.length] ?? null),
          placed: indexes.map((i, k) => runner(i, 'running', now - runnerSinceMs[k]!)),
          unhealthySince,
          repairsPaused,
        });
      });
    fc.assert(
      fc.property(healthyArb, (plan) => {
        assert.deepEqual(planCluster(plan), { kind: 'steady' });
      }),
      { numRuns: 1000 },
    );
  });

  test('deterministic: the same input gives the same action, and the input is not changed', () => {
    fc.assert(
      fc.property(planInputArb, (plan) => {
        const before = structuredClone(plan);
        const first = planCluster(plan);
        assert.deepEqual(plan, before);
        assert.deepEqual(planCluster(structuredClone(plan)), first);
      }),
      { numRuns: 1000 },
    );
  });
});
