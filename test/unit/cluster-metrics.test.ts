import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import {
  ClusterMetrics,
  clusterSample,
  hasQuorum,
  leaderStep,
  parseQuotaBytes,
  QuotaCache,
  type RoleCounts,
} from '../../src/controller/etcdcluster/metrics.ts';
import type { EtcdMemberView, EtcdView } from '../../src/controller/etcdcluster/observe.ts';
import type { PlacedMember } from '../../src/domain/index.ts';

type Status = NonNullable<EtcdMemberView['status']>;

function member(n: number, status: Partial<Status> | undefined, isLearner = false): EtcdMemberView {
  const view: EtcdMemberView = { id: String(1000 + n), name: `m${n}`, peerUrls: [`http://127.0.0.1:${2380 + n}`], clientUrls: [`http://127.0.0.1:${2379 + n}`], isLearner };
  if (status) view.status = { revision: 10, version: '3.6.5', raftIndex: 20, hasLeader: true, dbSize: 4096, ...status };
  return view;
}

const view = (members: EtcdMemberView[], leader?: number): EtcdView => ({ clusterId: '1', leaderId: leader === undefined ? undefined : String(1000 + leader), members });

const placedMember = (n: number): PlacedMember => ({
  name: `m${n}`,
  clientUrl: `http://127.0.0.1:${2379 + n}`,
  peerUrl: `http://127.0.0.1:${2380 + n}`,
  state: 'running',
  since: '2026-01-01T00:00:00Z',
});

const counts = (c: RoleCounts): string =>
  Object.entries(c)
    .map(([role, { healthy, unhealthy }]) => `${role}:${healthy}/${unhealthy}`)
    .join(' ');

async function series(registry: Registry, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  assert.ok(metric, `${name} is registered`);
  return metric.values.map((v) => ({ labels: { ...v.labels } as Record<string, string | number>, value: v.value }));
}

describe('clusterSample', () => {
  test('roles and health: leader, followers, a learner, a silent member, a leaderless one', () => {
    const etcd = view([member(0, {}), member(1, {}), member(2, { hasLeader: false }), member(3, undefined), member(4, {}, true)], 0);
    const sample = clusterSample(etcd, [0, 1, 2, 3, 4].map(placedMember));
    assert.equal(counts(sample.members), 'leader:1/0 follower:1/1 learner:1/0 unknown:0/1');
    assert.equal(sample.hasLeader, true);
    // Voters m0..m3: m0 and m1 answer with a leader, 2 of 4 is no majority.
    assert.equal(sample.quorum, false);
  });

  test('a placed member etcd does not list, or lists unnamed (added, not started), counts once as unknown', () => {
    const unnamed = { ...member(2, undefined), name: '' };
    const sample = clusterSample(view([member(0, {}), member(1, {}), unnamed], 0), [0, 1, 2, 3].map(placedMember));
    assert.equal(counts(sample.members), 'leader:1/0 follower:1/0 learner:0/0 unknown:0/2');
  });

  test('no observation: every placed member unknown, no leader, no quorum, no per-member samples', () => {
    const sample = clusterSample(undefined, [0, 1, 2].map(placedMember));
    assert.equal(counts(sample.members), 'leader:0/0 follower:0/0 learner:0/0 unknown:0/3');
    assert.equal(sample.hasLeader, false);
    assert.equal(sample.quorum, false);
    assert.equal(sample.revisionLag.size, 0);
  });

  test('revision lag against the highest revision reported; a silent member gets no sample', () => {
    const etcd = view([member(0, { revision: 120 }), member(1, { revision: 100 }), member(2, undefined)], 0);
    const sample = clusterSample(etcd, []);
    assert.deepEqual([...sample.revisionLag], [['m0', 0], ['m1', 20]]);
    assert.deepEqual([...sample.dbSize], [['m0', 4096], ['m1', 4096]]);
    assert.deepEqual([...sample.version], [['m0', '3.6.5'], ['m1', '3.6.5']]);
  });
});

describe('hasQuorum', () => {
  test('learners do not vote', () => {
    // 2 healthy voters of 3, plus two silent learners: quorum.
    assert.equal(hasQuorum([member(0, {}), member(1, {}), member(2, undefined), member(3, undefined, true), member(4, undefined, true)]), true);
    // 1 healthy voter of 2 and a healthy learner: the learner does not make a majority.
    assert.equal(hasQuorum([member(0, {}), member(1, undefined), member(2, {}, true)]), false);
    assert.equal(hasQuorum([member(0, {}, true)]), false);
    assert.equal(hasQuorum([]), false);
  });

  test('property: quorum iff healthy voters > voters / 2', () => {
    const memberArb = fc.record({ learner: fc.boolean(), answers: fc.boolean(), hasLeader: fc.boolean() });
    fc.assert(
      fc.property(fc.array(memberArb, { maxLength: 9 }), (specs) => {
        const members = specs.map((s, i) => member(i, s.answers ? { hasLeader: s.hasLeader } : undefined, s.learner));
        const voters = specs.filter((s) => !s.learner);
        const healthy = voters.filter((s) => s.answers && s.hasLeader).length;
        assert.equal(hasQuorum(members), voters.length > 0 && healthy > voters.length / 2);
      }),
    );
  });
});

describe('leader changes', () => {
  const changes = (leaders: (string | undefined)[]): number => {
    let last: string | undefined;
    let total = 0;
    for (const leader of leaders) {
      const step = leaderStep(last, leader);
      last = step.lastLeader;
      if (step.changed) total++;
    }
    return total;
  };

  test('examples', () => {
    assert.equal(changes(['a']), 0);
    assert.equal(changes([undefined, 'a']), 0);
    assert.equal(changes(['a', undefined, 'a']), 0);
    assert.equal(changes(['a', 'b']), 1);
    assert.equal(changes(['a', undefined, undefined, 'b']), 1);
    assert.equal(changes(['a', 'b', 'a', 'a']), 2);
  });

  test('property: the number of changes between consecutive leaders, leaderless observations removed', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }), { maxLength: 30 }), (leaders) => {
        const seen = leaders.filter((l) => l !== undefined);
        const expected = seen.slice(1).filter((l, i) => l !== seen[i]).length;
        assert.equal(changes(leaders), expected);
      }),
    );
  });

  test('the counter follows the observations, starting at 0 on the first one', async () => {
    const registry = new Registry();
    const metrics = new ClusterMetrics(registry);
    const members = [member(0, {}), member(1, {}), member(2, {})];
    const total = async (): Promise<number | undefined> => (await series(registry, 'etcd_robustness_cluster_leader_changes_total')).find((s) => s.labels.cluster === 'ns/c')?.value;
    metrics.observe('ns/c', view(members, 0), []);
    assert.equal(await total(), 0);
    metrics.observe('ns/c', view(members, undefined), []);
    metrics.observe('ns/c', undefined, []);
    metrics.observe('ns/c', view(members, 1), []);
    assert.equal(await total(), 1);
    // A second ClusterMetrics on the same registry (a new leadership term) continues from the same memory.
    new ClusterMetrics(registry).observe('ns/c', view(members, 2), []);
    assert.equal(await total(), 2);
  });
});

describe('ClusterMetrics', () => {
  test('every role × health series exists, 0 when no member is in it', async () => {
    const registry = new Registry();
    new ClusterMetrics(registry).observe('ns/c', view([member(0, {}), member(1, undefined)], 0), [0, 1].map(placedMember));
    const members = await series(registry, 'etcd_robustness_cluster_members');
    assert.equal(members.length, 8);
    const value = (role: string, healthy: string): number | undefined => members.find((s) => s.labels.role === role && s.labels.healthy === healthy)?.value;
    assert.equal(value('leader', 'true'), 1);
    assert.equal(value('unknown', 'false'), 1);
    assert.equal(value('follower', 'true'), 0);
    assert.equal(value('learner', 'false'), 0);
    assert.deepEqual((await series(registry, 'etcd_robustness_cluster_quorum')).map((s) => s.value), [0]);
    assert.deepEqual((await series(registry, 'etcd_robustness_cluster_has_leader')).map((s) => s.value), [1]);
  });

  test('per-member series of a member that stops answering are removed', async () => {
    const registry = new Registry();
    const metrics = new ClusterMetrics(registry);
    metrics.observe('ns/c', view([member(0, { revision: 50 }), member(1, { revision: 40 })], 0), [], new Map([['m0', 2e9], ['m1', 2e9]]));
    assert.deepEqual((await series(registry, 'etcd_robustness_cluster_member_revision_lag')).map((s) => [s.labels.member, s.value]), [['m0', 0], ['m1', 10]]);
    metrics.observe('ns/c', view([member(0, { revision: 60 }), member(1, undefined)], 0), [], new Map([['m0', 2e9]]));
    assert.deepEqual((await series(registry, 'etcd_robustness_cluster_member_revision_lag')).map((s) => s.labels.member), ['m0']);
    assert.deepEqual((await series(registry, 'etcd_robustness_cluster_db_size_bytes')).map((s) => s.labels.member), ['m0']);
    assert.deepEqual((await series(registry, 'etcd_robustness_cluster_db_quota_bytes')).map((s) => [s.labels.member, s.value]), [['m0', 2e9]]);
  });

  test('member_info: an upgraded member replaces its version series', async () => {
    const registry = new Registry();
    const metrics = new ClusterMetrics(registry);
    metrics.observe('ns/c', view([member(0, { version: '3.5.17' }), member(1, { version: '3.5.17' })], 0), []);
    metrics.observe('ns/c', view([member(0, { version: '3.6.5' }), member(1, { version: '3.5.17' })], 0), []);
    const info = (await series(registry, 'etcd_robustness_cluster_member_info')).map((s) => `${s.labels.member}@${s.labels.version}=${s.value}`).sort();
    assert.deepEqual(info, ['m0@3.6.5=1', 'm1@3.5.17=1']);
  });

  test('forget removes every series of the cluster and no other', async () => {
    const registry = new Registry();
    const metrics = new ClusterMetrics(registry);
    const etcd = view([member(0, {}), member(1, {})], 0);
    metrics.observe('ns/a', etcd, [], new Map([['m0', 1e9]]));
    metrics.observe('ns/b', etcd, [], new Map([['m0', 1e9]]));
    metrics.forget('ns/a');
    for (const m of await registry.getMetricsAsJSON()) {
      const clusters = new Set(m.values.map((v) => v.labels.cluster));
      assert.deepEqual([...clusters], ['ns/b'], `${m.name} keeps only ns/b's series`);
    }
    metrics.forgetAll();
    for (const m of await registry.getMetricsAsJSON()) assert.equal(m.values.length, 0, `${m.name} has no series after forgetAll`);
    // Observed again after forget: the leader memory is gone too, so the first leader is no change.
    metrics.observe('ns/a', view([member(0, {}), member(1, {})], 1), []);
    assert.equal((await series(registry, 'etcd_robustness_cluster_leader_changes_total'))[0]?.value, 0);
  });
});

describe('quota', () => {
  test('parseQuotaBytes reads etcd’s text format', () => {
    const text = [
      '# HELP etcd_server_quota_backend_bytes Current backend storage quota size in bytes.',
      '# TYPE etcd_server_quota_backend_bytes gauge',
      'etcd_server_quota_backend_bytes 2.147483648e+09',
      'etcd_server_quota_backend_bytes_total 7',
    ].join('\n');
    assert.equal(parseQuotaBytes(text), 2147483648);
    assert.equal(parseQuotaBytes('etcd_server_quota_backend_bytes{a="b"} 1024\n'), 1024);
    assert.equal(parseQuotaBytes('etcd_server_has_leader 1\n'), undefined);
    assert.equal(parseQuotaBytes('etcd_server_quota_backend_bytes NaN\n'), undefined);
  });

  test('QuotaCache reads each member at most once per interval, without the caller waiting', async () => {
    const reads: string[] = [];
    const cache = new QuotaCache({
      intervalMs: 30_000,
      read: (url) => {
        reads.push(url);
        return Promise.resolve(url.endsWith('2379') ? 8e9 : undefined);
      },
    });
    const placed = [0, 1].map(placedMember);
    assert.equal(cache.current('ns/c', placed, 1000).size, 0, 'nothing read yet on the first call');
    await cache.settled();
    assert.deepEqual([...cache.current('ns/c', placed, 2000)], [['m0', 8e9]]);
    assert.equal(reads.length, 2);
    cache.current('ns/c', placed, 31_001);
    assert.equal(reads.length, 4, 'read again once the interval passed');
    await cache.settled();
    // A member gone from the placement is dropped.
    assert.deepEqual([...cache.current('ns/c', [placedMember(1)], 31_002)], []);
    cache.forget('ns/c');
    cache.current('ns/c', placed, 31_003);
    assert.equal(reads.length, 6, 'a forgotten cluster is read again');
    await cache.settled();
  });
});
