import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FaultTargetError, linksBetween, resolveTargets } from '../../src/faults/targets.ts';

const members = ['m1', 'm2', 'm3'];

describe('fault targets', () => {
  test('leader, follower, named member, all', () => {
    assert.deepEqual(resolveTargets('leader', { members, leader: 'm2', pick: 0.9 }), ['m2']);
    assert.ok(!resolveTargets('follower', { members, leader: 'm2', pick: 0.5 }).includes('m2'));
    assert.deepEqual(resolveTargets('member', { members, leader: 'm2', pick: 0, member: 'm3' }), ['m3']);
    assert.deepEqual(resolveTargets('all', { members, leader: undefined, pick: 0 }), members);
  });

  test('minority and majority of 3 and 5 members', () => {
    assert.equal(resolveTargets('minority', { members, leader: 'm1', pick: 0.4 }).length, 1);
    assert.equal(resolveTargets('majority', { members, leader: 'm1', pick: 0.4 }).length, 2);
    const five = ['m1', 'm2', 'm3', 'm4', 'm5'];
    assert.equal(resolveTargets('minority', { members: five, leader: 'm1', pick: 0.1 }).length, 2);
    assert.equal(resolveTargets('majority', { members: five, leader: 'm1', pick: 0.1 }).length, 3);
  });

  test('a rule that cannot be met is a clear error', () => {
    assert.throws(() => resolveTargets('leader', { members, leader: undefined, pick: 0 }), FaultTargetError);
    assert.throws(() => resolveTargets('follower', { members: ['m1'], leader: 'm1', pick: 0 }), /no follower to target/);
    assert.throws(() => resolveTargets('member', { members, leader: 'm1', pick: 0, member: 'm9' }), /no member named m9/);
    assert.throws(() => resolveTargets('random', { members: [], leader: undefined, pick: 0 }), /no members/);
  });

  test('property: the same pick gives the same targets, always members of the cluster, never duplicated', () => {
    fc.assert(
      fc.property(fc.constantFrom('random', 'follower', 'minority', 'majority', 'all' as const), fc.double({ min: 0, max: 0.999999, noNaN: true }), fc.integer({ min: 2, max: 7 }), (rule, pick, n) => {
        const names = Array.from({ length: n }, (_, i) => `m${i + 1}`);
        const a = resolveTargets(rule, { members: names, leader: 'm1', pick });
        const b = resolveTargets(rule, { members: [...names].reverse(), leader: 'm1', pick });
        assert.deepEqual(a, b);
        assert.equal(new Set(a).size, a.length);
        assert.ok(a.every((m) => names.includes(m)));
        if (rule === 'minority') assert.ok(a.length < n / 2 || n === 2);
        if (rule === 'majority') assert.ok(a.length > n / 2);
      }),
    );
  });

  test('links between groups, both ways or one way', () => {
    assert.deepEqual(linksBetween(['m1'], ['m2', 'm3']), [
      { from: 'm1', to: 'm2' },
      { from: 'm2', to: 'm1' },
      { from: 'm1', to: 'm3' },
      { from: 'm3', to: 'm1' },
    ]);
    assert.deepEqual(linksBetween(['m1'], ['m2'], true), [{ from: 'm1', to: 'm2' }]);
  });
});
