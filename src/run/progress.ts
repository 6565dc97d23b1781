/** One line of live progress per interval: ops/s, errors, verdict, checker lag. */
import type { RunProgress } from './types.ts';

export function formatProgress(p: RunProgress): string {
  const elapsed = `${Math.round(p.elapsedMs / 1000)}s`.padStart(5);
  const availability = p.availability === undefined ? '   -  ' : `${(p.availability * 100).toFixed(1)}%`.padStart(6);
  const warning = p.belowMinQps ? '  below min QPS' : '';
  const faults = p.activeFaults.length > 0 ? `  faults ${p.activeFaults.join('+')}` : '';
  // The live check waits on the watch: say so when that makes it fall behind (a second at p99).
  const behind = p.waitingForWatch > 0 && p.lagP99Ms > 1000 ? '  watch behind' : '';
  const search = p.checkMethod === 'search' ? ' (search)' : '';
  return (
    `[${elapsed}] ${String(p.operations).padStart(8)} ops ${p.intervalQps.toFixed(0).padStart(5)} ops/s` +
    `  failed ${p.failed}  unknown ${p.unknown}  avail ${availability}  watch events ${p.watchEvents}` +
    `  lag p50 ${p.lagP50Ms.toFixed(1)} p99 ${p.lagP99Ms.toFixed(1)} ms  pending ${p.pending}  waiting for watch ${p.waitingForWatch}` +
    `  verdict ${p.verdict}${search}${faults}${warning}${behind}`
  );
}
