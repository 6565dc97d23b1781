// A gated rolling upgrade end to end, on real etcd binaries of two versions (v3.5.35 and v3.6.16, built by
// test/bin/build.sh), a real kube-apiserver and the real operator with the local runtime. One cluster
// goes through, in order:
//   1. an invalid path (3.5 → 3.7 skips a minor): refused, UpgradeBlocked/InvalidUpgradePath, nothing touched;
//   2. an upgrade whose gate fails (the gate run's self-test makes reads stale: a linearizability
//      violation): it stops with exactly one member upgraded, UpgradeBlocked/GateFailed, the HTTP gate
//      answers 503 and the metric says blocked; resumed once (the gate runs again and fails again); then
//      rolled back by setting spec.version back: every member runs 3.5.35 again;
//   3. the upgrade with a good gate (traffic with kills and pauses in each gate run, minDuration 8s) under
//      a separate RobustnessRun driving traffic through the whole upgrade: gates before, after the first
//      two members and at the end pass, followers go first and the leader last (after a leader transfer),
//      every member runs 3.6.16, and the background run's checker finds the history linearizable.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Operator } from '../../src/controller/operator.ts';
import type { EtcdCluster, RobustnessRunResource } from '../../src/domain/index.ts';
import { etcdBinaries } from '../../src/local/index.ts';
import type { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, kubectlJson, kubectlOk, LocalOperatorEnvironment, samples, scrape } from '../helpers/operator.ts';

const namespace = 'upgrade-e2e';
const previous = etcdBinaries('previous').version.replace(/^v/, '');
const current = etcdBinaries('current').version.replace(/^v/, '');

const clusterManifest = (gateSpec: string): string => `
apiVersion: etcd.robustness.io/v1alpha1
kind: EtcdCluster
metadata: { name: up }
spec:
  version: "${previous}"
  replicas: 3
  image: { failpoints: true }
  memberGracePeriod: 2m
  upgradeGate:
    minDuration: 8s
    before: false
    afterEachMember: true
    atEnd: true
    criteria: { watchChecks: true, minAvailability: 0.8, maxUnknownRate: 0.1 }
    runTemplate:
      spec:
${gateSpec}
`;

// The failing gate: reads are sent to a lagging member and recorded as linearizable ones.
const failingGate = `        duration: 4s
        mode: exclusive
        abortOnViolation: true
        traffic: { qps: { target: 100 } }
        selfTest: { staleReads: {} }`;

// The good gate: traffic with kills and pauses of followers, one fault at a time (faults on the leader
// would move leadership at random, and the test checks the transfer before the leader's own upgrade).
const goodGate = {
  duration: '8s',
  mode: 'shared',
  traffic: { qps: { target: 150 } },
  faults: { allowShared: true, maxConcurrentFaults: 1, interval: { min: '2s', max: '3s' }, duration: { min: '500ms', max: '1s' }, choices: [{ fault: 'kill', target: 'follower' }, { fault: 'pause', target: 'follower' }] },
};

const backgroundRun = `
apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata: { name: during-upgrade }
spec:
  clusterRef: { name: up }
  mode: shared
  duration: 120s
  traffic: { qps: { target: 50 } }
`;

// Labelled as a gate run of this cluster's upgrade 1, against no cluster (it never runs).
const oldGateRun = `
apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata:
  name: up-u1-before
  labels: { etcd.robustness.io/upgrade-gate-of: up, etcd.robustness.io/upgrade: "1" }
spec:
  clusterRef: { name: no-such-cluster }
`;

let env: LocalOperatorEnvironment | undefined;
let apiserver: TestApiserver | undefined;
let operator: Operator | undefined;

before(async () => {
  env = await LocalOperatorEnvironment.start(namespace, 'upgrade-e2e');
  ({ apiserver, operator } = env);
});

after(async () => {
  // Runs stop (healing their faults) with the operator; the members stop with the placement.
  await env?.close();
});

const getCluster = async (): Promise<EtcdCluster | undefined> => (apiserver ? kubectlJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', 'up']) : undefined);
const condition = (cluster: EtcdCluster | undefined, type: string) => cluster?.status?.conditions?.find((c) => c.type === type);
const versions = (cluster: EtcdCluster | undefined): string[] => (cluster?.status?.members ?? []).map((m) => m.version ?? '?').sort();
const describe = async (): Promise<string> => {
  const cluster = await getCluster();
  return JSON.stringify({ members: cluster?.status?.members, upgrade: cluster?.status?.upgrade, conditions: cluster?.status?.conditions });
};
const patchCluster = async (patch: object): Promise<void> => {
  await kubectlOk(apiserver!, ['-n', namespace, 'patch', 'etcdcluster', 'up', '--type=merge', '-p', JSON.stringify(patch)]);
};
const eventReasons = async (): Promise<string[]> => {
  const list = await kubectlJson<{ items: { reason?: string; regarding?: { name?: string }; note?: string }[] }>(apiserver!, ['-n', namespace, 'get', 'events.events.k8s.io']);
  return (list?.items ?? []).filter((e) => e.regarding?.name === 'up').map((e) => e.reason ?? '');
};
const gateAnswer = async (): Promise<{ status: number; body: { passing: boolean; reason: string } }> => {
  const url = new URL(`/gates/etcdclusters/${namespace}/up`, operator!.metricsUrl);
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as { passing: boolean; reason: string } };
};
const metric = async (name: string): Promise<number | undefined> =>
  samples(await scrape(operator!.metricsUrl), name).find((s) => s.labels['cluster'] === `${namespace}/up`)?.value;

test('a gated rolling upgrade from etcd 3.5 to 3.6: refused path, failing gate, resume, roll-back, then a passing upgrade under traffic and faults', { timeout: 900_000 }, async (t) => {
  assert.ok(apiserver && operator);
  assert.notEqual(previous, current, 'two etcd versions are needed (test/bin/build.sh builds them)');
  await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], clusterManifest(failingGate));
  await eventually('3 members serving 3.5', 180_000, async () => {
    const c = await getCluster();
    return c?.status?.readyMembers === 3 && versions(c).every((v) => v === previous) && c.status.phase === 'Running' ? c : undefined;
  }, describe, 500);

  await t.test('an upgrade that skips a minor version is refused and touches nothing', async () => {
    await patchCluster({ spec: { version: '3.7.0' } });
    const refused = await eventually('the refusal', 30_000, async () => {
      const c = await getCluster();
      return c?.status?.upgrade?.phase === 'Refused' && condition(c, 'UpgradeBlocked')?.status === 'True' ? c : undefined;
    }, describe);
    assert.equal(condition(refused, 'UpgradeBlocked')?.reason, 'InvalidUpgradePath');
    assert.match(refused.status?.upgrade?.reason ?? '', /skips etcd 3\.6/);
    assert.deepEqual(versions(refused), [previous, previous, previous]);
    assert.ok((await eventReasons()).includes('UpgradeRefused'));
    assert.equal((await gateAnswer()).status, 503);
  });

  await t.test('a failing gate stops the upgrade with one member upgraded; resume runs it again; roll-back restores 3.5', async () => {
    await patchCluster({ spec: { version: current } });
    const blocked = await eventually('the upgrade blocked by its gate', 240_000, async () => {
      const c = await getCluster();
      return c?.status?.upgrade?.phase === 'Blocked' ? c : undefined;
    }, describe, 500);
    const upgrade = blocked.status!.upgrade!;
    assert.equal(upgrade.from, previous);
    assert.equal(upgrade.to, current);
    assert.equal(upgrade.gates.length, 1);
    assert.equal(upgrade.gates[0]!.phase, 'Failed');
    assert.equal(upgrade.gates[0]!.step, `after-${upgrade.order[0]}`);
    assert.match(upgrade.gates[0]!.reason ?? '', /violation/);
    const blockedCondition = condition(blocked, 'UpgradeBlocked');
    assert.equal(blockedCondition?.status, 'True');
    assert.equal(blockedCondition?.reason, 'GateFailed');
    assert.equal(condition(blocked, 'Upgrading')?.status, 'True');
    // Exactly the first member in the order runs the new version; the leader of the start is last in it.
    const byName = new Map((blocked.status?.members ?? []).map((m) => [m.name, m.version]));
    assert.equal(byName.get(upgrade.order[0]!), current, await describe());
    assert.deepEqual(upgrade.order.slice(1).map((m) => byName.get(m)), [previous, previous]);
    assert.ok((await eventReasons()).includes('UpgradeBlocked'));
    const gate = await gateAnswer();
    assert.equal(gate.status, 503);
    assert.equal(gate.body.passing, false);
    assert.match(gate.body.reason, /upgrade blocked/);
    assert.equal(await metric('etcd_robustness_upgrade_blocked'), 1);
    assert.equal(await metric('etcd_robustness_upgrade_members_upgraded'), 1);
    // Nothing moves while blocked.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const still = await getCluster();
    assert.equal(still?.status?.upgrade?.phase, 'Blocked');
    assert.deepEqual(versions(still), versions(blocked));

    // Resume: the failed gate runs again under a new name, and fails again.
    await kubectlOk(apiserver!, ['-n', namespace, 'annotate', 'etcdcluster', 'up', 'etcd.robustness.io/upgrade-resume=first']);
    const again = await eventually('the resumed gate failing again', 120_000, async () => {
      const c = await getCluster();
      const up = c?.status?.upgrade;
      return up?.phase === 'Blocked' && up.resumed === 'first' && up.gates.length === 2 ? c : undefined;
    }, describe, 500);
    assert.notEqual(again.status!.upgrade!.gates[1]!.run, again.status!.upgrade!.gates[0]!.run);
    assert.equal(again.status!.upgrade!.gates[1]!.phase, 'Failed');

    // Roll back: spec.version goes back; the upgraded member returns to 3.5.
    await patchCluster({ spec: { version: previous } });
    const rolledBack = await eventually('the roll-back', 180_000, async () => {
      const c = await getCluster();
      return c?.status?.upgrade?.phase === 'RolledBack' && versions(c).every((v) => v === previous) && c.status?.readyMembers === 3 ? c : undefined;
    }, describe, 500);
    assert.equal(condition(rolledBack, 'UpgradeBlocked')?.status, 'False');
    assert.equal(condition(rolledBack, 'Upgrading')?.status, 'False');
    assert.ok((await eventReasons()).includes('UpgradeRolledBack'));
    assert.equal(await metric('etcd_robustness_upgrade_blocked'), 0);
  });

  await t.test('a passing gate lets the upgrade through, member by member, the leader last, under traffic and faults', async () => {
    // The good gate (selfTest removed by the merge patch), and traffic checked across the whole upgrade.
    await patchCluster({ spec: { upgradeGate: { runTemplate: { spec: { ...goodGate, selfTest: null, abortOnViolation: null } } } } });
    await kubectlOk(apiserver!, ['-n', namespace, 'apply', '-f', '-'], backgroundRun);
    // A gate run of an upgrade before the previous one: the new upgrade deletes it, and keeps upgrade 2's.
    await kubectlOk(apiserver!, ['-n', namespace, 'apply', '-f', '-'], oldGateRun);
    await eventually('the background run running', 60_000, async () => {
      const run = await kubectlJson<RobustnessRunResource>(apiserver!, ['-n', namespace, 'get', 'robustnessrun', 'during-upgrade']);
      return run?.status?.phase === 'Running' ? run : undefined;
    });
    const startLeader = (await getCluster())?.status?.leader;
    await patchCluster({ spec: { version: current } });
    // Who leads while the gate before the last member runs: if that is the last member, the operator must
    // move leadership away before upgrading it (an election can also have moved it in the meantime).
    let leaderBeforeLast: string | undefined;
    const done = await eventually('the upgrade to succeed', 480_000, async () => {
      const c = await getCluster();
      if (c?.status?.upgrade?.phase === 'Blocked') assert.fail(`the upgrade blocked: ${c.status.upgrade.reason ?? ''}`);
      const order = c?.status?.upgrade?.order ?? [];
      if (order.length === 3 && c?.status?.upgrade?.step === `gate:after-${order[1]}`) leaderBeforeLast = c.status.leader;
      return c?.status?.upgrade?.phase === 'Succeeded' && c.status.upgrade.number === 3 ? c : undefined;
    }, describe, 1000);
    const upgrade = done.status!.upgrade!;
    assert.deepEqual(versions(done), [current, current, current]);
    assert.equal(upgrade.order.at(-1), startLeader, 'the leader of the start is upgraded last');
    assert.deepEqual(
      upgrade.gates.map((g) => [g.step, g.phase]),
      [[`after-${upgrade.order[0]}`, 'Passed'], [`after-${upgrade.order[1]}`, 'Passed'], ['end', 'Passed']],
    );
    for (const gate of upgrade.gates) {
      assert.equal(gate.verdict, 'linearizable');
      assert.ok((gate.availability ?? 0) >= 0.8, `gate ${gate.step}: availability ${gate.availability}`);
    }
    const reasons = await eventReasons();
    for (const reason of ['UpgradeStarted', 'GateStarted', 'GatePassed', 'MemberUpgraded', 'UpgradeCompleted']) assert.ok(reasons.includes(reason), `Event ${reason} in ${reasons.join(', ')}`);
    assert.ok(leaderBeforeLast !== undefined, 'the leader was observed during the gate before the last member');
    if (leaderBeforeLast === upgrade.order.at(-1)) assert.ok(reasons.includes('LeaderTransferred'), `the last member led before its upgrade: Event LeaderTransferred in ${reasons.join(', ')}`);
    assert.equal(condition(done, 'Upgrading')?.status, 'False');
    assert.equal(condition(done, 'UpgradeBlocked')?.status, 'False');
    const gate = await gateAnswer();
    assert.equal(gate.status, 200, JSON.stringify(gate.body));
    assert.equal(await metric('etcd_robustness_upgrade_members_upgraded'), 3);
    assert.equal(await kubectlJson(apiserver!, ['-n', namespace, 'get', 'robustnessrun', 'up-u1-before']), undefined, 'the gate run of upgrade 1 was deleted');
    assert.ok(await kubectlJson(apiserver!, ['-n', namespace, 'get', 'robustnessrun', `up-u2-after-${upgrade.order[0]}`]), 'the gate runs of upgrade 2 are kept');
    // Every gate run drove traffic with faults in place.
    for (const g of upgrade.gates) {
      const run = await kubectlJson<RobustnessRunResource>(apiserver!, ['-n', namespace, 'get', 'robustnessrun', g.run]);
      assert.ok((run?.status?.faults?.injected ?? 0) > 0, `gate run ${g.run} injected faults: ${JSON.stringify(run?.status)}`);
      assert.equal(run?.metadata.ownerReferences?.[0]?.name, 'up');
    }

    // The traffic that ran through the whole upgrade is linearizable, its watches valid.
    const background = await eventually('the background run to finish', 400_000, async () => {
      const run = await kubectlJson<RobustnessRunResource>(apiserver!, ['-n', namespace, 'get', 'robustnessrun', 'during-upgrade']);
      return run?.status?.phase !== undefined && run.status.phase !== 'Running' && run.status.phase !== 'Pending' ? run : undefined;
    }, undefined, 2000);
    assert.equal(background.status?.phase, 'Passed', JSON.stringify(background.status));
    assert.equal(background.status?.verdict, 'linearizable');
    assert.ok((background.status?.operations?.ok ?? 0) > 1000, JSON.stringify(background.status?.operations));
  });
});
