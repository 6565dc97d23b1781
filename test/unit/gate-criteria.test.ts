// judgeRun: a finished RobustnessRun judged by upgrade-gate criteria. Examples pin each failure reason and
// the boundaries (a figure equal to its threshold passes); a property checks the verdict against the
// criteria computed independently here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { GateCriteria, RobustnessRunStatus, RunPhase } from '../../src/domain/index.ts';
import { defaultGateCriteria, judgeRun } from '../../src/controller/gates/criteria.ts';

function finished(changes: Partial<RobustnessRunStatus> = {}): RobustnessRunStatus {
  return { phase: 'Passed', verdict: 'linearizable', operations: { ok: 1000, failed: 0, unknown: 0 }, ...changes };
}

const strict: GateCriteria = { watchChecks: true, minAvailability: 0.9, maxUnknownRate: 0.1 };

describe('judgeRun: not finished', () => {
  test('no status, no phase, Pending and Running are not judged', () => {
    assert.equal(judgeRun(undefined), undefined);
    assert.equal(judgeRun({}), undefined);
    assert.equal(judgeRun({ phase: 'Pending' }), undefined);
    assert.equal(judgeRun(finished({ phase: 'Running' })), undefined);
  });

  test('every finished phase is judged', () => {
    for (const phase of ['Passed', 'Failed', 'Inconclusive', 'Aborted'] as const) assert.notEqual(judgeRun(finished({ phase })), undefined, phase);
  });
});

describe('judgeRun: passing', () => {
  test('a linearizable Passed run with all operations ok passes, with its figures', () => {
    const judged = judgeRun(finished({ operations: { ok: 98, failed: 1, unknown: 1 } }));
    assert.ok(judged);
    assert.equal(judged.passing, true);
    assert.equal(judged.phase, 'Passed');
    assert.equal(judged.verdict, 'linearizable');
    assert.equal(judged.availability, 0.98);
    assert.equal(judged.unknownRate, 0.01);
    assert.equal(judged.reason, 'linearizable, watch checks passed, availability 0.98, unknown-outcome rate 0.01');
  });

  test('the default criteria are the documented ones', () => {
    assert.deepEqual(defaultGateCriteria, { watchChecks: true, minAvailability: 0.95, maxUnknownRate: 0.05 });
  });

  test('availability exactly at minAvailability passes, one operation less fails', () => {
    assert.equal(judgeRun(finished({ operations: { ok: 95, failed: 5, unknown: 0 } }))?.passing, true);
    const below = judgeRun(finished({ operations: { ok: 94, failed: 6, unknown: 0 } }));
    assert.equal(below?.passing, false);
    assert.match(below.reason, /^availability 0\.94 is below 0\.95 \(94 of 100 operations succeeded\)$/);
  });

  test('unknown rate exactly at maxUnknownRate passes, one more fails', () => {
    const criteria: GateCriteria = { watchChecks: true, minAvailability: 0, maxUnknownRate: 0.05 };
    assert.equal(judgeRun(finished({ operations: { ok: 95, failed: 0, unknown: 5 } }), criteria)?.passing, true);
    const above = judgeRun(finished({ operations: { ok: 94, failed: 0, unknown: 6 } }), criteria);
    assert.equal(above?.passing, false);
    assert.match(above.reason, /^unknown-outcome rate 0\.06 is above 0\.05 \(6 of 100 operations\)$/);
  });

  test('thresholds 0 and 1: minAvailability 1 needs every operation ok, maxUnknownRate 0 allows no unknown', () => {
    const all: GateCriteria = { watchChecks: true, minAvailability: 1, maxUnknownRate: 0 };
    assert.equal(judgeRun(finished({ operations: { ok: 10, failed: 0, unknown: 0 } }), all)?.passing, true);
    assert.equal(judgeRun(finished({ operations: { ok: 10, failed: 1, unknown: 0 } }), all)?.passing, false);
    const anything: GateCriteria = { watchChecks: true, minAvailability: 0, maxUnknownRate: 1 };
    assert.equal(judgeRun(finished({ operations: { ok: 0, failed: 3, unknown: 7 } }), anything)?.passing, true);
  });

  test('a non-watch violation does not fail a linearizable Passed run; without watchChecks the reason says so', () => {
    const judged = judgeRun(finished({ violations: [{ check: 'hashkv', summary: 'x' }] }), { ...strict, watchChecks: false });
    assert.equal(judged?.passing, true);
    assert.doesNotMatch(judged.reason, /watch/);
  });
});

describe('judgeRun: each failure reason', () => {
  test('a run that did not end Passed fails with its phase, verdict and first violation', () => {
    const judged = judgeRun(
      finished({ phase: 'Failed', verdict: 'violation', violations: [{ check: 'linearizability', summary: 'stale read of k1' }, { check: 'watch_order', summary: 'y' }] }),
    );
    assert.equal(judged?.passing, false);
    assert.equal(judged.phase, 'Failed');
    assert.equal(judged.verdict, 'violation');
    assert.equal(judged.reason, 'the run ended Failed with verdict violation (linearizability: stale read of k1)');
  });

  test('without a violation the run reason is quoted, and "none" stands for no verdict', () => {
    assert.equal(judgeRun({ phase: 'Aborted', reason: 'timed out' })?.reason, 'the run ended Aborted with verdict none (timed out)');
    assert.equal(judgeRun({ phase: 'Inconclusive' })?.reason, 'the run ended Inconclusive with verdict none');
  });

  test('a Passed phase with a verdict other than linearizable fails', () => {
    for (const verdict of ['violation', 'inconclusive'] as const) {
      const judged = judgeRun(finished({ verdict }));
      assert.equal(judged?.passing, false, verdict);
      assert.match(judged.reason, new RegExp(`^the run ended Passed with verdict ${verdict}`));
    }
    assert.equal(judgeRun(finished({ verdict: undefined }))?.passing, false);
  });

  test('a linearizable verdict under a Failed phase fails', () => {
    assert.equal(judgeRun(finished({ phase: 'Failed' }))?.passing, false);
  });

  test('a watch violation fails with watchChecks, and passes without', () => {
    const status = finished({ violations: [{ check: 'hashkv', summary: 'x' }, { check: 'watch_revision_order', summary: 'event 7 before 6' }] });
    const judged = judgeRun(status);
    assert.equal(judged?.passing, false);
    assert.equal(judged.reason, 'watch guarantee violated: watch_revision_order: event 7 before 6');
    assert.equal(judgeRun(status, { ...defaultGateCriteria, watchChecks: false })?.passing, true);
  });

  test('a check that only contains "watch" elsewhere is not a watch check', () => {
    assert.equal(judgeRun(finished({ violations: [{ check: 'nowatch_x', summary: 'x' }] }))?.passing, true);
  });

  test('a run without operations fails, whether operations is absent or all zero', () => {
    assert.equal(judgeRun(finished({ operations: undefined }))?.reason, 'the run recorded no operation');
    const zero = judgeRun(finished({ operations: { ok: 0, failed: 0, unknown: 0 } }));
    assert.equal(zero?.passing, false);
    assert.equal(zero.reason, 'the run recorded no operation');
    assert.equal(zero.availability, undefined);
  });

  test('a long violation summary is cut to 300 characters', () => {
    const judged = judgeRun(finished({ violations: [{ check: 'watch_x', summary: 'a'.repeat(1000) }] }));
    assert.equal(judged?.reason, `watch guarantee violated: watch_x: ${'a'.repeat(300)}`);
  });

  test('the status availability field is not trusted: the counts decide', () => {
    assert.equal(judgeRun(finished({ availability: 1, operations: { ok: 1, failed: 9, unknown: 0 } }))?.passing, false);
  });
});

describe('judgeRun: property', () => {
  const phases: readonly RunPhase[] = ['Pending', 'Running', 'Passed', 'Failed', 'Inconclusive', 'Aborted'];
  const statusArbitrary = fc.record(
    {
      phase: fc.constantFrom(...phases),
      verdict: fc.constantFrom('linearizable' as const, 'violation' as const, 'inconclusive' as const),
      operations: fc.record({ ok: fc.nat({ max: 200 }), failed: fc.nat({ max: 20 }), unknown: fc.nat({ max: 20 }) }),
      violations: fc.array(fc.record({ check: fc.constantFrom('watch_order', 'watch_bookmark', 'hashkv', 'linearizability', 'nowatch'), summary: fc.string({ maxLength: 5 }) }), {
        maxLength: 3,
      }),
    },
    { requiredKeys: ['phase'] },
  );
  const criteriaArbitrary = fc.record({
    watchChecks: fc.boolean(),
    // Thresholds that are exact ratios of the generated counts sometimes (the boundaries).
    minAvailability: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 0.5, 0.9, 0.95, 1)),
    maxUnknownRate: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 0.05, 0.1, 1)),
  });

  test('passing exactly when finished Passed, linearizable, no watch violation (if checked), ok/total ≥ min and unknown/total ≤ max', () => {
    fc.assert(
      fc.property(statusArbitrary, criteriaArbitrary, (status, criteria) => {
        const judged = judgeRun(status, criteria);
        const phase = status.phase;
        if (phase === 'Pending' || phase === 'Running') {
          assert.equal(judged, undefined);
          return;
        }
        assert.ok(judged);
        const ops = status.operations;
        const total = ops === undefined ? 0 : ops.ok + ops.failed + ops.unknown;
        const expected =
          phase === 'Passed' &&
          status.verdict === 'linearizable' &&
          (!criteria.watchChecks || !(status.violations ?? []).some((v) => v.check.startsWith('watch_'))) &&
          total > 0 &&
          ops!.ok / total >= criteria.minAvailability &&
          ops!.unknown / total <= criteria.maxUnknownRate;
        assert.equal(judged.passing, expected, JSON.stringify({ status, criteria, judged }));
        assert.equal(judged.phase, phase);
        if (total > 0) {
          assert.equal(judged.availability, ops!.ok / total);
          assert.equal(judged.unknownRate, ops!.unknown / total);
        } else {
          assert.equal(judged.availability, undefined);
        }
        assert.notEqual(judged.reason, '');
      }),
      { numRuns: 2000 },
    );
  });
});
