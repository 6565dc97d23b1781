/** Parses durations like "500ms", "30s", "2m", "1h30m" (Go/Kubernetes style) into milliseconds. */
export class DurationFormatError extends Error {
  override name = 'DurationFormatError';
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw new DurationFormatError(`"${text}" is not a duration (use e.g. 500ms, 30s, 2m, 1h30m)`);
  }
  return parts.reduce((total, p) => total + Number(p[1]) * units[p[2]!]!, 0);
}
