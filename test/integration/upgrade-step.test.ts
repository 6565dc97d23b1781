// One upgrade step against a real kube-apiserver, for what the end-to-end upgrade does not reach: a roll-back
// asked for while a gate run is still running stops that run (its RobustnessRun is deleted, which heals
// its faults) and records the gate as cancelled; the step needs no member to act on, so no etcd runs here.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { upgradeStep } from '../../src/controller/etcdcluster/upgrade.ts';
import { CustomResources } from '../../src/controller/kube-api.ts';
import type { EtcdCluster, EtcdClusterStatus, MemberPlacement, RobustnessRunResource } from '../../src/domain/index.ts';
import { etcdClusterPlural, robustnessRunPlural } from '../../src/domain/index.ts';
import type { EtcdView } from '../../src/controller/etcdcluster/observe.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { installCrds, kubectlOk } from '../helpers/operator.ts';

const namespace = 'upgrade-step';
let apiserver: TestApiserver | undefined;

before(async () => {
  apiserver = await TestApiserver.start();
  await installCrds(apiserver);
  await kubectlOk(apiserver, ['create', 'namespace', namespace]);
});

after(async () => {
  await apiserver?.close();
});

/** Three members: c-1 on the new version (upgraded first), c-2 and c-0 (the leader) on the old one. */
const etcd: EtcdView = {
  clusterId: '1',
  leaderId: '100',
  members: ['100', '101', '102'].map((id, i) => ({
    id,
    name: `c-${i}`,
    peerUrls: [`http://127.0.0.1:${2380 + i}`],
    clientUrls: [`http://127.0.0.1:${2379 + i * 10}`],
    isLearner: false,
    status: { revision: 10, version: i === 1 ? '3.6.16' : '3.5.35', raftIndex: 20, hasLeader: true, dbSize: 1 },
  })),
};

test('a roll-back during a running gate deletes the gate run and records the gate as cancelled', async () => {
  assert.ok(apiserver);
  const runs = new CustomResources<RobustnessRunResource>(apiserver.kubeConfig, robustnessRunPlural);
  const clusters = new CustomResources<EtcdCluster>(apiserver.kubeConfig, etcdClusterPlural);
  await kubectlOk(
    apiserver,
    ['-n', namespace, 'apply', '-f', '-'],
    `apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata: { name: c-u1-after-c-1 }
spec: { clusterRef: { name: c } }
`,
  );
  await kubectlOk(
    apiserver,
    ['-n', namespace, 'apply', '-f', '-'],
    `apiVersion: etcd.robustness.io/v1alpha1
kind: EtcdCluster
metadata: { name: c }
spec:
  version: "3.5.35"
  upgradeGate: { runRef: { name: nightly } }
`,
  );
  const stored = (await clusters.get(namespace, 'c'))!;
  const status: EtcdClusterStatus = {
    upgrade: {
      number: 1,
      from: '3.5.35',
      to: '3.6.16',
      phase: 'Progressing',
      order: ['c-1', 'c-2', 'c-0'],
      step: 'gate:after-c-1',
      startedAt: '2026-11-25T12:00:00Z',
      gates: [{ step: 'after-c-1', run: 'c-u1-after-c-1', phase: 'Running', startedAt: '2026-11-25T12:01:00Z' }],
    },
  };
  const events: string[] = [];
  const placed = etcd.members.map((m, i) => ({ name: m.name, clientUrl: m.clientUrls[0]!, peerUrl: m.peerUrls[0]!, state: 'running' as const, since: '2026-11-25T12:00:00Z', version: i === 1 ? '3.6.16' : '3.5.35' }));
  const outcome = await upgradeStep({
    cluster: { ...stored, status },
    etcd,
    placed,
    settled: true,
    runs,
    // The step under test touches no member: any call on the placement fails the test.
    placement: new Proxy({} as MemberPlacement<EtcdCluster>, { get: (_t, name) => () => assert.fail(`placement.${String(name)} called`) }),
    clientTls: undefined,
    event: async (_type, reason) => {
      events.push(reason);
      await Promise.resolve();
    },
    now: new Date('2026-11-25T12:02:00Z'),
  });
  assert.equal(outcome.decision.kind, 'startRollback');
  assert.equal(outcome.upgrade?.phase, 'RollingBack');
  assert.deepEqual(outcome.upgrade?.gates.map((g) => [g.run, g.phase, g.reason]), [['c-u1-after-c-1', 'Failed', 'cancelled: the upgrade is rolled back']]);
  assert.equal(await runs.get(namespace, 'c-u1-after-c-1'), undefined, 'the gate run is deleted');
  assert.deepEqual(events, ['UpgradeRollingBack']);
  assert.equal(outcome.upgrading.status, 'True');
  assert.equal(outcome.blocked.status, 'False');
});
