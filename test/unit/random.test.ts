// The one seeded generator: seeds replay runs, fault schedules and simulations, so its sequence is pinned
// (mulberry32's reference output) and may never change.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Mulberry32, seededRandom } from '../../src/random.ts';

test('mulberry32 gives the reference sequence for a seed, negative seeds included', () => {
  const a = seededRandom(42);
  assert.deepEqual([a(), a(), a()], [0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  const b = seededRandom(-7);
  assert.deepEqual([b(), b(), b()], [0.43306733411736786, 0.32539576734416187, 0.5442695003002882]);
});

test('the class and the function are one generator; the state resumes a sequence', () => {
  const generator = new Mulberry32(42);
  const first = generator.next();
  const resumed = new Mulberry32(0);
  resumed.state = generator.state;
  assert.equal(first, seededRandom(42)());
  assert.equal(resumed.next(), generator.next());
});
