/**
 * The live checker's lag percentiles (src/percentiles.ts): selecting the ranks gives what sorting gives,
 * on any values (duplicates, runs, a window only partly filled), and leaves the window as it was.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { percentilesOf } from '../../src/percentiles.ts';

function bySorting(values: Float64Array, n: number): { p50: number; p99: number; max: number } {
  const sorted = values.slice(0, n).sort();
  const at = (p: number): number => sorted[Math.min(n - 1, Math.floor(p * n))]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted[n - 1]! };
}

// + 0: no -0, which sorts apart from 0 although lags never are.
const lags = fc.array(fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }).map((x) => x + 0), fc.nat(5)), { minLength: 1, maxLength: 600 });

test('p50, p99 and max equal the sorted values at the same ranks, and the input is unchanged', () => {
  fc.assert(
    fc.property(lags, fc.nat(), (values, cut) => {
      const window = Float64Array.from(values);
      const n = 1 + (cut % values.length);
      const before = Array.from(window);
      assert.deepEqual(percentilesOf(window, n), bySorting(window, n));
      assert.deepEqual(Array.from(window), before);
    }),
    { numRuns: 500 },
  );
});

test('sorted, reversed and constant windows of the live window size', () => {
  const n = 16_384;
  const rising = Float64Array.from({ length: n }, (_, i) => i);
  const falling = Float64Array.from({ length: n }, (_, i) => n - i);
  const flat = new Float64Array(n).fill(3);
  for (const window of [rising, falling, flat]) assert.deepEqual(percentilesOf(window, n), bySorting(window, n));
  assert.deepEqual(percentilesOf(rising, n), { p50: 8192, p99: 16_220, max: 16_383 });
});

test('no values: all zero', () => {
  assert.deepEqual(percentilesOf(new Float64Array(4), 0), { p50: 0, p99: 0, max: 0 });
});
