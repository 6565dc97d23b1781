// The rolling upgrade's one-step decision (planUpgrade) and its helpers: examples pin each decision, and a
// fast-check simulation drives the planner against a small model of a cluster (members restarting on a new
// version, gate runs finishing Passed or Failed, leader elections, a user resuming or rolling back, and
// planner restarts that lose a decision) and checks the upgrade's safety and progress properties.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { GateResult, PlacedMember, RobustnessRunStatus, UpgradeGateSpec, UpgradeStatus } from '../../src/domain/index.ts';
import type { EtcdMemberView, EtcdView } from '../../src/controller/etcdcluster/observe.ts';
import { gateRunSpec, upgradeMembers } from '../../src/controller/etcdcluster/upgrade.ts';
import {
  checkUpgradePath,
  compareVersions,
  gateRunName,
  normalizeGate,
  parseVersion,
  planUpgrade,
  upgradeSteps,
  type UpgradeDecision,
  type UpgradeInput,
  type UpgradeMember,
} from '../../src/controller/etcdcluster/upgrade-plan.ts';
import { ClusterModel, type ModelConfig } from '../helpers/upgrade-model.ts';

const FROM = '3.5.35';
const TO = '3.6.6';
const now = new Date('2026-11-25T12:00:00.123Z');

function member(name: string, changes: Partial<UpgradeMember> = {}): UpgradeMember {
  return { name, id: String(100 + Number(name.slice(-1))), version: FROM, placedVersion: FROM, healthy: true, leader: false, learner: false, ...changes };
}

/** c-0, c-1, c-2 at FROM with c-0 the leader. */
const trio = (): UpgradeMember[] => [member('c-0', { leader: true }), member('c-1'), member('c-2')];

const fullGate = (): UpgradeGateSpec => normalizeGate({})!;

function upgrade(changes: Partial<UpgradeStatus> = {}): UpgradeStatus {
  return { number: 1, from: FROM, to: TO, phase: 'Progressing', order: ['c-1', 'c-2', 'c-0'], startedAt: '2026-11-25T11:00:00Z', gates: [], ...changes };
}

function gate(step: string, phase: GateResult['phase'], run = `c-u1-${step}`): GateResult {
  return { step, run, phase, startedAt: '2026-11-25T11:00:00Z' };
}

function input(changes: Partial<UpgradeInput> = {}): UpgradeInput {
  return { clusterName: 'c', spec: { version: TO, replicas: 3, topology: 'standard' }, gate: undefined, upgrade: undefined, members: trio(), settled: true, now, ...changes };
}

const passedRun = (ops = { ok: 990, failed: 7, unknown: 3 }): RobustnessRunStatus => ({ phase: 'Passed', verdict: 'linearizable', operations: ops });

describe('versions and paths', () => {
  test('parseVersion: with or without v, with its pre-release suffix, anything else undefined', () => {
    assert.deepEqual(parseVersion('3.6.16'), { major: 3, minor: 6, patch: 16 });
    assert.deepEqual(parseVersion('v3.6.16'), { major: 3, minor: 6, patch: 16 });
    assert.deepEqual(parseVersion(' 3.6.0-rc.1 '), { major: 3, minor: 6, patch: 0, pre: 'rc.1' });
    for (const bad of ['', 'x', '3.6', '3.6.1.2', 'v', '3.6.x', '3.6.1-', '3.6.1+build']) assert.equal(parseVersion(bad), undefined, bad);
  });

  test('compareVersions orders numerically, major before minor before patch', () => {
    const v = (s: string) => parseVersion(s)!;
    assert.ok(compareVersions(v('3.5.35'), v('3.6.0')) < 0);
    assert.ok(compareVersions(v('3.10.0'), v('3.9.99')) > 0);
    assert.ok(compareVersions(v('4.0.0'), v('3.99.99')) > 0);
    assert.equal(compareVersions(v('3.6.6'), v('v3.6.6')), 0);
  });

  test('compareVersions: a pre-release comes before its release, and pre-releases in numeric order', () => {
    const v = (s: string) => parseVersion(s)!;
    assert.ok(compareVersions(v('3.6.0-rc.1'), v('3.6.0')) < 0);
    assert.ok(compareVersions(v('3.6.0'), v('3.6.0-rc.1')) > 0);
    assert.ok(compareVersions(v('3.6.0-rc.2'), v('3.6.0-rc.10')) < 0);
    assert.ok(compareVersions(v('3.5.35'), v('3.6.0-alpha.0')) < 0);
    assert.equal(checkUpgradePath('3.6.0', '3.6.0-rc.1').ok, false, 'a release to its pre-release is a downgrade');
    assert.equal(checkUpgradePath('3.6.0-rc.1', '3.6.0').ok, true);
  });

  test('checkUpgradePath: patch and next-minor upgrades are fine', () => {
    assert.deepEqual(checkUpgradePath('3.5.35', '3.5.40'), { ok: true, minor: false });
    assert.deepEqual(checkUpgradePath('3.5.35', '3.6.0'), { ok: true, minor: true });
    assert.deepEqual(checkUpgradePath('3.6.6', '3.6.6'), { ok: true, minor: false });
  });

  test('checkUpgradePath: downgrades, major changes, skipped minors and non-versions are refused with a reason', () => {
    const refused = (from: string, to: string, reason: RegExp) => {
      const check = checkUpgradePath(from, to);
      assert.equal(check.ok, false, `${from} → ${to}`);
      assert.match((check as { reason: string }).reason, reason);
    };
    refused('3.6.6', '3.5.35', /3\.5\.35 is older than 3\.6\.6: a downgrade needs etcd's downgrade procedure/);
    refused('3.6.6', '3.6.5', /older than/);
    refused('3.6.6', '4.0.0', /changes the major version/);
    refused('3.4.30', '3.6.6', /skips etcd 3\.5: upgrade one minor version at a time \(first to the latest 3\.5\.x\)/);
    refused('x', '3.6.6', /the members run "x", which is not a version/);
    refused('3.6.6', 'latest', /spec\.version "latest" is not a version/);
  });

  test('property: a path is fine exactly when same major, not older and at most one minor ahead', () => {
    const version = fc.tuple(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 5 }));
    fc.assert(
      fc.property(version, version, ([fM, fm, fp], [tM, tm, tp]) => {
        const check = checkUpgradePath(`${fM}.${fm}.${fp}`, `${tM}.${tm}.${tp}`);
        const older = tM < fM || (tM === fM && (tm < fm || (tm === fm && tp < fp)));
        const expected = !older && tM === fM && tm <= fm + 1;
        assert.equal(check.ok, expected);
        if (check.ok) assert.equal(check.minor, tm !== fm);
      }),
    );
  });
});

describe('upgradeSteps, gateRunName, normalizeGate', () => {
  const names = (steps: ReturnType<typeof upgradeSteps>) => steps.map((s) => (s.kind === 'gate' ? `gate:${s.step}` : `member:${s.member}`));
  const order = ['a', 'b', 'c'];

  test('without a gate: the members in order', () => {
    assert.deepEqual(names(upgradeSteps(order, undefined)), ['member:a', 'member:b', 'member:c']);
  });

  test('every gate: before, after each member but the last, and the end', () => {
    assert.deepEqual(names(upgradeSteps(order, fullGate())), ['gate:before', 'member:a', 'gate:after-a', 'member:b', 'gate:after-b', 'member:c', 'gate:end']);
  });

  test('after each member without atEnd: the last member has its own after gate', () => {
    const g = { ...fullGate(), before: false, atEnd: false };
    assert.deepEqual(names(upgradeSteps(order, g)), ['member:a', 'gate:after-a', 'member:b', 'gate:after-b', 'member:c', 'gate:after-c']);
  });

  test('before and end only', () => {
    const g = { ...fullGate(), afterEachMember: false };
    assert.deepEqual(names(upgradeSteps(order, g)), ['gate:before', 'member:a', 'member:b', 'member:c', 'gate:end']);
    assert.deepEqual(names(upgradeSteps([], g)), ['gate:before', 'gate:end']);
  });

  test('gateRunName: cluster, upgrade number, step, and -r<n> for retries', () => {
    assert.equal(gateRunName('c', 1, 'before', 0), 'c-u1-before');
    assert.equal(gateRunName('c', 12, 'after-c-1', 2), 'c-u12-after-c-1-r2');
  });

  test('gateRunName: a long name is cut to at most 200 characters', () => {
    const name = gateRunName('x'.repeat(150), 1, `after-${'x'.repeat(150)}-0`, 0);
    assert.ok(name.length <= 200);
    assert.ok(name.startsWith('x'.repeat(150)));
  });

  test('property: gate run names of short clusters are distinct for distinct (upgrade, step, attempt)', () => {
    const key = fc.tuple(fc.integer({ min: 1, max: 30 }), fc.constantFrom('before', 'end', 'after-c-0', 'after-c-1', 'after-c-10'), fc.nat({ max: 12 }));
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,40}$/), key, key, (cluster, a, b) => {
        fc.pre(a.join('|') !== b.join('|'));
        assert.notEqual(gateRunName(cluster, ...a), gateRunName(cluster, ...b));
      }),
    );
  });

  test('normalizeGate: undefined stays undefined; defaults fill what is absent and keep what is set', () => {
    assert.equal(normalizeGate(undefined), undefined);
    assert.deepEqual(normalizeGate({}), {
      minDuration: '30s',
      before: true,
      afterEachMember: true,
      atEnd: true,
      criteria: { watchChecks: true, minAvailability: 0.95, maxUnknownRate: 0.05 },
    });
    const set = normalizeGate({ minDuration: '2m', before: false, afterEachMember: false, atEnd: false, criteria: { watchChecks: false, minAvailability: 0.5, maxUnknownRate: 0 }, runRef: { name: 'r' } });
    assert.deepEqual(set, { minDuration: '2m', before: false, afterEachMember: false, atEnd: false, criteria: { watchChecks: false, minAvailability: 0.5, maxUnknownRate: 0 }, runRef: { name: 'r' } });
    assert.deepEqual(normalizeGate({ runTemplate: { spec: { duration: '1m' } } })?.runTemplate, { spec: { duration: '1m' } });
  });
});

describe('planUpgrade: before an upgrade', () => {
  test('nothing to do when every member runs spec.version', () => {
    assert.deepEqual(planUpgrade(input({ spec: { version: FROM, replicas: 3, topology: 'standard' } })), { kind: 'none' });
  });

  test('a silent member: wait (nothing once that version is the last upgrade\'s target, or without members)', () => {
    const members = [member('c-0', { leader: true }), member('c-1', { version: undefined, healthy: false }), member('c-2')];
    assert.deepEqual(planUpgrade(input({ members })), { kind: 'wait', reason: 'waiting for c-1 to answer before the upgrade starts' });
    assert.deepEqual(planUpgrade(input({ members, upgrade: upgrade({ phase: 'Succeeded' }) })), { kind: 'none' });
    assert.deepEqual(planUpgrade(input({ members: [] })), { kind: 'none' });
  });

  test('members on different versions and no upgrade recorded: wait', () => {
    const members = [member('c-0', { leader: true }), member('c-1', { version: '3.5.36' }), member('c-2')];
    assert.deepEqual(planUpgrade(input({ members })), { kind: 'wait', reason: 'the members run different versions (3.5.35, 3.5.36) and no upgrade is recorded' });
  });

  test('an invalid path is refused once, with a Refused status numbered after the last upgrade', () => {
    const decision = planUpgrade(input({ spec: { version: '3.4.30', replicas: 3, topology: 'standard' }, upgrade: upgrade({ phase: 'Succeeded', number: 4 }) }));
    assert.equal(decision.kind, 'refuse');
    assert.equal(decision.upgrade.phase, 'Refused');
    assert.equal(decision.upgrade.number, 5);
    assert.equal(decision.upgrade.from, FROM);
    assert.equal(decision.upgrade.to, '3.4.30');
    assert.equal(decision.upgrade.startedAt, '2026-11-25T12:00:00Z');
    assert.match(decision.reason, /older than/);
    assert.equal(decision.upgrade.reason, decision.reason);
    // Recorded: not refused again.
    assert.deepEqual(planUpgrade(input({ spec: { version: '3.4.30', replicas: 3, topology: 'standard' }, upgrade: decision.upgrade })), { kind: 'none' });
    // A skipped minor.
    const skip = planUpgrade(input({ spec: { version: '3.7.0', replicas: 3, topology: 'standard' } }));
    assert.equal(skip.kind, 'refuse');
    assert.match(skip.reason, /skips etcd 3\.6/);
  });

  test('after a refusal, a valid version starts an upgrade', () => {
    const refused = upgrade({ phase: 'Refused', to: '3.7.0', number: 2 });
    const decision = planUpgrade(input({ upgrade: refused }));
    assert.equal(decision.kind, 'start');
    assert.equal(decision.upgrade.number, 3);
  });

  test('the twoNodeWitness topology is refused', () => {
    const decision = planUpgrade(input({ spec: { version: TO, replicas: 2, topology: 'twoNodeWitness' } }));
    assert.equal(decision.kind, 'refuse');
    assert.match(decision.reason, /twoNodeWitness/);
  });

  test('not settled, or a member not serving: wait', () => {
    assert.equal(planUpgrade(input({ settled: false })).kind, 'wait');
    const members = [member('c-0', { leader: true }), member('c-1', { healthy: false }), member('c-2')];
    assert.deepEqual(planUpgrade(input({ members })), { kind: 'wait', reason: 'the upgrade starts once every member serves (not serving: c-1)' });
  });

  test('start: followers sorted, the leader last, learners left out', () => {
    const members = [member('c-3', { learner: true, version: undefined }), member('c-2'), member('c-1', { leader: true }), member('c-0')];
    const decision = planUpgrade(input({ members }));
    assert.deepEqual(decision, {
      kind: 'start',
      upgrade: { number: 1, from: FROM, to: TO, phase: 'Progressing', order: ['c-0', 'c-2', 'c-1'], startedAt: '2026-11-25T12:00:00Z', gates: [] },
    });
  });
});

describe('planUpgrade: in progress', () => {
  test('spec.version neither from nor to: wait, blocked', () => {
    const decision = planUpgrade(input({ spec: { version: '3.6.7', replicas: 3, topology: 'standard' }, upgrade: upgrade() }));
    assert.equal(decision.kind, 'wait');
    assert.equal(decision.blocked, true);
    assert.match(decision.reason, /set spec\.version back to 3\.6\.6 to go on, or to 3\.5\.35 to roll back/);
  });

  test('the gate before comes first; its run name carries the upgrade number', () => {
    assert.deepEqual(planUpgrade(input({ gate: fullGate(), upgrade: upgrade({ number: 3 }) })), { kind: 'startGate', step: 'before', run: 'c-u3-before' });
  });

  test('a running gate: wait for its run, judge it once finished', () => {
    const up = upgrade({ gates: [gate('before', 'Running')], step: 'gate:before' });
    const at = (gateRun: UpgradeInput['gateRun']) => planUpgrade(input({ gate: fullGate(), upgrade: up, gateRun }));
    assert.deepEqual(at(undefined), { kind: 'wait', reason: 'gate before: waiting for run c-u1-before' });
    assert.equal(at({ name: 'other', exists: true, status: passedRun() }).kind, 'wait');
    assert.deepEqual(at({ name: 'c-u1-before', exists: true, status: { phase: 'Running' } }), { kind: 'wait', reason: 'gate before: run c-u1-before is Running' });
    assert.deepEqual(at({ name: 'c-u1-before', exists: true }), { kind: 'wait', reason: 'gate before: run c-u1-before is Pending' });
  });

  test('a passed gate run: gateFinished Passed with its figures rounded to 6 digits and finishedAt', () => {
    const up = upgrade({ gates: [gate('before', 'Running')] });
    const decision = planUpgrade(input({ gate: fullGate(), upgrade: up, gateRun: { name: 'c-u1-before', exists: true, status: passedRun({ ok: 2999, failed: 0, unknown: 1 }) } }));
    assert.equal(decision.kind, 'gateFinished');
    assert.deepEqual(decision.result, {
      step: 'before',
      run: 'c-u1-before',
      phase: 'Passed',
      startedAt: '2026-11-25T11:00:00Z',
      finishedAt: '2026-11-25T12:00:00Z',
      verdict: 'linearizable',
      availability: 0.999667,
      unknownRate: 0.000333,
      reason: decision.result.reason,
    });
    assert.match(decision.result.reason!, /^linearizable, watch checks passed/);
  });

  test('a failed gate run, by verdict or by the gate criteria: gateFinished Failed', () => {
    const up = upgrade({ gates: [gate('before', 'Running')] });
    const violation = planUpgrade(input({ gate: fullGate(), upgrade: up, gateRun: { name: 'c-u1-before', exists: true, status: { phase: 'Failed', verdict: 'violation' } } }));
    assert.equal(violation.kind, 'gateFinished');
    assert.equal(violation.result.phase, 'Failed');
    assert.equal(violation.result.verdict, 'violation');
    const strictGate = { ...fullGate(), criteria: { watchChecks: true, minAvailability: 0.999, maxUnknownRate: 0.05 } };
    const low = planUpgrade(input({ gate: strictGate, upgrade: up, gateRun: { name: 'c-u1-before', exists: true, status: passedRun() } }));
    assert.equal(low.kind, 'gateFinished');
    assert.equal(low.result.phase, 'Failed');
    assert.match(low.result.reason!, /availability 0\.99 is below 0\.999/);
  });

  test('a gate run deleted before it finished fails the gate', () => {
    const decision = planUpgrade(input({ gate: fullGate(), upgrade: upgrade({ gates: [gate('before', 'Running')] }), gateRun: { name: 'c-u1-before', exists: false } }));
    assert.equal(decision.kind, 'gateFinished');
    assert.equal(decision.result.phase, 'Failed');
    assert.equal(decision.result.reason, 'the gate run c-u1-before was deleted before it finished');
  });

  test('Blocked: wait (blocked) until the resume annotation changes', () => {
    const up = upgrade({ phase: 'Blocked', reason: 'gate before failed', resumed: 'one', gates: [gate('before', 'Failed')] });
    for (const resume of [undefined, '', 'one']) {
      const decision = planUpgrade(input({ gate: fullGate(), upgrade: up, resume }));
      assert.equal(decision.kind, 'wait', String(resume));
      assert.equal(decision.blocked, true);
      assert.match(decision.reason, /^blocked: gate before failed; change the etcd\.robustness\.io\/upgrade-resume annotation to retry, or set spec\.version to 3\.5\.35 to roll back$/);
    }
    assert.deepEqual(planUpgrade(input({ gate: fullGate(), upgrade: up, resume: 'two' })), { kind: 'resume', token: 'two' });
  });

  test('resumed after a failed gate: the gate runs again under a retry name', () => {
    const up = upgrade({ resumed: 'two', gates: [gate('before', 'Failed'), gate('before', 'Failed', 'c-u1-before-r1')] });
    assert.deepEqual(planUpgrade(input({ gate: fullGate(), upgrade: up, resume: 'two' })), { kind: 'startGate', step: 'before', run: 'c-u1-before-r2' });
  });

  test('the first member: a follower is upgraded without a leader transfer', () => {
    const up = upgrade({ gates: [{ ...gate('before', 'Passed') }] });
    assert.deepEqual(planUpgrade(input({ gate: fullGate(), upgrade: up })), { kind: 'upgradeMember', member: 'c-1', version: TO });
    // Without a gate the first step is the first member.
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade() })), { kind: 'upgradeMember', member: 'c-1', version: TO });
  });

  test('a member placed on the new version that does not serve it yet: wait; then memberUpgraded once', () => {
    const up = upgrade({ step: 'member:c-1' });
    const restarting = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: undefined, healthy: false }), member('c-2')];
    assert.deepEqual(planUpgrade(input({ upgrade: up, members: restarting })), { kind: 'wait', reason: `waiting for c-1 to serve ${TO}` });
    const oldStill = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO }), member('c-2')];
    assert.deepEqual(planUpgrade(input({ upgrade: up, members: oldStill })), { kind: 'wait', reason: `waiting for c-1 to serve ${TO}` });
    const served = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: TO }), member('c-2')];
    assert.deepEqual(planUpgrade(input({ upgrade: up, members: served })), { kind: 'memberUpgraded', member: 'c-1' });
    // Once the step is cleared, the next member.
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade(), members: served })), { kind: 'upgradeMember', member: 'c-2', version: TO });
  });

  test('after a member, its gate; while another member does not serve, no member is touched', () => {
    const served = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: TO }), member('c-2')];
    const up = upgrade({ gates: [gate('before', 'Passed')] });
    assert.deepEqual(planUpgrade(input({ gate: fullGate(), upgrade: up, members: served })), { kind: 'startGate', step: 'after-c-1', run: 'c-u1-after-c-1' });
    const sick = [member('c-0', { leader: true, healthy: false }), member('c-1', { placedVersion: TO, version: TO }), member('c-2')];
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade(), members: sick })), { kind: 'wait', reason: 'waiting for c-0 to serve before upgrading c-2' });
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade(), members: served, settled: false })), { kind: 'wait', reason: 'waiting for the cluster to be steady before touching c-2' });
  });

  test('the leader: leadership moves first, to a member on the new version', () => {
    const members = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: TO }), member('c-2', { placedVersion: TO, version: TO })];
    const members2 = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: TO, healthy: true }), member('c-2', { placedVersion: TO, version: TO })];
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade(), members })), { kind: 'transferLeader', from: 'c-0', to: 'c-1', toId: '101' });
    // A learner is never the target; an old-version member only when no upgraded one serves.
    const mixed = [member('c-0', { leader: true }), member('c-1'), member('c-2', { placedVersion: TO, version: TO }), member('c-3', { learner: true, version: TO, placedVersion: TO })];
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade({ order: ['c-0'] }), members: mixed })), { kind: 'transferLeader', from: 'c-0', to: 'c-2', toId: '102' });
    const moved = members2.map((m) => ({ ...m, leader: m.name === 'c-1' }));
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade(), members: moved })), { kind: 'upgradeMember', member: 'c-0', version: TO });
  });

  test('a single member is upgraded while leader (there is nobody to take over)', () => {
    const up = upgrade({ order: ['c-0'] });
    assert.deepEqual(planUpgrade(input({ upgrade: up, members: [member('c-0', { leader: true })] })), { kind: 'upgradeMember', member: 'c-0', version: TO });
  });

  test('a member that left the cluster blocks the upgrade', () => {
    assert.deepEqual(planUpgrade(input({ upgrade: upgrade(), members: [member('c-0', { leader: true }), member('c-2')] })), { kind: 'block', reason: 'member c-1 left the cluster during the upgrade' });
  });

  test('every member served and every gate passed: Succeeded', () => {
    const done = trio().map((m) => ({ ...m, placedVersion: TO, version: TO }));
    const gates = ['before', 'after-c-1', 'after-c-2', 'end'].map((s) => gate(s, 'Passed'));
    assert.deepEqual(planUpgrade(input({ gate: fullGate(), upgrade: upgrade({ gates }), members: done })), { kind: 'finish', phase: 'Succeeded' });
    // The end gate is still missing.
    assert.deepEqual(planUpgrade(input({ gate: fullGate(), upgrade: upgrade({ gates: gates.slice(0, 3) }), members: done })), { kind: 'startGate', step: 'end', run: 'c-u1-end' });
  });
});

describe('planUpgrade: roll-back', () => {
  const back = (changes: Partial<UpgradeInput>) => input({ spec: { version: FROM, replicas: 3, topology: 'standard' }, ...changes });

  test('spec.version back to from: startRollback, from Progressing or Blocked', () => {
    const members = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: TO }), member('c-2')];
    assert.deepEqual(planUpgrade(back({ upgrade: upgrade(), members })), { kind: 'startRollback' });
    assert.deepEqual(planUpgrade(back({ upgrade: upgrade({ phase: 'Blocked', reason: 'x' }), members })), { kind: 'startRollback' });
  });

  test('refused once every member runs the new minor', () => {
    const all = trio().map((m) => ({ ...m, placedVersion: TO, version: TO }));
    const decision = planUpgrade(back({ upgrade: upgrade(), members: all }));
    assert.equal(decision.kind, 'wait');
    assert.equal(decision.blocked, true);
    assert.match(decision.reason, /^every member runs 3\.6\.6, so etcd's cluster version moved to 3\.6: going back to 3\.5\.35 needs etcd's downgrade procedure/);
  });

  test('a patch upgrade can be rolled back even once every member runs it', () => {
    const all = trio().map((m) => ({ ...m, placedVersion: '3.5.40', version: '3.5.40' }));
    assert.deepEqual(planUpgrade(back({ upgrade: upgrade({ to: '3.5.40' }), members: all })), { kind: 'startRollback' });
  });

  test('rolling back: followers in reverse upgrade order, members never upgraded left alone, the leader last after a transfer', () => {
    const up = upgrade({ phase: 'RollingBack' });
    // Order c-1, c-2, c-0 (leader); c-1 and c-2 upgraded, c-0 not.
    const two = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: TO }), member('c-2', { placedVersion: TO, version: TO })];
    assert.deepEqual(planUpgrade(back({ upgrade: up, members: two })), { kind: 'rollbackMember', member: 'c-2', version: FROM });
    // c-2 placed back on from but still reporting to: wait for it.
    const c2back = two.map((m) => (m.name === 'c-2' ? { ...m, placedVersion: FROM } : m));
    assert.deepEqual(planUpgrade(back({ upgrade: up, members: c2back })), { kind: 'wait', reason: `waiting for c-2 to serve ${FROM}` });
    // c-1 now the leader and the last one upgraded: it moves leadership to a member on from first.
    const c1leader = [member('c-0'), member('c-1', { placedVersion: TO, version: TO, leader: true }), member('c-2')];
    assert.deepEqual(planUpgrade(back({ upgrade: up, members: c1leader })), { kind: 'transferLeader', from: 'c-1', to: 'c-0', toId: '100' });
    // Not settled: wait.
    assert.equal(planUpgrade(back({ upgrade: up, members: two, settled: false })).kind, 'wait');
    // Nothing left on to: RolledBack.
    assert.deepEqual(planUpgrade(back({ upgrade: up, members: trio() })), { kind: 'finish', phase: 'RolledBack' });
  });

  test('rolling back with spec.version set to to again: wait', () => {
    const decision = planUpgrade(input({ upgrade: upgrade({ phase: 'RollingBack' }) }));
    assert.deepEqual(decision, { kind: 'wait', reason: `the roll-back to ${FROM} is in progress: set spec.version to ${FROM} to finish it` });
  });
});

describe('gateRunSpec and upgradeMembers', () => {
  test('a short duration is raised to minDuration; a timeout no longer than it is dropped', () => {
    const spec = gateRunSpec({ duration: '10s', timeout: '30s', seed: 7 }, 'c', '1m');
    assert.deepEqual(spec, { duration: '1m', seed: 7, clusterRef: { name: 'c' }, schedule: { kind: 'once' } });
    const keeps = gateRunSpec({ duration: '10s', timeout: '5m' }, 'c', '1m');
    assert.deepEqual(keeps, { duration: '1m', timeout: '5m', clusterRef: { name: 'c' }, schedule: { kind: 'once' } });
    const equal = gateRunSpec({ duration: '10s', timeout: '1m' }, 'c', '1m');
    assert.equal(equal.timeout, undefined);
  });

  test('a long enough duration and its timeout are kept; no duration means the default minute', () => {
    assert.deepEqual(gateRunSpec({ duration: '5m', timeout: '1m' }, 'c', '30s'), { duration: '5m', timeout: '1m', clusterRef: { name: 'c' }, schedule: { kind: 'once' } });
    assert.deepEqual(gateRunSpec({}, 'c', '30s'), { clusterRef: { name: 'c' }, schedule: { kind: 'once' } });
    assert.deepEqual(gateRunSpec({}, 'c', '90s'), { duration: '1m30s', clusterRef: { name: 'c' }, schedule: { kind: 'once' } });
    assert.equal(gateRunSpec({ duration: '1500ms' }, 'c', '2500ms').duration, '2s500ms');
  });

  test('clusterRef and schedule of a referenced run are replaced, and the source is not changed', () => {
    const source = { clusterRef: { name: 'other', namespace: 'x' }, schedule: { kind: 'cron' as const, cron: '* * * * *' }, duration: '2m' };
    const before = structuredClone(source);
    assert.deepEqual(gateRunSpec(source, 'c', '30s'), { duration: '2m', clusterRef: { name: 'c' }, schedule: { kind: 'once' } });
    assert.deepEqual(source, before);
  });

  test('upgradeMembers joins etcd\'s view with the placed versions', () => {
    const view = (id: string, name: string, changes: Partial<EtcdMemberView> = {}): EtcdMemberView => ({
      id,
      name,
      peerUrls: [`http://p${id}`],
      clientUrls: [`http://c${id}`],
      isLearner: false,
      status: { revision: 1, version: FROM, raftIndex: 1, hasLeader: true, dbSize: 1 },
      ...changes,
    });
    const placed = (name: string, id: string, version?: string): PlacedMember => ({
      name,
      clientUrl: `http://c${id}`,
      peerUrl: `http://p${id}`,
      state: 'running',
      since: '2026-11-25T11:00:00Z',
      ...(version === undefined ? {} : { version }),
    });
    const etcd: EtcdView = {
      clusterId: '1',
      leaderId: '11',
      members: [
        view('11', 'c-0'),
        view('12', '', { status: { revision: 1, version: TO, raftIndex: 1, hasLeader: false, dbSize: 1 } }),
        view('13', 'c-2', { status: undefined }),
        view('14', '', { isLearner: true }),
      ],
    };
    assert.deepEqual(upgradeMembers(etcd, [placed('c-0', '11', FROM), placed('c-1', '12', TO), placed('c-2', '13')]), [
      { name: 'c-0', id: '11', healthy: true, leader: true, learner: false, version: FROM, placedVersion: FROM },
      { name: 'c-1', id: '12', healthy: false, leader: false, learner: false, version: TO, placedVersion: TO },
      { name: 'c-2', id: '13', healthy: false, leader: false, learner: false },
      { name: '14', id: '14', healthy: true, leader: false, learner: true, version: FROM },
    ]);
    assert.deepEqual(upgradeMembers(undefined, [placed('c-0', '11', FROM)]), []);
  });
});

// ---------------------------------------------------------------------------------------------------
// The simulation: planUpgrade driven against test/helpers/upgrade-model.ts.

const gateArbitrary: fc.Arbitrary<UpgradeGateSpec | undefined> = fc.option(
  fc.record({ before: fc.boolean(), afterEachMember: fc.boolean(), atEnd: fc.boolean() }).map((g) => normalizeGate(g)),
  { nil: undefined, freq: 4 },
);

const configArbitrary = (changes: Partial<Record<keyof ModelConfig, fc.Arbitrary<unknown>>> = {}): fc.Arbitrary<ModelConfig> =>
  fc.constantFrom(1, 3, 5).chain((size) =>
    fc.record({
      size: fc.constant(size),
      leader: fc.nat({ max: size - 1 }),
      from: fc.constant(FROM),
      to: fc.constantFrom(TO, '3.5.40'),
      gate: gateArbitrary,
      seed: fc.integer(),
      maxFailures: fc.nat({ max: 4 }),
      failureRate: fc.constantFrom(0, 0.3, 0.6),
      crashRate: fc.constantFrom(0, 0.1, 0.3),
      electionRate: fc.constantFrom(0, 0.05, 0.2),
      unsettledRate: fc.constantFrom(0, 0.1),
      ...changes,
    } as Record<keyof ModelConfig, fc.Arbitrary<unknown>>) as unknown as fc.Arbitrary<ModelConfig>,
  );

/** The gate steps of an upgrade, computed here without upgradeSteps. */
function expectedGateSteps(order: readonly string[], gate: UpgradeGateSpec | undefined): string[] {
  if (gate === undefined) return [];
  const steps: string[] = [];
  if (gate.before) steps.push('before');
  if (gate.afterEachMember) steps.push(...order.slice(0, gate.atEnd ? -1 : undefined).map((m) => `after-${m}`));
  if (gate.atEnd) steps.push('end');
  return steps;
}

/** The gate steps that must have passed before the i-th member of `order` is touched. */
function gatesBefore(order: readonly string[], index: number, gate: UpgradeGateSpec | undefined): string[] {
  if (gate === undefined) return [];
  return [...(gate.before ? ['before'] : []), ...(gate.afterEachMember ? order.slice(0, index).map((m) => `after-${m}`) : [])];
}

/** Plans once, checking that the planner is a pure function of its input (same answer twice, input untouched). */
function plan(model: ClusterModel): { input: UpgradeInput; decision: UpgradeDecision } {
  const input = model.input();
  const before = JSON.stringify(input);
  const decision = planUpgrade(input);
  assert.equal(JSON.stringify(input), before, 'the planner changed its input');
  assert.deepEqual(planUpgrade(structuredClone(input)), decision, 'the planner gave another answer to the same input (a restarted operator)');
  return { input, decision };
}

interface ForwardTrace {
  /** Members in the order upgradeMember was applied. */
  upgraded: string[];
  /** The leader when the upgrade started. */
  initialLeader: string;
}

/**
 * Drives the upgrade forward, checking the safety properties at each step, until it Succeeded or `stop`
 * says so. The user resumes a block after 1 to 3 steps with a new token.
 */
function driveForward(model: ClusterModel, stop: (decision: UpgradeDecision, trace: ForwardTrace) => boolean = () => false, maxSteps = 2000): ForwardTrace {
  const trace: ForwardTrace = { upgraded: [], initialLeader: model.leader };
  const to = model.config.to;
  let blocked: { status: string; token: string | undefined; since: number } | undefined;
  let tokens = 0;
  while (model.upgrade?.phase !== 'Succeeded') {
    assert.ok(model.steps < maxSteps, `no progress after ${maxSteps} steps: ${JSON.stringify(model.upgrade)}`);
    model.perturb();
    const { decision } = plan(model);
    if (stop(decision, trace)) return trace;
    const up = model.upgrade;
    assert.ok(!['refuse', 'block', 'startRollback', 'rollbackMember'].includes(decision.kind), `unexpected ${JSON.stringify(decision)}`);
    if (decision.kind === 'wait' && decision.blocked === true) assert.equal(up?.phase, 'Blocked', decision.reason);

    // After a gate failed, nothing changes until the resume token does.
    if (blocked !== undefined && model.resume === blocked.token) {
      assert.equal(decision.kind, 'wait', `a blocked upgrade decided ${JSON.stringify(decision)}`);
      assert.equal(decision.blocked, true);
    }
    if (decision.kind === 'upgradeMember') {
      assert.ok(up !== undefined && up.phase === 'Progressing');
      assert.equal(decision.version, to);
      const target = model.member(decision.member);
      assert.notEqual(target.placedVersion, to, `${decision.member} upgraded twice`);
      // One at a time: every member placed on the new version serves it.
      for (const other of model.members) {
        if (other.name !== decision.member && other.placedVersion === to) assert.ok(model.serving(other) && other.version === to, `${decision.member} upgraded while ${other.name} does not serve ${to} yet`);
      }
      // Never the leader while it leads, when another member could lead.
      if (model.members.length > 1) assert.notEqual(model.leader, decision.member, `${decision.member} upgraded while leader`);
      // Every gate before it passed.
      const index = up.order.indexOf(decision.member);
      assert.ok(index >= 0);
      for (const step of gatesBefore(up.order, index, model.config.gate)) {
        assert.equal(up.gates.filter((g) => g.step === step).at(-1)?.phase, 'Passed', `${decision.member} upgraded before gate ${step} passed`);
      }
      // Members go in the recorded order.
      assert.deepEqual(up.order.slice(0, index), trace.upgraded.slice(0, index));
    }
    if (decision.kind === 'transferLeader') {
      assert.ok(model.members.length > 1);
      assert.equal(decision.from, model.leader);
      assert.notEqual(decision.to, decision.from);
      assert.ok(model.serving(model.member(decision.to)));
      assert.equal(decision.toId, model.member(decision.to).id);
    }
    if (decision.kind === 'startGate') {
      assert.ok(up !== undefined);
      assert.ok(!up.gates.some((g) => g.run === decision.run), `run name ${decision.run} used twice`);
      const served = (name: string) => model.member(name).placedVersion === to && model.member(name).version === to;
      if (decision.step.startsWith('after-')) assert.ok(served(decision.step.slice('after-'.length)), `${decision.step} before its member serves ${to}`);
      if (decision.step === 'end') assert.ok(model.members.every((m) => served(m.name)), 'the end gate before every member serves');
    }
    if (decision.kind === 'finish') {
      assert.equal(decision.phase, 'Succeeded');
      assert.ok(model.members.every((m) => m.placedVersion === to && m.version === to && model.serving(m)), 'Succeeded before every member serves');
    }

    const crash = model.crash();
    const statusBefore = JSON.stringify(model.upgrade);
    model.apply(decision, crash);
    if (decision.kind === 'upgradeMember' && crash !== 'lost') trace.upgraded.push(decision.member);
    if (decision.kind === 'start' && crash === 'none') trace.initialLeader = model.leader;
    if (blocked !== undefined && model.resume === blocked.token) assert.equal(JSON.stringify(model.upgrade), statusBefore, 'a blocked upgrade changed');
    model.tick();

    // The user: resumes a blocked upgrade a few steps after it blocked.
    if (model.upgrade?.phase === 'Blocked') {
      blocked ??= { status: JSON.stringify(model.upgrade), token: model.resume, since: model.steps };
      if (model.steps - blocked.since >= 1 + model.rng.int(3)) {
        tokens += 1;
        model.resume = `resume-${tokens}`;
      }
    } else {
      blocked = undefined;
    }
  }
  return trace;
}

describe('planUpgrade: simulation', () => {
  test('the upgrade ends Succeeded, one member at a time, the leader last, every gate passed exactly once per attempt', () => {
    fc.assert(
      fc.property(configArbitrary(), (config) => {
        const model = new ClusterModel(config);
        const trace = driveForward(model);
        const initialLeader = trace.initialLeader;
        const up = model.upgrade!;
        assert.equal(up.phase, 'Succeeded');
        assert.equal(up.from, FROM);
        assert.equal(up.to, config.to);
        // Order: the followers sorted, then the leader of the start; each upgraded exactly once, in that order.
        const followers = model.members.map((m) => m.name).filter((n) => n !== initialLeader).sort();
        assert.deepEqual(up.order, [...followers, initialLeader]);
        assert.deepEqual(trace.upgraded, up.order);
        assert.equal(trace.upgraded.at(-1), initialLeader);
        assert.ok(model.members.every((m) => m.placedVersion === config.to && m.version === config.to));
        // Gates: each expected step ran once per attempt (a failed attempt, then a retry), the last passed.
        const steps = expectedGateSteps(up.order, config.gate);
        assert.deepEqual([...new Set(up.gates.map((g) => g.step))].sort(), [...steps].sort());
        for (const step of steps) {
          const results = up.gates.filter((g) => g.step === step);
          const attempts = (model.failures.get(step) ?? 0) + 1;
          assert.equal(results.length, attempts, `gate ${step}: ${results.length} results for ${attempts} attempts`);
          assert.deepEqual(model.created.get(step), results.map((g) => g.run), `gate ${step}: a run per attempt`);
          assert.ok(results.slice(0, -1).every((g) => g.phase === 'Failed'));
          assert.equal(results.at(-1)?.phase, 'Passed');
        }
        const names = up.gates.map((g) => g.run);
        assert.equal(new Set(names).size, names.length, 'gate run names are unique');
        assert.equal([...model.runs.keys()].length, names.length, 'no gate run was created but not recorded');
        // Nothing more to do.
        assert.deepEqual(plan(model).decision, { kind: 'none' });
      }),
      { numRuns: 300 },
    );
  });

  test('a gate that fails blocks the upgrade until the resume annotation changes', () => {
    const model = new ClusterModel({ size: 3, leader: 0, from: FROM, to: TO, gate: fullGate(), seed: 1, maxFailures: 1, failureRate: 1, crashRate: 0, electionRate: 0, unsettledRate: 0 });
    // Drive until blocked.
    for (let i = 0; model.upgrade?.phase !== 'Blocked'; i++) {
      assert.ok(i < 50);
      model.apply(plan(model).decision);
      model.tick();
    }
    const status = JSON.stringify(model.upgrade);
    for (let i = 0; i < 20; i++) {
      const { decision } = plan(model);
      assert.equal(decision.kind, 'wait');
      assert.equal(decision.blocked, true);
      model.apply(decision);
      model.tick();
    }
    assert.equal(JSON.stringify(model.upgrade), status);
    assert.ok(model.members.every((m) => m.placedVersion === FROM), 'no member was touched');
    model.resume = 'again';
    assert.deepEqual(plan(model).decision, { kind: 'resume', token: 'again' });
    driveForward(model);
    assert.equal(model.upgrade?.phase, 'Succeeded');
    assert.deepEqual(
      model.upgrade?.gates.filter((g) => g.step === 'before').map((g) => [g.run, g.phase]),
      [
        ['c-u1-before', 'Failed'],
        ['c-u1-before-r1', 'Passed'],
      ],
    );
  });
});

describe('planUpgrade: roll-back simulation', () => {
  test('spec.version back to from rolls back exactly the members on the new version, the leader last, and ends RolledBack; refused once every member runs the new minor', () => {
    fc.assert(
      fc.property(configArbitrary({ crashRate: fc.constantFrom(0, 0.2) }), fc.nat({ max: 5 }), fc.nat({ max: 6 }), (config, upgrades, extra) => {
        const model = new ClusterModel(config);
        // Upgrade until `upgrades` members were upgraded and `extra` steps more, never finishing.
        let after = -1;
        driveForward(model, (decision, trace) => {
          if (decision.kind === 'finish') return true;
          if (after < 0 && trace.upgraded.length >= Math.min(upgrades, config.size)) after = model.steps;
          return after >= 0 && model.steps - after >= extra;
        });
        if (model.upgrade === undefined) return; // stopped before it started
        assert.ok(['Progressing', 'Blocked'].includes(model.upgrade.phase));
        model.version = FROM;
        const minor = config.to === TO;
        let rolling: Set<string> | undefined;
        const rolledBack: string[] = [];
        for (let i = 0; model.upgrade.phase !== 'RolledBack'; i++) {
          assert.ok(i < 500, `no roll-back after 500 steps: ${JSON.stringify(model.upgrade)}`);
          model.perturb();
          const { decision } = plan(model);
          const allOnTo = model.members.every((m) => m.placedVersion === config.to && m.version === config.to);
          if (model.upgrade.phase !== 'RollingBack') {
            if (minor && allOnTo) {
              // Refused: it stays so, whatever the steps.
              assert.equal(decision.kind, 'wait');
              assert.equal(decision.blocked, true);
              assert.match(decision.reason, /needs etcd's downgrade procedure/);
              const status = JSON.stringify(model.upgrade);
              for (let j = 0; j < 5; j++) {
                model.tick();
                const again = plan(model).decision;
                assert.deepEqual(again, decision);
                model.apply(again);
              }
              assert.equal(JSON.stringify(model.upgrade), status);
              return;
            }
            assert.deepEqual(decision, { kind: 'startRollback' });
            const crash = model.crash();
            model.apply(decision, crash);
            if (crash === 'none') rolling = new Set(model.members.filter((m) => m.placedVersion === config.to || m.version === config.to).map((m) => m.name));
            model.tick();
            continue;
          }
          assert.ok(rolling !== undefined);
          const remaining = [...rolling].filter((n) => !rolledBack.includes(n));
          assert.ok(['wait', 'transferLeader', 'rollbackMember', 'finish'].includes(decision.kind), JSON.stringify(decision));
          if (decision.kind === 'rollbackMember') {
            assert.equal(decision.version, FROM);
            assert.ok(remaining.includes(decision.member), `${decision.member} rolled back, but it is not among ${remaining.join(', ')}`);
            // The leader last: a member that leads is rolled back only when it is the last one.
            if (decision.member === model.leader) assert.deepEqual(remaining, [decision.member], `the leader ${decision.member} rolled back before ${remaining.join(', ')}`);
            // Followers in reverse upgrade order.
            const expected: string | undefined = [...model.upgrade.order].reverse().filter((n) => remaining.includes(n) && n !== model.leader)[0] ?? remaining[0];
            assert.equal(decision.member, expected);
          }
          if (decision.kind === 'transferLeader') {
            assert.equal(decision.from, model.leader);
            assert.deepEqual(remaining, [decision.from], 'leadership moves only to roll back the leader, last');
          }
          if (decision.kind === 'finish') {
            assert.equal(decision.phase, 'RolledBack');
            assert.deepEqual(remaining, [], `RolledBack before ${remaining.join(', ')} rolled back`);
          }
          const crash = model.crash();
          model.apply(decision, crash);
          if (decision.kind === 'rollbackMember' && crash !== 'lost') rolledBack.push(decision.member);
          model.tick();
        }
        // Exactly the members on the new version, each once; then every member runs from again.
        assert.deepEqual([...rolledBack].sort(), [...rolling!].sort());
        for (let j = 0; j < 5; j++) model.tick();
        assert.ok(model.members.every((m) => m.placedVersion === FROM && m.version === FROM), JSON.stringify(model.members));
        assert.deepEqual(plan(model).decision, { kind: 'none' });
      }),
      { numRuns: 300 },
    );
  });
});
