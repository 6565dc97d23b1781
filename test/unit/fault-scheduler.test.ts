import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { faultNames } from '../../src/domain/faults.ts';
import type { FaultChoice, FaultsSpec, PlannedFault } from '../../src/domain/faults.ts';
import { faultDefinition } from '../../src/faults/catalog.ts';
import { planFaults, quietMs } from '../../src/faults/scheduler.ts';

function choice(fault: FaultChoice['fault'], weight = 1): FaultChoice {
  return { fault, weight, target: faultDefinition(fault).defaultTarget, params: {} };
}

function spec(choices: FaultChoice[], overrides: Partial<FaultsSpec> = {}): FaultsSpec {
  return {
    choices,
    maxConcurrentFaults: 2,
    intervalMs: { min: 2000, max: 5000 },
    durationMs: { min: 1000, max: 3000 },
    recoveryTimeoutMs: 30_000,
    ...overrides,
  };
}

const rangeArbitrary = (lo: number, hi: number): fc.Arbitrary<{ min: number; max: number }> =>
  fc.tuple(fc.integer({ min: lo, max: hi }), fc.integer({ min: lo, max: hi })).map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) }));

const specArbitrary: fc.Arbitrary<FaultsSpec> = fc.record({
  choices: fc.uniqueArray(
    fc.record({
      fault: fc.constantFrom(...faultNames),
      weight: fc.oneof(fc.double({ min: 0.01, max: 10, noNaN: true }), fc.integer({ min: 1, max: 5 })),
    }).map(({ fault, weight }) => choice(fault, weight)),
    { maxLength: 8, selector: (c) => c.fault },
  ),
  maxConcurrentFaults: fc.integer({ min: 1, max: 5 }),
  intervalMs: rangeArbitrary(100, 8000),
  durationMs: rangeArbitrary(100, 6000),
  recoveryTimeoutMs: fc.constant(30_000),
});

const optionsArbitrary = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  runDurationMs: fc.integer({ min: 0, max: 300_000 }),
  startDelayMs: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined }),
});

/** The most faults active at one instant; intervals are [atMs, atMs + durationMs), an instantaneous fault is its instant. */
function maxActive(plan: PlannedFault[]): number {
  const instants = [...new Set(plan.map((f) => f.atMs))];
  return Math.max(
    0,
    ...instants.map((t) => plan.filter((f) => f.atMs === t || (f.atMs <= t && t < f.atMs + f.durationMs)).length),
  );
}

describe('planFaults', () => {
  test('same seed and spec give the same plan; another seed gives another', () => {
    const s = spec(['kill', 'pause', 'delay', 'partition'].map((f) => choice(f as FaultChoice['fault'])));
    const a = planFaults(s, { seed: 7, runDurationMs: 120_000 });
    assert.deepEqual(planFaults(s, { seed: 7, runDurationMs: 120_000 }), a);
    assert.ok(a.length > 5);
    assert.notDeepEqual(planFaults(s, { seed: 8, runDurationMs: 120_000 }), a);
  });

  test('properties: determinism, concurrency, bounds, durations, order', () => {
    fc.assert(
      fc.property(specArbitrary, optionsArbitrary, (s, options) => {
        const plan = planFaults(s, options);
        assert.deepEqual(planFaults(s, options), plan);
        const start = options.startDelayMs ?? 0;
        if (s.choices.length === 0) assert.deepEqual(plan, []);
        assert.ok(maxActive(plan) <= s.maxConcurrentFaults, `more than ${s.maxConcurrentFaults} at once`);
        let previous: PlannedFault | undefined;
        for (const f of plan) {
          assert.ok(f.atMs >= start, `starts at ${f.atMs} before ${start}`);
          assert.ok(f.atMs + f.durationMs <= options.runDurationMs - quietMs, 'ends in the quiet end of the run');
          assert.ok(f.pick >= 0 && f.pick < 1);
          if (faultDefinition(f.fault).instantaneous) assert.equal(f.durationMs, 0);
          else assert.ok(Number.isInteger(f.durationMs) && f.durationMs >= s.durationMs.min && f.durationMs <= s.durationMs.max, `duration ${f.durationMs}`);
          assert.ok(s.choices.some((c) => c.fault === f.fault && c.target === f.target));
          if (previous !== undefined) {
            assert.ok(f.round === previous.round || f.round === previous.round + 1);
            if (f.round === previous.round) assert.equal(f.atMs, previous.atMs);
            else {
              // The next round waits the interval after the longest fault of the previous one ends.
              const previousEnd = Math.max(...plan.filter((p) => p.round === previous!.round).map((p) => p.atMs + p.durationMs));
              assert.ok(f.atMs >= previousEnd + Math.max(1, s.intervalMs.min) && f.atMs <= previousEnd + Math.max(1, s.intervalMs.max));
            }
          }
          previous = f;
        }
        // Within a round, choices are distinct.
        const rounds = Map.groupBy(plan, (f) => f.round);
        for (const faults of rounds.values()) assert.equal(new Set(faults.map((f) => `${f.fault}/${f.target}`)).size, faults.length);
      }),
      { numRuns: 300 },
    );
  });

  test('an empty choice list, or only zero weights, plans nothing', () => {
    assert.deepEqual(planFaults(spec([]), { seed: 1, runDurationMs: 600_000 }), []);
    assert.deepEqual(planFaults(spec([choice('kill', 0)]), { seed: 1, runDurationMs: 600_000 }), []);
  });

  test('a run too short for one round plans nothing; the first round waits for startDelayMs plus an interval', () => {
    assert.deepEqual(planFaults(spec([choice('kill')]), { seed: 1, runDurationMs: 3000 }), []);
    const plan = planFaults(spec([choice('kill')], { intervalMs: { min: 1000, max: 1000 } }), { seed: 1, runDurationMs: 60_000, startDelayMs: 5000 });
    assert.equal(plan[0]?.atMs, 6000);
  });

  test('weights are respected: a choice of weight 3 is drawn about 3 times as often as one of weight 1', () => {
    const s = spec([choice('kill', 1), choice('pause', 3)], { maxConcurrentFaults: 1, intervalMs: { min: 100, max: 100 }, durationMs: { min: 100, max: 100 } });
    const plan = planFaults(s, { seed: 12345, runDurationMs: 10_000_000 });
    assert.ok(plan.length > 40_000, `${plan.length} faults`);
    const share = plan.filter((f) => f.fault === 'pause').length / plan.length;
    assert.ok(Math.abs(share - 0.75) < 0.01, `pause drawn ${share}`);
  });

  test('rounds use from 1 to maxConcurrentFaults faults, each size about equally often', () => {
    const s = spec(['kill', 'pause', 'delay', 'drop'].map((f) => choice(f as FaultChoice['fault'])), { maxConcurrentFaults: 3 });
    const plan = planFaults(s, { seed: 99, runDurationMs: 20_000_000 });
    const sizes = [...Map.groupBy(plan, (f) => f.round).values()].map((faults) => faults.length);
    for (const size of [1, 2, 3]) {
      const share = sizes.filter((n) => n === size).length / sizes.length;
      assert.ok(Math.abs(share - 1 / 3) < 0.03, `rounds of ${size}: ${share}`);
    }
    assert.ok(sizes.every((n) => n <= 3));
  });

  test('a planned fault carries its choice: target, member and a copy of the params', () => {
    const params = { delayMs: 100, jitterMs: 10 };
    const c: FaultChoice = { fault: 'delay', weight: 1, target: 'member', member: 'm2', params };
    const [first] = planFaults(spec([c]), { seed: 3, runDurationMs: 60_000 });
    assert.ok(first !== undefined);
    assert.deepEqual({ ...first, atMs: 0, durationMs: 0, pick: 0 }, { round: 0, atMs: 0, fault: 'delay', target: 'member', member: 'm2', params, durationMs: 0, pick: 0 });
    assert.notEqual(first.params, params);
  });

  test('an invalid spec is a RangeError', () => {
    assert.throws(() => planFaults(spec([choice('kill')], { intervalMs: { min: 5, max: 1 } }), { seed: 1, runDurationMs: 1000 }), RangeError);
    assert.throws(() => planFaults(spec([choice('kill')], { maxConcurrentFaults: 0 }), { seed: 1, runDurationMs: 1000 }), RangeError);
  });
});
