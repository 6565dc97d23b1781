/**
 * What the live checker (live.ts) takes and reports: its options, its stats, and the window of
 * push-to-verdict times behind the stats' lag percentiles. Separate from the checker so the search it
 * hands over to (live-search.ts) shares them without importing live.ts back.
 */
import type { ClusterMode } from '../domain/index.ts';
import { percentilesOf } from '../percentiles.ts';

export interface LiveCheckerOptions {
  mode?: ClusterMode;
  prefix?: string;
  initialRevision?: number;
  /** Live histories come from our own probes, which record revisions and versions. */
  trackRevision?: boolean;
  trackVersion?: boolean;
  unknownHorizonMs?: number;
  maxFrontier?: number;
  /**
   * How long an unknown-outcome write may stay unresolved while a revision nobody claims holds the
   * revision order (then the search takes over), and, in the search, how long it waits for an observation
   * of its value; default 5 s. A write in flight when the leader dies is committed (or not) only after the
   * next election plus the client's deadline.
   */
  resolveWindowMs?: number;
  /**
   * The watch responses carry each put's lease (our recorder's, since the history format has `lease` on put
   * events): the state may then move on from a revision's watch events before the write that made it
   * returns. Off for streams that may lack them (older recordings): there a put's lease would be unknown.
   */
  watchEventsCarryLeases?: boolean;
}

export interface LiveStats {
  /** Operations pushed. */
  received: number;
  /** Operations whose return the checker has settled. */
  processed: number;
  /** Operations received but not yet settled (waiting for the watermark, or open). */
  pendingOperations: number;
  /** Unknown-outcome writes resolved by an observation of their value. */
  resolved: number;
  frontier: number;
  /** Percentiles of the time from push to verdict, over the last 16,384 settled operations. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** Operations held behind a revision the watch (or a response) has not shown yet, plus unknown writes not yet resolved. */
  waitingForWatch: number;
  /** `revision`: the revision-ordered path; `search`: the search took over (see searchReason). */
  method: 'revision' | 'search';
  /** Why the search took over (or a window opened, or the last one that closed), or why the live verdict is left to the offline check. */
  searchReason?: string;
  /** Search windows that closed, the revision order resuming after each (absent: none). */
  windowsClosed?: number;
}

export const defaultResolveWindowMs = 5000;

const lagWindow = 16_384;

/** Push-to-verdict times of the last lagWindow settled operations. */
export class LagWindow {
  private readonly lags = new Float64Array(lagWindow);
  private count = 0;

  add(ms: number): void {
    this.lags[this.count++ % lagWindow] = ms;
  }

  percentiles(): { lagP50Ms: number; lagP99Ms: number; lagMaxMs: number } {
    // Selected, not sorted: this runs several times a second on up to 16k values.
    const { p50, p99, max } = percentilesOf(this.lags, Math.min(this.count, lagWindow));
    return { lagP50Ms: p50, lagP99Ms: p99, lagMaxMs: max };
  }
}
