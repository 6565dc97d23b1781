/**
 * The lag percentiles of the live checker's stats (src/checker/live.ts, src/run/checker-thread.ts): p50,
 * p99 and the maximum of up to 16k values, several times a second. Selecting the two ranks (quickselect,
 * linear time) gives exactly what sorting would (sorted[floor(p * n)]) at a third of the cost or less.
 */

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

/** The rank sorting would read for percentile p of n values. */
function rank(p: number, n: number): number {
  return Math.min(n - 1, Math.floor(p * n));
}

/** Reorders values[lo..hi] so that values[k] holds the value sorting would put there (Hoare partition). */
function selectInPlace(values: Float64Array, lo: number, hi: number, k: number): void {
  while (hi > lo) {
    // Median of three: sorted or reversed windows (lags grow and shrink in runs) stay linear.
    const a = values[lo]!;
    const b = values[(lo + hi) >>> 1]!;
    const c = values[hi]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

/** p50, p99 and max of the first n values (NaN-free), as sorting them would give; the input is left as it was. */
export function percentilesOf(values: Float64Array, n: number): Percentiles {
  if (n <= 0) return { p50: 0, p99: 0, max: 0 };
  const copy = values.slice(0, n);
  const k99 = rank(0.99, n);
  const k50 = rank(0.5, n);
  selectInPlace(copy, 0, n - 1, k99);
  // Everything at or below k99 is now no greater than copy[k99], everything after it no smaller.
  selectInPlace(copy, 0, k99, k50);
  let max = copy[k99]!;
  for (let i = k99 + 1; i < n; i++) if (copy[i]! > max) max = copy[i]!;
  return { p50: copy[k50]!, p99: copy[k99]!, max };
}
