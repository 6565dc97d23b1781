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
  type UpgradeInput,
  type UpgradeMember,
} from '../../src/controller/etcdcluster/upgrade-plan.ts';

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
  test('parseVersion: with or without v, a pre-release suffix ignored, anything else undefined', () => {
    assert.deepEqual(parseVersion('3.6.16'), { major: 3, minor: 6, patch: 16 });
    assert.deepEqual(parseVersion('v3.6.16'), { major: 3, minor: 6, patch: 16 });
    assert.deepEqual(parseVersion(' 3.6.0-rc.1 '), { major: 3, minor: 6, patch: 0 });
    for (const bad of ['', 'x', '3.6', '3.6.1.2', 'v', '3.6.x', '3.6.1-', '3.6.1+build']) assert.equal(parseVersion(bad), undefined, bad);
  });

  test('compareVersions orders numerically, major before minor before patch', () => {
    const v = (s: string) => parseVersion(s)!;
    assert.ok(compareVersions(v('3.5.35'), v('3.6.0')) < 0);
    assert.ok(compareVersions(v('3.10.0'), v('3.9.99')) > 0);
    assert.ok(compareVersions(v('4.0.0'), v('3.99.99')) > 0);
    assert.equal(compareVersions(v('3.6.6'), v('v3.6.6')), 0);
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
