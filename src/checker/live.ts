/**
 * The live checker: consumes operations as they complete and keeps a running verdict, with bounded
 * memory. It runs the same engine as the offline check (linearize.ts) without keeping paths, so on the
 * same history and options both reach the same verdict.
 *
 * Contract with the producer (the probe recorder): push every completed operation (or one abandoned
 * with an unknown outcome), then call advance(t) once no operation with a call before t can still be
 * pushed, i.e. t = the earliest call among operations still in flight (or now when none is).
 */
import type { ClusterMode, Operation } from '../domain/index.ts';
import { defaultMaxFrontier, defaultUnknownHorizonMs } from './check.ts';
import { LinearizationEngine, roleOf } from './linearize.ts';
import type { Verdict, ViolationEvidence } from './result.ts';

export interface LiveCheckerOptions {
  mode?: ClusterMode;
  prefix?: string;
  initialRevision?: number;
  /** Live histories come from our own probes, which record revisions and versions. */
  trackRevision?: boolean;
  trackVersion?: boolean;
  unknownHorizonMs?: number;
  maxFrontier?: number;
}

export interface LiveStats {
  /** Operations pushed. */
  received: number;
  /** Operations whose return the checker has settled. */
  processed: number;
  /** Operations received but not yet settled (waiting for the watermark, or open). */
  pendingOperations: number;
  frontier: number;
  /** Percentiles of the time from push to verdict, over the last 16,384 settled operations. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

const lagWindow = 16_384;

export class LiveChecker {
  private readonly engine: LinearizationEngine;
  private readonly pushedAt = new Map<number, number>();
  private readonly lags = new Float64Array(lagWindow);
  private lagCount = 0;
  private next = 0;
  private staleReads = 0;

  constructor(options: LiveCheckerOptions = {}) {
    this.engine = new LinearizationEngine({
      mode: options.mode ?? 'exclusive',
      prefix: options.prefix ?? '',
      initialRevision: options.initialRevision ?? 1,
      trackRevision: options.trackRevision ?? true,
      trackVersion: options.trackVersion ?? true,
      trackPaths: false,
      unknownHorizon: (options.unknownHorizonMs ?? defaultUnknownHorizonMs) * 1e6,
      maxFrontier: options.maxFrontier ?? defaultMaxFrontier,
      deadline: Infinity,
    });
    this.engine.onSettled = (index) => {
      const at = this.pushedAt.get(index);
      if (at === undefined) return;
      this.pushedAt.delete(index);
      this.lags[this.lagCount++ % lagWindow] = performance.now() - at;
    };
  }

  /** Adds a completed (or abandoned) operation; returns its index in the stream. */
  push(op: Operation): number {
    const index = this.next++;
    const role = roleOf(op);
    if (role === 'stale') this.staleReads++;
    if (role === 'linearize') this.pushedAt.set(index, performance.now());
    this.engine.add(index, op, role);
    return index;
  }

  /** Settles everything before `watermark` (see the contract above). */
  advance(watermark: number): void {
    this.engine.advance(watermark);
  }

  /** Settles everything pushed: call when the stream has ended. */
  finish(): Verdict {
    this.engine.advance(Infinity);
    return this.verdict;
  }

  get verdict(): Verdict {
    if (this.engine.violation) return 'violation';
    if (this.engine.inconclusive !== undefined) return 'inconclusive';
    return 'linearizable';
  }

  get violation(): ViolationEvidence | undefined {
    return this.engine.violation;
  }

  get inconclusiveReason(): string | undefined {
    return this.engine.inconclusive;
  }

  stats(): LiveStats {
    const n = Math.min(this.lagCount, lagWindow);
    const sorted = Array.from(this.lags.subarray(0, n)).sort((a, b) => a - b);
    const pct = (p: number): number => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(p * n))]!);
    return {
      received: this.next,
      processed: this.engine.settled,
      pendingOperations: this.pushedAt.size,
      frontier: this.engine.frontierSize,
      lagP50Ms: pct(0.5),
      lagP99Ms: pct(0.99),
      lagMaxMs: n === 0 ? 0 : sorted[n - 1]!,
    };
  }
}
