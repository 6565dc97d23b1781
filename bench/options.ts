/** Command-line helpers shared by the benchmark scripts. */

/** A non-negative integer option (underscores allowed: 10_000_000), or the fallback when absent. */
export function intOption(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}
