// The beam (linearize.ts, the offline fallback when the exact search gives up): it agrees with the exact
// search, finds what the exact search cannot on 200-operation histories without revisions, and never
// calls a corrupted history linearizable.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { modelOptionsFor, witnessProblem } from '../../src/checker/check.ts';
import { LinearizationEngine } from '../../src/checker/linearize.ts';
import { InconclusiveError } from '../../src/checker/linearize-options.ts';
import { roleOf } from '../../src/checker/roles.ts';
import { patchHistory } from '../../src/checker/patch.ts';
import type { History } from '../../src/domain/index.ts';
import { buildHistory, corrupt, shapeArbitrary, sizedShapeArbitrary } from '../helpers/random-histories.ts';

type SearchVerdict = 'linearizable' | 'violation' | 'inconclusive';

/** The search alone (no revision path, no partitions), exact or as the beam from the start. */
function search(original: History, beam: boolean): { verdict: SearchVerdict; history: History; linearization: number[] | undefined } {
  const history: History = { ...original, operations: patchHistory(original).operations };
  const engine = new LinearizationEngine({
    ...modelOptionsFor(history),
    trackPaths: true,
    unknownHorizon: Infinity,
    maxFrontier: 20_000,
    // Generous: a verdict must not depend on the machine's speed.
    deadline: Date.now() + 120_000,
    beam,
  });
  history.operations.forEach((op, index) => engine.add(index, op, roleOf(op)));
  try {
    engine.advance(Infinity);
  } catch (error) {
    if (!(error instanceof InconclusiveError)) throw error;
    engine.inconclusive = error.message;
  }
  const verdict: SearchVerdict = engine.violation ? 'violation' : engine.inconclusive !== undefined ? 'inconclusive' : 'linearizable';
  return { verdict, history, linearization: engine.linearization() };
}

/** A beam verdict of linearizable comes with an order that replays from the initial state, in real time. */
function assertWitness(result: ReturnType<typeof search>): void {
  assert.ok(result.linearization !== undefined);
  assert.equal(witnessProblem(result.history, result.linearization, modelOptionsFor(result.history)), undefined);
}

const seed = process.env['FC_SEED'] === undefined ? 20_261_125 : Number(process.env['FC_SEED']);

describe('beam against the exact search', () => {
  test('never a violation, never linearizable where the exact search finds a violation, and every order it finds replays', () => {
    let beamDecided = 0;
    fc.assert(
      fc.property(shapeArbitrary, (shape) => {
        const { history } = buildHistory(shape);
        const exact = search(history, false);
        const beam = search(history, true);
        assert.notEqual(beam.verdict, 'violation');
        if (exact.verdict === 'violation') assert.notEqual(beam.verdict, 'linearizable');
        if (beam.verdict === 'linearizable') {
          beamDecided++;
          assertWitness(beam);
        }
      }),
      { numRuns: 150, seed },
    );
    // Most of these small histories are easy: a beam that finds nothing would pass the checks above.
    assert.ok(beamDecided >= 100, `the beam found an order on only ${beamDecided} of 150 histories`);
  });

  test('a corrupted history is never linearizable to the beam', () => {
    let checked = 0;
    fc.assert(
      fc.property(shapeArbitrary, fc.nat(), fc.nat(3), (shape, pick, how) => {
        const { history, corruptible } = buildHistory(shape);
        if (corruptible.length === 0) return;
        const bad = corrupt(history, corruptible[pick % corruptible.length]!, how);
        if (bad === undefined) return;
        checked++;
        assert.notEqual(search(bad, true).verdict, 'linearizable');
        assert.notEqual(search(bad, false).verdict, 'linearizable');
      }),
      { numRuns: 150, seed },
    );
    assert.ok(checked >= 100, `only ${checked} corruptions`);
  });
});

/**
 * 200 operations, about 28% of them with an unknown outcome, no revisions in the responses (revisions
 * are tracked only because compare-and-set on mod revision tests them): the exact search gives up on
 * every one of the sweep's first 20 draws (bench/checker.ts --sweep-revisions without); the beam decides
 * them. Three fixed draws of that sweep.
 */
describe('beam on 200-operation histories without revisions', () => {
  const draws = fc.sample(sizedShapeArbitrary({ ops: 200, unknownRate: 0.25, withRevisions: false }), { numRuns: 3, seed: 20_261_125 });
  draws.forEach((shape, i) => {
    const { history, corruptible } = buildHistory(shape);

    test(`draw ${i}: linearizable, with an order that replays`, () => {
      assert.ok(history.operations.filter((op) => op.return === null).length >= 40);
      const beam = search(history, true);
      assert.equal(beam.verdict, 'linearizable');
      assertWitness(beam);
    });

    test(`draw ${i}: a corrupted response is never linearizable`, () => {
      // Reads spread over the history (corrupt() changes what a read shows: a value, or a key more).
      const reads = corruptible.filter((index) => history.operations[index]!.request.type === 'range');
      const picked = [0.2, 0.5, 0.8].map((at) => reads[Math.floor(at * reads.length)]!);
      for (const [how, index] of picked.entries()) {
        const bad = corrupt(history, index, how);
        assert.ok(bad !== undefined);
        assert.notEqual(search(bad, true).verdict, 'linearizable', `corruption ${how} of operation ${index}`);
      }
    });
  });
});
