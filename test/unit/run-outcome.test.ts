// The rule of a run's outcome (src/run/outcome.ts): Passed only when the target existed throughout, the
// traffic reached its minimum, the faults applied (or failed ones are tolerated) and the check found the
// history linearizable. One test per way a run can be wrong, and a property over all of them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { exitCodeOf } from '../../src/commands/run.ts';
import { abortReasons, runOutcome, type RunOutcomeInput } from '../../src/run/outcome.ts';

function input(overrides: { verdict?: RunOutcomeInput['verdict']; verdictReason?: string; abort?: RunOutcomeInput['abort']; faults?: Partial<RunOutcomeInput['faults']>; traffic?: Partial<RunOutcomeInput['traffic']> } = {}): RunOutcomeInput {
  return {
    verdict: overrides.verdict ?? 'linearizable',
    verdictReason: overrides.verdictReason,
    abort: overrides.abort,
    faults: { planned: 4, injected: 4, failed: 0, tolerateFailures: false, ...overrides.faults },
    traffic: { ok: 2900, operations: 3000, achievedQps: 100, minQps: 50, ...overrides.traffic },
  };
}

describe('runOutcome', () => {
  test('a run with nothing wrong passes (exit 0)', () => {
    const outcome = runOutcome(input());
    assert.deepEqual(outcome, { phase: 'Passed', reason: 'Linearizable', message: 'linearizable' });
    assert.equal(exitCodeOf(outcome), 0);
  });

  test('a violation fails the run (exit 1), whatever else went wrong', () => {
    const outcome = runOutcome(input({ verdict: 'violation', verdictReason: 'read of 5 returned 4', abort: { reason: 'TargetDeleted', message: 'gone' }, faults: { failed: 3 }, traffic: { ok: 0 } }));
    assert.deepEqual(outcome, { phase: 'Failed', reason: 'Violation', message: 'read of 5 returned 4' });
    assert.equal(exitCodeOf(outcome), 1);
  });

  test('the target deleted during the run: Aborted, TargetDeleted (exit 2), even with a linearizable history', () => {
    // The run of the issue: 1,955 of 3,001 operations failed and 3 faults failed once the cluster was gone.
    const outcome = runOutcome(input({ abort: { reason: 'TargetDeleted', message: 'EtcdCluster e2e/demo was deleted during the run' }, faults: { failed: 3 }, traffic: { ok: 1046, operations: 3001 } }));
    assert.equal(outcome.phase, 'Aborted');
    assert.equal(outcome.reason, 'TargetDeleted');
    assert.match(outcome.message, /^EtcdCluster e2e\/demo was deleted during the run; 3 of 4 faults failed/);
    assert.equal(exitCodeOf(outcome), 2);
  });

  test('every reason a run is stopped early makes it Aborted', () => {
    for (const reason of abortReasons) assert.equal(runOutcome(input({ abort: { reason, message: reason } })).phase, 'Aborted');
  });

  test('a fault that failed to apply: Inconclusive, FaultsFailed (exit 2), unless the spec tolerates failed faults', () => {
    const outcome = runOutcome(input({ faults: { failed: 1 } }));
    assert.equal(outcome.phase, 'Inconclusive');
    assert.equal(outcome.reason, 'FaultsFailed');
    assert.match(outcome.message, /1 of 4 faults failed to apply \(set spec\.faults\.tolerateFailures: true/);
    assert.equal(exitCodeOf(outcome), 2);
    assert.equal(runOutcome(input({ faults: { failed: 1, tolerateFailures: true } })).phase, 'Passed');
  });

  test('faults the spec asked for but the run could not inject at all: FaultsFailed, tolerated or not', () => {
    for (const tolerateFailures of [false, true]) {
      const outcome = runOutcome(input({ faults: { planned: 0, injected: 0, skipped: 'no member runtime to inject faults through', tolerateFailures } }));
      assert.equal(outcome.reason, 'FaultsFailed');
      assert.match(outcome.message, /not injected: no member runtime/);
    }
  });

  test('traffic below spec.traffic.qps.min: Inconclusive, TrafficBelowMinimum', () => {
    const outcome = runOutcome(input({ traffic: { achievedQps: 49.94, minQps: 50 } }));
    assert.deepEqual(outcome, { phase: 'Inconclusive', reason: 'TrafficBelowMinimum', message: 'traffic reached 49.9 operations/s, below the minimum of 50 (spec.traffic.qps.min)' });
    assert.equal(runOutcome(input({ traffic: { achievedQps: 50, minQps: 50 } })).phase, 'Passed', 'the minimum itself is enough');
    assert.equal(runOutcome(input({ traffic: { achievedQps: 1, minQps: 0 } })).phase, 'Passed', 'qps.min 0 sets no minimum');
  });

  test('no operation succeeded: nothing was checked, Inconclusive even without a minimum rate', () => {
    const outcome = runOutcome(input({ traffic: { ok: 0, operations: 1955, achievedQps: 100, minQps: 0 } }));
    assert.equal(outcome.reason, 'TrafficBelowMinimum');
    assert.match(outcome.message, /no operation succeeded \(1955 recorded\)/);
  });

  test('an inconclusive check: Inconclusive, CheckInconclusive, with the checker\'s reason', () => {
    const outcome = runOutcome(input({ verdict: 'inconclusive', verdictReason: 'search budget exceeded' }));
    assert.deepEqual(outcome, { phase: 'Inconclusive', reason: 'CheckInconclusive', message: 'the check was inconclusive: search budget exceeded' });
  });

  test('several problems: the first decides the reason, the message lists them all', () => {
    const outcome = runOutcome(input({ verdict: 'inconclusive', faults: { failed: 2 }, traffic: { achievedQps: 3 } }));
    assert.equal(outcome.reason, 'FaultsFailed');
    assert.match(outcome.message, /faults failed.*; traffic reached 3 operations\/s.*; the check was inconclusive/);
  });

  test('property: Passed exactly when nothing is wrong; Failed exactly on a violation; exit code 0 only when Passed', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('linearizable', 'violation', 'inconclusive'),
        fc.option(fc.constantFrom(...abortReasons), { nil: undefined }),
        fc.nat(3),
        fc.boolean(),
        fc.nat(5),
        fc.double({ min: 0, max: 200, noNaN: true }),
        fc.nat(100),
        (verdict: RunOutcomeInput['verdict'], abort, failed, tolerateFailures, ok, achievedQps, minQps) => {
          const outcome = runOutcome(input({ verdict, ...(abort ? { abort: { reason: abort, message: abort } } : {}), faults: { failed, tolerateFailures }, traffic: { ok, achievedQps, minQps } }));
          const wrong = abort !== undefined || (failed > 0 && !tolerateFailures) || ok === 0 || (minQps > 0 && achievedQps < minQps) || verdict !== 'linearizable';
          assert.equal(outcome.phase === 'Passed', !wrong);
          assert.equal(outcome.phase === 'Failed', verdict === 'violation');
          if (verdict !== 'violation' && abort !== undefined) assert.equal(outcome.phase, 'Aborted');
          assert.equal(exitCodeOf(outcome) === 0, outcome.phase === 'Passed');
        },
      ),
    );
  });
});
