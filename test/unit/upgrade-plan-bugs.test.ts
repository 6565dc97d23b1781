// Regression tests for bugs the model-based tests found in the upgrade planner and the gate endpoints
// (each fixed): a stale resume token, a roll-back that did not wait for members to serve, a retry reusing an
// earlier run's name, cut names colliding, and maxAge ignored while a run is in progress.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { GateResult, RobustnessRunResource, UpgradeStatus } from '../../src/domain/index.ts';
import { gateRunName, normalizeGate, planUpgrade, type UpgradeInput, type UpgradeMember } from '../../src/controller/etcdcluster/upgrade-plan.ts';
import { runGate } from '../../src/controller/gates/http.ts';
import { defaultGateCriteria } from '../../src/controller/gates/criteria.ts';
import { ClusterModel } from '../helpers/upgrade-model.ts';

const FROM = '3.5.35';
const TO = '3.6.6';
const now = new Date('2026-11-25T12:00:00Z');

function member(name: string, changes: Partial<UpgradeMember> = {}): UpgradeMember {
  return { name, id: String(100 + Number(name.slice(-1))), version: FROM, placedVersion: FROM, healthy: true, leader: false, learner: false, ...changes };
}

function upgrade(changes: Partial<UpgradeStatus> = {}): UpgradeStatus {
  return { number: 1, from: FROM, to: TO, phase: 'Progressing', order: ['c-1', 'c-2', 'c-0'], startedAt: '2026-11-25T11:00:00Z', gates: [], ...changes };
}

function input(changes: Partial<UpgradeInput> = {}): UpgradeInput {
  return {
    clusterName: 'c',
    spec: { version: TO, replicas: 3, topology: 'standard' },
    gate: undefined,
    upgrade: undefined,
    members: [member('c-0', { leader: true }), member('c-1'), member('c-2')],
    settled: true,
    now,
    ...changes,
  };
}

const back = (changes: Partial<UpgradeInput>) => input({ spec: { version: FROM, replicas: 3, topology: 'standard' }, ...changes });

describe('bug: a resume annotation left from an earlier upgrade resumes the next upgrade\'s first block by itself', () => {
  test('a new upgrade blocked by a failed gate waits although the annotation still holds the previous upgrade\'s token', () => {
    const gate = normalizeGate({});
    // Upgrade #1 was resumed with token "a"; the annotation keeps that value. Upgrade #2 starts.
    const start = planUpgrade(input({ gate, resume: 'a', upgrade: upgrade({ phase: 'Succeeded', resumed: 'a', to: '3.5.36' }) }));
    assert.equal(start.kind, 'start');
    const failed: GateResult = { step: 'before', run: 'c-u2-before', phase: 'Failed', startedAt: '2026-11-25T12:00:00Z' };
    const blocked: UpgradeStatus = { ...start.upgrade, phase: 'Blocked', reason: 'gate before failed', gates: [failed] };
    const decision = planUpgrade(input({ gate, resume: 'a', upgrade: blocked }));
    // Was: { kind: 'resume', token: 'a' } — the failed gate is retried without the user asking.
    assert.equal(decision.kind, 'wait', JSON.stringify(decision));
  });
});

describe('bug: the roll-back does not wait for a rolled-back member to serve again', () => {
  test('the next member is not rolled back while the previous one restarts', () => {
    // c-2 was rolled back and restarts (answers nothing); c-1 still runs the new version.
    const members = [member('c-0', { leader: true }), member('c-1', { placedVersion: TO, version: TO }), member('c-2', { placedVersion: FROM, version: undefined, healthy: false })];
    const decision = planUpgrade(back({ upgrade: upgrade({ phase: 'RollingBack' }), members }));
    // Was: rollbackMember c-1 — two of three members down at once (quorum lost).
    assert.equal(decision.kind, 'wait', JSON.stringify(decision));
  });

  test('RolledBack is not declared while the last rolled-back member has not come back', () => {
    const members = [member('c-0', { leader: true }), member('c-1', { placedVersion: FROM, version: undefined, healthy: false }), member('c-2')];
    const decision = planUpgrade(back({ upgrade: upgrade({ phase: 'RollingBack' }), members }));
    // Was: finish RolledBack while c-1 is still down (it might crash-loop on the old version).
    assert.equal(decision.kind, 'wait', JSON.stringify(decision));
  });

  test('the leader is not rolled back while it leads (the others being down, no transfer is possible)', () => {
    const members = [
      member('c-0', { leader: true, placedVersion: TO, version: TO }),
      member('c-1', { placedVersion: FROM, version: undefined, healthy: false }),
      member('c-2', { placedVersion: FROM, version: undefined, healthy: false }),
    ];
    const decision = planUpgrade(back({ upgrade: upgrade({ phase: 'RollingBack' }), members }));
    // Was: rollbackMember c-0 — the last serving member, and the leader, restarted.
    assert.equal(decision.kind, 'wait', JSON.stringify(decision));
  });
});

describe('bug: a retry after 32 gate results reuses the name of an earlier attempt', () => {
  test('the end gate failed and was resumed 33 times: the next attempt gets a new run name', () => {
    // upgradeStep keeps the last 32 gate results: attempt 0 (c-u1-end) was dropped, r1..r32 remain.
    const gates: GateResult[] = Array.from({ length: 32 }, (_, i) => ({ step: 'end', run: `c-u1-end-r${i + 1}`, phase: 'Failed', startedAt: '2026-11-25T11:00:00Z' }));
    const gate = normalizeGate({ before: false, afterEachMember: false, atEnd: true });
    const members = [member('c-0', { leader: true }), member('c-1'), member('c-2')].map((m) => ({ ...m, placedVersion: TO, version: TO }));
    const decision = planUpgrade(input({ gate, members, upgrade: upgrade({ gates, resumed: 'x' }), resume: 'x' }));
    assert.equal(decision.kind, 'startGate');
    // Was: c-u1-end-r32, the run that just failed: its creation conflicts and the executor judges that failed run again.
    assert.ok(!gates.some((g) => g.run === decision.run), `${decision.run} was used by an earlier attempt`);
  });
});

describe('latent: gateRunName is not injective once names are cut', () => {
  test('two attempts of a long cluster\'s gate get distinct names', () => {
    const cluster = 'a'.repeat(190);
    // Was: both `${cluster.slice(0, 180)}-203`.
    assert.notEqual(gateRunName(cluster, 1, 'before', 1), gateRunName(cluster, 1, 'before', 2));
  });
});

describe('bug: runGate ignores maxAge while a run is in progress', () => {
  test('a continuous run whose last finished run ended days ago fails a maxAge of 1h', () => {
    const resource: RobustnessRunResource = {
      apiVersion: 'etcd.robustness.io/v1alpha1',
      kind: 'RobustnessRun',
      metadata: { name: 'r', namespace: 'db' },
      spec: {},
      status: { phase: 'Running', runNumber: 5, lastRun: { number: 4, phase: 'Passed', verdict: 'linearizable', startTime: '2026-11-20T10:00:00Z', endTime: '2026-11-20T11:00:00Z' } },
    };
    // Was: passing (200) — maxAge is only applied to a finished run.
    assert.equal(runGate(resource, defaultGateCriteria, now, 3_600_000).passing, false);
  });
});

describe('the same bugs found by simulation', () => {
  test('property: during a roll-back, a member is rolled back (or RolledBack declared) only once every rolled-back member serves from again', () => {
    fc.assert(
      fc.property(fc.constantFrom(3, 5), fc.integer(), (size, seed) => {
        const model = new ClusterModel({ size, leader: 0, from: FROM, to: '3.5.40', gate: undefined, seed, maxFailures: 0, failureRate: 0, crashRate: 0, electionRate: 0, unsettledRate: 0 });
        // Upgrade every follower, then roll back.
        for (let i = 0; model.members.filter((m) => m.placedVersion === '3.5.40' && m.version === '3.5.40').length < size - 1; i++) {
          assert.ok(i < 200);
          model.apply(planUpgrade(model.input()));
          model.tick();
        }
        model.version = FROM;
        for (let i = 0; model.upgrade?.phase !== 'RolledBack'; i++) {
          assert.ok(i < 200);
          const decision = planUpgrade(model.input());
          if (decision.kind === 'rollbackMember' || decision.kind === 'finish') {
            const down = model.members.filter((m) => m.placedVersion === FROM && !(model.serving(m) && m.version === FROM)).map((m) => m.name);
            assert.deepEqual(down, [], `${JSON.stringify(decision)} while ${down.join(', ')} restart`);
          }
          model.apply(decision);
          model.tick();
        }
      }),
    );
  });

  test('property: an upgrade blocked by a failed gate waits until the annotation changes, whatever value it had before the upgrade', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 3, 5), fc.integer(), (size, seed) => {
        const model = new ClusterModel({ size, leader: 0, from: FROM, to: TO, gate: normalizeGate({}), seed, maxFailures: 1, failureRate: 1, crashRate: 0, electionRate: 0, unsettledRate: 0, initialResume: 'from-the-last-upgrade' });
        for (let i = 0; model.upgrade?.phase !== 'Blocked'; i++) {
          assert.ok(i < 50);
          model.apply(planUpgrade(model.input()));
          model.tick();
        }
        const decision = planUpgrade(model.input());
        assert.equal(decision.kind, 'wait', JSON.stringify(decision));
      }),
    );
  });
});
