// Property-based tests of the checker against an independent sequential simulator.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkHistory, LiveChecker, modelOptionsFor } from '../../src/checker/index.ts';
import type { History } from '../../src/domain/index.ts';
import { buildHistory, corrupt, shapeArbitrary } from '../helpers/random-histories.ts';

/** Streams a history through the live checker the way a recorder would. */
function liveVerdict(history: History): string {
  const opts = modelOptionsFor(history);
  const live = new LiveChecker({ mode: opts.mode, trackRevision: opts.trackRevision, trackVersion: opts.trackVersion, initialRevision: opts.initialRevision });
  // Completion order: known operations at their return, abandoned ones right at their call.
  const order = history.operations.map((op, i) => ({ op, i, done: op.return ?? op.call })).sort((a, b) => a.done - b.done || a.i - b.i);
  const calls = order.map((o) => o.op.call);
  for (let k = 0; k < order.length; k++) {
    live.push(order[k]!.op);
    // Nothing not yet pushed was called before the earliest remaining call.
    let watermark = Infinity;
    for (let j = k + 1; j < order.length; j++) watermark = Math.min(watermark, calls[j]!);
    live.advance(Math.min(watermark, order[k]!.done));
  }
  return live.finish();
}

/**
 * A fixed seed by default: CI must not depend on the draw; FC_SEED=<n> explores other draws. Draws whose
 * revisions only compares test (no response shows one) with a few timed-out writes once went
 * inconclusive (over 20,000 candidates at one operation, FC_SEED=1077065128); the revision cap in
 * linearize.ts decides them, and checker-hidden-revisions.test.ts keeps those draws as fixtures.
 * `npm run bench:checker -- --sweep-seeds N` checks N draws of this generator and counts the verdicts.
 */
const seed = process.env['FC_SEED'] === undefined ? 20_261_125 : Number(process.env['FC_SEED']);

describe('checker properties', () => {
  test('histories produced by a sequential etcd and spread over concurrent clients are linearizable', () => {
    fc.assert(
      fc.property(shapeArbitrary, (shape) => {
        const { history } = buildHistory(shape);
        const report = checkHistory(history, { timeoutMs: 20_000 });
        assert.equal(report.verdict, 'linearizable', JSON.stringify(report.linearizability.violation ?? report.linearizability.inconclusive));
      }),
      { numRuns: 300, seed },
    );
  });

  test('one corrupted response makes the history a violation or inconclusive, never linearizable', () => {
    fc.assert(
      fc.property(shapeArbitrary, fc.nat(), fc.nat(), (shape, pick, how) => {
        const { history, corruptible } = buildHistory(shape);
        fc.pre(corruptible.length > 0);
        const bad = corrupt(history, corruptible[pick % corruptible.length]!, how);
        fc.pre(bad !== undefined);
        const report = checkHistory(bad, { timeoutMs: 20_000 });
        assert.notEqual(report.verdict, 'linearizable');
      }),
      { numRuns: 300, seed },
    );
  });

  test('the live and offline checkers agree on every generated history, corrupted or not', () => {
    fc.assert(
      fc.property(shapeArbitrary, fc.nat(), fc.boolean(), (shape, pick, corrupted) => {
        const { history, corruptible } = buildHistory(shape);
        const subject = corrupted && corruptible.length > 0 ? (corrupt(history, corruptible[pick % corruptible.length]!, pick) ?? history) : history;
        assert.equal(liveVerdict(subject), checkHistory(subject, { timeoutMs: 20_000 }).verdict);
      }),
      { numRuns: 300, seed },
    );
  });
});
