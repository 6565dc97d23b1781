import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { EtcdMemberView, EtcdView } from '../../src/controller/etcdcluster/observe.ts';
import type { ClusterAction } from '../../src/controller/etcdcluster/plan.ts';
import { clusterStatus, describeAction, memberStatuses, type StatusInput } from '../../src/controller/etcdcluster/status.ts';
import type { ClusterReplicas, EtcdCluster, EtcdClusterStatus } from '../../src/domain/cluster-spec.ts';
import type { Condition } from '../../src/domain/kube.ts';
import type { PlacedMember } from '../../src/domain/runtime.ts';

const name = 'main';
const now = new Date('2025-01-01T12:00:00Z');
const earlier = '2024-12-31T08:00:00Z';

const peer = (i: number): string => `http://${name}-${i}.peer:2380`;
const client = (i: number): string => `http://${name}-${i}.client:2379`;
/** Decimal ids whose hex form is easy to read: 4096 + i → 100i. */
const id = (i: number): string => String(4096 + i);
const hex = (i: number): string => (4096 + i).toString(16);

const status = (hasLeader = true): NonNullable<EtcdMemberView['status']> => ({ revision: 42, version: '3.6.1', raftIndex: 99, hasLeader, dbSize: 8192 });

function member(i: number, overrides: Partial<EtcdMemberView> = {}): EtcdMemberView {
  return { id: id(i), name: `${name}-${i}`, peerUrls: [peer(i)], clientUrls: [client(i)], isLearner: false, status: status(), ...overrides };
}

function runner(i: number, state: PlacedMember['state'] = 'running'): PlacedMember {
  return { name: `${name}-${i}`, clientUrl: client(i), peerUrl: peer(i), state, since: '2025-01-01T11:00:00Z' };
}

function view(members: EtcdMemberView[], leader: number | null = 0): EtcdView {
  return { clusterId: '255', leaderId: leader === null ? undefined : id(leader), members };
}

/** `generation` null: metadata without a generation. */
function cluster(replicas: ClusterReplicas = 3, previous?: EtcdClusterStatus, generation: number | null = 7): EtcdCluster {
  const c: EtcdCluster = {
    apiVersion: 'etcd.robustness.io/v1alpha1',
    kind: 'EtcdCluster',
    metadata: { name, namespace: 'db', ...(generation === null ? {} : { generation }) },
    spec: {
      version: '3.6.1',
      replicas,
      topology: 'standard',
      storage: { size: '1Gi' },
      image: { repository: 'gcr.io/etcd-development/etcd', failpoints: false, pullPolicy: 'IfNotPresent' },
      agent: { enabled: false },
      memberGracePeriod: '5m',
    },
  };
  if (previous) c.status = previous;
  return c;
}

function statusOf(overrides: Partial<StatusInput> = {}): EtcdClusterStatus {
  return clusterStatus({
    cluster: cluster(),
    etcd: view([member(0), member(1), member(2)]),
    placed: [runner(0), runner(1), runner(2)],
    action: { kind: 'steady' },
    endpoints: [client(0), client(1), client(2)],
    now,
    ...overrides,
  });
}

const condition = (s: EtcdClusterStatus, type: string): Condition => {
  const found = s.conditions?.find((c) => c.type === type);
  assert.ok(found, `condition ${type}`);
  return found;
};

describe('describeAction', () => {
  test('describes every action kind', () => {
    const cases: [ClusterAction, string][] = [
      [{ kind: 'bootstrap', member: 'main-0' }, 'bootstrapping the cluster with main-0'],
      [{ kind: 'startMember', member: 'main-1', initialCluster: '' }, 'starting main-1'],
      [{ kind: 'restartMember', member: 'main-1' }, 'restarting main-1'],
      [{ kind: 'removeMember', member: 'main-2', id: '1', reason: 'dataLost' }, 'removing main-2 (dataLost)'],
      [{ kind: 'deleteRunner', member: 'main-3' }, 'deleting main-3, which is no member of the cluster'],
      [{ kind: 'promote', member: 'main-3', id: '1' }, 'promoting learner main-3'],
      [{ kind: 'addLearner', member: 'main-4' }, 'adding main-4 as a learner'],
      [{ kind: 'wait', reason: 'waiting for etcd to answer' }, 'waiting for etcd to answer'],
      [{ kind: 'lost', reason: 'every member lost its data' }, 'every member lost its data'],
      [{ kind: 'steady' }, 'members match the spec'],
    ];
    for (const [action, text] of cases) assert.equal(describeAction(action), text);
  });
});

describe('memberStatuses', () => {
  test('roles leader, follower, learner and unknown; ids in hex; version and revision from the status', () => {
    const etcd = view([member(0), member(1), member(2, { status: undefined }), member(3, { isLearner: true })], 1);
    const statuses = memberStatuses(etcd, [runner(0), runner(1), runner(2), runner(3)]);
    assert.deepEqual(
      statuses.map((s) => [s.name, s.id, s.role, s.healthy]),
      [
        ['main-0', hex(0), 'follower', true],
        ['main-1', hex(1), 'leader', true],
        ['main-2', hex(2), 'unknown', false],
        ['main-3', hex(3), 'learner', true],
      ],
    );
    assert.deepEqual(statuses[0], { name: 'main-0', id: '1000', role: 'follower', healthy: true, version: '3.6.1', revision: 42, clientUrl: client(0), peerUrl: peer(0) });
    assert.deepEqual(statuses[2], { name: 'main-2', id: '1002', role: 'unknown', healthy: false, clientUrl: client(2), peerUrl: peer(2) });
  });

  test('a voter that answers without a leader is a follower that is not healthy', () => {
    const [s] = memberStatuses(view([member(0, { status: status(false) })], null), [runner(0)]);
    assert.deepEqual([s?.role, s?.healthy], ['follower', false]);
  });

  test('ids are hex of etcd\'s decimal uint64 ids', () => {
    const [s] = memberStatuses(view([member(0, { id: '18446744073709551615' })], null), []);
    assert.equal(s?.id, 'ffffffffffffffff');
  });

  test('an unstarted member is named by its runner or the pending member, else as unknown with its hex id', () => {
    const etcd = view([member(0), member(1, { name: '', status: undefined, isLearner: true }), member(2, { name: '', status: undefined }), member(3, { name: '', status: undefined })]);
    const statuses = memberStatuses(etcd, [runner(0), runner(1)], { name: 'main-2', peerUrl: peer(2) });
    assert.deepEqual(
      statuses.map((s) => s.name),
      [`(unknown ${hex(3)})`, 'main-0', 'main-1', 'main-2'],
    );
    assert.equal(statuses.length, 4, 'the runner matched by peer URL is not listed twice');
  });

  test('runners etcd does not know are listed as unknown and not healthy', () => {
    const statuses = memberStatuses(view([member(0)]), [runner(0), runner(5, 'starting')]);
    assert.deepEqual(statuses[1], { name: 'main-5', role: 'unknown', healthy: false, clientUrl: client(5), peerUrl: peer(5) });
  });

  test('without etcd every runner is listed as unknown', () => {
    const statuses = memberStatuses(undefined, [runner(1), runner(0)]);
    assert.deepEqual(statuses.map((s) => [s.name, s.role, s.healthy]), [['main-0', 'unknown', false], ['main-1', 'unknown', false]]);
  });

  test('sorted by name with numeric indexes', () => {
    const statuses = memberStatuses(view([member(10), member(2), member(1)], 10), [runner(10), runner(2), runner(1)]);
    assert.deepEqual(statuses.map((s) => s.name), ['main-1', 'main-2', 'main-10']);
  });
});

describe('clusterStatus: conditions', () => {
  test('a healthy steady cluster: Available, not Progressing, not Degraded, Running', () => {
    const s = statusOf();
    assert.equal(s.phase, 'Running');
    assert.equal(s.leader, 'main-0');
    assert.equal(s.readyMembers, 3);
    assert.equal(s.clusterId, 'ff');
    assert.equal(s.observedGeneration, 7);
    assert.deepEqual(s.endpoints, [client(0), client(1), client(2)]);
    assert.deepEqual(
      s.conditions,
      [
        { type: 'Available', status: 'True', observedGeneration: 7, lastTransitionTime: '2025-01-01T12:00:00Z', reason: 'QuorumHealthy', message: '3 of 3 voting members serve; leader main-0' },
        { type: 'Progressing', status: 'False', observedGeneration: 7, lastTransitionTime: '2025-01-01T12:00:00Z', reason: 'Stable', message: 'members match the spec' },
        { type: 'Degraded', status: 'False', observedGeneration: 7, lastTransitionTime: '2025-01-01T12:00:00Z', reason: 'AllMembersHealthy', message: 'every member serves' },
      ],
    );
  });

  test('Available needs a leader', () => {
    const s = statusOf({ etcd: view([member(0), member(1), member(2)], null) });
    assert.equal(condition(s, 'Available').status, 'False');
    assert.equal(condition(s, 'Available').reason, 'NoQuorum');
    assert.equal(s.leader, undefined);
  });

  test('Available needs a serving quorum of voters; learners do not count', () => {
    const noQuorum = statusOf({ etcd: view([member(0), member(1, { status: undefined }), member(2, { status: status(false) })]) });
    assert.equal(condition(noQuorum, 'Available').status, 'False');
    assert.equal(condition(noQuorum, 'Available').message, '1 of 3 voting members serve');
    assert.equal(noQuorum.readyMembers, 1);

    const quorum = statusOf({ etcd: view([member(0), member(1), member(2, { status: undefined })]) });
    assert.equal(condition(quorum, 'Available').status, 'True');

    // 2 voters (one down) and two serving learners: the learners do not make a quorum.
    const learners = statusOf({
      etcd: view([member(0), member(1, { status: undefined }), member(2, { isLearner: true }), member(3, { isLearner: true })]),
      placed: [runner(0), runner(1), runner(2), runner(3)],
    });
    assert.equal(condition(learners, 'Available').status, 'False');
    assert.equal(learners.readyMembers, 1);
  });

  test('no etcd: Available False Unreachable, no cluster id', () => {
    const s = statusOf({ etcd: undefined, action: { kind: 'wait', reason: 'waiting for etcd to answer' } });
    assert.deepEqual([condition(s, 'Available').status, condition(s, 'Available').reason, condition(s, 'Available').message], ['False', 'Unreachable', 'no member answers']);
    assert.equal(s.clusterId, undefined);
    assert.equal(s.readyMembers, 0);
  });

  test('Degraded lists members that do not serve and failed or dataLost runners', () => {
    const s = statusOf({
      etcd: view([member(0), member(1), member(2, { status: undefined }), member(3), member(4, { isLearner: true, status: undefined })]),
      placed: [runner(0), runner(1, 'failed'), runner(2), runner(3, 'dataLost'), runner(4, 'starting')],
      cluster: cluster(5),
    });
    assert.equal(condition(s, 'Degraded').status, 'True');
    assert.equal(condition(s, 'Degraded').reason, 'MemberUnhealthy');
    assert.equal(condition(s, 'Degraded').message, 'not serving: main-1, main-2, main-3');
    assert.equal(s.phase, 'Degraded');
  });

  test('a starting learner alone does not degrade the cluster', () => {
    const s = statusOf({
      etcd: view([member(0), member(1), member(2, { isLearner: true, status: undefined })]),
      placed: [runner(0), runner(1), runner(2, 'starting')],
      action: { kind: 'wait', reason: 'learner main-2 is starting' },
    });
    assert.equal(condition(s, 'Degraded').status, 'False');
    assert.equal(s.phase, 'Scaling');
  });

  test('a runner etcd does not know degrades the cluster', () => {
    const s = statusOf({ placed: [runner(0), runner(1), runner(2), runner(3, 'running')], action: { kind: 'deleteRunner', member: 'main-3' } });
    assert.equal(condition(s, 'Degraded').message, 'not serving: main-3');
  });

  test('Progressing is False only for steady, with the action as reason and message', () => {
    const actions: ClusterAction[] = [
      { kind: 'bootstrap', member: 'main-0' },
      { kind: 'startMember', member: 'main-1', initialCluster: '' },
      { kind: 'restartMember', member: 'main-1' },
      { kind: 'removeMember', member: 'main-2', id: id(2), reason: 'down' },
      { kind: 'deleteRunner', member: 'main-3' },
      { kind: 'promote', member: 'main-3', id: id(3) },
      { kind: 'addLearner', member: 'main-3' },
      { kind: 'wait', reason: 'x' },
      { kind: 'lost', reason: 'y' },
    ];
    const reasons = ['Bootstrapping', 'StartingMember', 'RestartingMember', 'RemovingMember', 'DeletingMember', 'PromotingLearner', 'AddingMember', 'Waiting', 'Lost'];
    actions.forEach((action, k) => {
      const progressing = condition(statusOf({ action }), 'Progressing');
      assert.deepEqual([progressing.status, progressing.reason, progressing.message], ['True', reasons[k], describeAction(action)]);
    });
    assert.equal(condition(statusOf(), 'Progressing').status, 'False');
  });

  test('conditions keep lastTransitionTime while their status does not change, and take now when it does', () => {
    const previous: EtcdClusterStatus = {
      phase: 'Running',
      conditions: [
        { type: 'Available', status: 'True', observedGeneration: 6, lastTransitionTime: earlier, reason: 'QuorumHealthy', message: 'old' },
        { type: 'Progressing', status: 'True', observedGeneration: 6, lastTransitionTime: earlier, reason: 'AddingMember', message: 'old' },
        { type: 'Degraded', status: 'False', observedGeneration: 6, lastTransitionTime: earlier, reason: 'AllMembersHealthy', message: 'old' },
        { type: 'Custom', status: 'True', observedGeneration: 1, lastTransitionTime: earlier, reason: 'Kept', message: 'kept' },
      ],
    };
    const s = statusOf({ cluster: cluster(3, previous) });
    assert.equal(condition(s, 'Available').lastTransitionTime, earlier);
    assert.equal(condition(s, 'Available').message, '3 of 3 voting members serve; leader main-0');
    assert.equal(condition(s, 'Available').observedGeneration, 7);
    assert.equal(condition(s, 'Degraded').lastTransitionTime, earlier);
    assert.equal(condition(s, 'Progressing').lastTransitionTime, '2025-01-01T12:00:00Z');
    assert.equal(condition(s, 'Progressing').status, 'False');
    assert.deepEqual(condition(s, 'Custom'), previous.conditions![3]);
    assert.equal(s.conditions?.length, 4);
    // The previous status is not changed.
    assert.equal(previous.conditions![1]!.status, 'True');
    assert.equal(previous.conditions![0]!.message, 'old');
  });

  test('observedGeneration is metadata.generation, 0 when absent', () => {
    assert.equal(statusOf({ cluster: cluster(3, undefined, 12) }).observedGeneration, 12);
    const s = statusOf({ cluster: cluster(3, undefined, null) });
    assert.equal(s.observedGeneration, 0);
    assert.ok(s.conditions?.every((c) => c.observedGeneration === 0));
  });
});

describe('clusterStatus: phase', () => {
  const unavailable = { etcd: undefined, action: { kind: 'wait', reason: 'waiting for etcd to answer' } } satisfies Partial<StatusInput>;

  test('Creating before the cluster was ever available', () => {
    assert.equal(statusOf(unavailable).phase, 'Creating');
    assert.equal(statusOf({ ...unavailable, cluster: cluster(3, { phase: 'Pending' }) }).phase, 'Creating');
    assert.equal(statusOf({ ...unavailable, cluster: cluster(3, { phase: 'Creating' }) }).phase, 'Creating');
  });

  test('Degraded when unavailable after it was available', () => {
    for (const phase of ['Running', 'Scaling', 'Degraded'] as const) {
      assert.equal(statusOf({ ...unavailable, cluster: cluster(3, { phase }) }).phase, 'Degraded', phase);
    }
  });

  test('Failed when the cluster is lost', () => {
    assert.equal(statusOf({ etcd: undefined, placed: [runner(0, 'dataLost')], action: { kind: 'lost', reason: 'gone' } }).phase, 'Failed');
  });

  test('Scaling when the voters differ from replicas or a scaling step is taken', () => {
    assert.equal(statusOf({ cluster: cluster(5) }).phase, 'Scaling');
    assert.equal(statusOf({ cluster: cluster(1) }).phase, 'Scaling');
    assert.equal(statusOf({ action: { kind: 'addLearner', member: 'main-3' } }).phase, 'Scaling');
    assert.equal(statusOf({ action: { kind: 'promote', member: 'main-3', id: id(3) } }).phase, 'Scaling');
    assert.equal(statusOf({ action: { kind: 'removeMember', member: 'main-2', id: id(2), reason: 'scaleDown' } }).phase, 'Scaling');
    assert.equal(statusOf({ action: { kind: 'restartMember', member: 'main-2' } }).phase, 'Running');
  });

  test('Available with an unhealthy member is Degraded, not Scaling', () => {
    const s = statusOf({ cluster: cluster(5), etcd: view([member(0), member(1), member(2, { status: undefined })]) });
    assert.equal(condition(s, 'Available').status, 'True');
    assert.equal(s.phase, 'Degraded');
  });
});

describe('clusterStatus properties', () => {
  const genArb = fc
    .record({
      replicas: fc.constantFrom<ClusterReplicas>(1, 3, 5),
      members: fc.uniqueArray(
        fc.record({ index: fc.integer({ min: 0, max: 9 }), learner: fc.boolean(), answers: fc.boolean(), hasLeader: fc.boolean(), runner: fc.constantFrom<PlacedMember['state'] | 'none'>('running', 'starting', 'failed', 'dataLost', 'none') }),
        { maxLength: 6, selector: (m) => m.index },
      ),
      leaderPick: fc.option(fc.nat(), { nil: undefined }),
      noEtcd: fc.boolean(),
      previousPhase: fc.constantFrom(undefined, 'Pending', 'Creating', 'Running', 'Scaling', 'Degraded', 'Failed' as const),
      steady: fc.boolean(),
    })
    .map((g) => {
      const members = g.members.map((m) => member(m.index, { isLearner: m.learner, status: m.answers ? status(m.hasLeader) : undefined }));
      const leader = g.leaderPick === undefined || members.length === 0 ? null : g.members[g.leaderPick % members.length]!.index;
      const placed = g.members.filter((m) => m.runner !== 'none').map((m) => runner(m.index, m.runner as PlacedMember['state']));
      const input: StatusInput = {
        cluster: cluster(g.replicas, g.previousPhase === undefined ? undefined : { phase: g.previousPhase }),
        etcd: g.noEtcd ? undefined : view(members, leader),
        placed,
        action: g.steady ? { kind: 'steady' } : { kind: 'wait', reason: 'w' },
        endpoints: [],
        now,
      };
      return input;
    });

  test('Available True iff etcd answers with a leader voter with a status and a serving quorum of voters', () => {
    fc.assert(
      fc.property(genArb, (input) => {
        const s = clusterStatus(input);
        const voters = input.etcd?.members.filter((m) => !m.isLearner) ?? [];
        const serving = voters.filter((m) => m.status?.hasLeader === true).length;
        const leader = voters.find((m) => m.id === input.etcd?.leaderId && m.status !== undefined);
        const expected = input.etcd !== undefined && leader !== undefined && serving > voters.length / 2;
        assert.equal(condition(s, 'Available').status, expected ? 'True' : 'False');
        assert.equal(s.readyMembers, serving);
        assert.equal(s.leader, leader?.name);
        if (s.phase === 'Running') {
          assert.ok(expected);
          assert.equal(condition(s, 'Degraded').status, 'False');
          assert.equal(voters.length, input.cluster.spec.replicas);
        }
        assert.equal(condition(s, 'Progressing').status, input.action.kind === 'steady' ? 'False' : 'True');
        assert.equal(s.conditions?.length, 3);
        assert.ok(s.members!.every((m, k, all) => k === 0 || all[k - 1]!.name.localeCompare(m.name, 'en', { numeric: true }) <= 0));
        assert.equal(s.members!.filter((m) => m.role === 'leader').length, s.leader === undefined ? 0 : 1);
      }),
      { numRuns: 1000 },
    );
  });

  test('deterministic and pure', () => {
    fc.assert(
      fc.property(genArb, (input) => {
        const before = structuredClone(input);
        const first = clusterStatus(input);
        assert.deepEqual(input, before);
        assert.deepEqual(clusterStatus(structuredClone(input)), first);
      }),
      { numRuns: 300 },
    );
  });
});
