/**
 * The live search: the live checker's fallback (live.ts) for streams without revisions and for the window
 * the revision-ordered path could not decide. The live checker: consumes operations as they complete and keeps a running verdict, with bounded
 * memory. It runs the same engine as the offline check (linearize.ts) without keeping paths, so on the
 * same history and options both reach the same verdict.
 *
 * Contract with the producer (the probe recorder): push every completed operation (or one abandoned
 * with an unknown outcome), then call advance(t) once no operation with a call before t can still be
 * pushed, i.e. t = the earliest call among operations still in flight (or now when none is).
 *
 * Unknown-outcome writes are resolved the way the offline check patches them (patch.ts): a write whose
 * unique value a later read or watch event shows took effect before that observation, at the revision
 * it shows. The live checker holds such a write back for up to `resolveWindowMs` of history time,
 * waiting for an observation, before handing it to the engine as unknown. Probes write unique values
 * by construction; the live checker relies on that (the offline check verifies it). A write released
 * unobserved gets the placeholder value, as offline (patch.ts), so identical ones are interchangeable; if
 * its value is observed after all, the live verdict becomes inconclusive (never a false violation).
 */
import type { Operation, WatchResponse } from '../domain/index.ts';
import { defaultMaxFrontier, defaultUnknownHorizonMs } from './check.ts';
import { LinearizationEngine } from './linearize.ts';
import type { EngineOptions } from './linearize-options.ts';
import { roleOf } from './roles.ts';
import { anonymize, forEachObservedValue, forEachWatchedValue, RecentObservations, resolvedOperation, unobservedValue, writtenValues, type Observation } from './patch.ts';
import type { ModelState } from './model-state.ts';
import type { Verdict, ViolationEvidence } from './result.ts';
import { defaultResolveWindowMs, type LiveCheckerOptions, type LiveStats } from './live-options.ts';

const lagWindow = 16_384;

/** The search engine's options for a live checker's options (the live search's, and the window closing's). */
export function liveEngineOptions(options: LiveCheckerOptions, fixed: Pick<EngineOptions, 'trackPaths' | 'deadline'>): EngineOptions {
  return {
    mode: options.mode ?? 'exclusive',
    prefix: options.prefix ?? '',
    initialRevision: options.initialRevision ?? 1,
    trackRevision: options.trackRevision ?? true,
    trackVersion: options.trackVersion ?? true,
    unknownHorizon: (options.unknownHorizonMs ?? defaultUnknownHorizonMs) * 1e6,
    maxFrontier: options.maxFrontier ?? defaultMaxFrontier,
    ...fixed,
  };
}

export class SearchLiveChecker {
  private readonly engine: LinearizationEngine;
  private readonly pushedAt = new Map<number, number>();
  private readonly lags = new Float64Array(lagWindow);
  private lagCount = 0;
  private next = 0;
  private staleReads = 0;
  private resolved = 0;
  private readonly resolveWindow: number;
  /** Unknown-outcome writes waiting for an observation, by index; and their values. */
  private readonly waiting = new Map<number, { op: Operation; values: string[] }>();
  private readonly waitingByValue = new Map<string, number>();
  /** Recent observations (value -> time and revision), kept while an unpushed write could match them. */
  private readonly observations = new RecentObservations();
  /** Values of writes released unobserved (as the placeholder), in release order, until the horizon. */
  private readonly anonymized = new Map<string, number>();
  private readonly anonymizedOrder: { call: number; value: string }[] = [];
  private lateObservation: string | undefined;
  /** Values that txn compares named (a write of such a value is never anonymized), with their times. */
  private readonly compared = new Map<string, number>();
  private readonly unknownHorizon: number;

  constructor(options: LiveCheckerOptions = {}, initialState?: ModelState) {
    this.engine = new LinearizationEngine({ ...(initialState ? { initialState } : {}), ...liveEngineOptions(options, { trackPaths: false, deadline: Infinity }) });
    this.resolveWindow = (options.resolveWindowMs ?? defaultResolveWindowMs) * 1e6;
    this.unknownHorizon = (options.unknownHorizonMs ?? defaultUnknownHorizonMs) * 1e6;
    this.engine.onSettled = (index) => {
      const at = this.pushedAt.get(index);
      if (at === undefined) return;
      this.pushedAt.delete(index);
      this.lags[this.lagCount++ % lagWindow] = performance.now() - at;
    };
  }

  /** Adds a completed (or abandoned) operation; returns its index in the stream. */
  push(op: Operation): number {
    return this.pushAt(this.next, op);
  }

  /** push() with the index the caller numbers it by (the live checker hands over its own numbering). */
  pushAt(index: number, op: Operation): number {
    this.next = Math.max(this.next, index + 1);
    const role = roleOf(op);
    if (role === 'stale') this.staleReads++;
    if (op.return !== null && op.response) {
      const time = op.return;
      forEachObservedValue(op.response, (value, revision) => this.observe(value, time, revision));
    }
    if (op.request.type === 'txn') {
      for (const c of op.request.compare) {
        if (c.target !== 'value') continue;
        const value = String(c.value);
        this.compared.set(value, op.call);
        if (this.anonymized.has(value)) this.lateObservation ??= `a txn compared against ${JSON.stringify(value)}, the value of an unknown-outcome write released unobserved`;
      }
    }
    if (role === 'optional') {
      const values = writtenValues(op);
      for (const value of values) {
        const seen = this.observations.get(value);
        if (seen && seen.time >= op.call) {
          this.addResolved(index, op, seen, value);
          return index;
        }
      }
      if (values.length > 0) {
        this.waiting.set(index, { op, values });
        for (const v of values) this.waitingByValue.set(v, index);
        return index;
      }
    }
    if (role === 'linearize') this.pushedAt.set(index, performance.now());
    this.engine.add(index, op, role);
    return index;
  }

  /** Adds a watch response: its events show which writes took effect (see the header). */
  pushWatchResponse(response: WatchResponse): void {
    forEachWatchedValue(response, (value, revision) => this.observe(value, response.time, revision));
  }

  /** Settles everything before `watermark` (see the contract above). */
  advance(watermark: number): void {
    // Writes that waited long enough without an observation go in as unknown.
    for (const [index, { op, values }] of this.waiting) {
      if (op.call + this.resolveWindow >= watermark) continue;
      this.release(index, values);
      const unmentioned = (value: string): boolean => !this.compared.has(value);
      for (const value of values.filter(unmentioned)) {
        this.anonymized.set(value, op.call);
        this.anonymizedOrder.push({ call: op.call, value });
      }
      this.engine.add(index, { ...op, request: anonymize(op.request, unmentioned) }, 'optional');
    }
    while (this.anonymizedOrder.length > 0 && this.anonymizedOrder[0]!.call < watermark - this.unknownHorizon) {
      this.anonymized.delete(this.anonymizedOrder.shift()!.value);
    }
    // A compare can only name a write that may still be released while that write is in the window.
    if (this.compared.size > 65_536) {
      for (const [value, call] of this.compared) if (call < watermark - this.unknownHorizon - this.resolveWindow) this.compared.delete(value);
    }
    let limit = watermark;
    for (const { op } of this.waiting.values()) limit = Math.min(limit, op.call);
    this.observations.forgetBefore(watermark);
    this.engine.advance(limit);
  }

  private observe(value: string | undefined, time: number, revision: number | undefined): void {
    if (value === undefined) return;
    if (this.anonymized.has(value) && value !== unobservedValue) {
      this.lateObservation ??= `the value ${JSON.stringify(value)} of an unknown-outcome write was observed after the ${this.resolveWindow / 1e6} ms resolve window`;
    }
    const waiting = this.waitingByValue.get(value);
    if (waiting !== undefined) {
      const { op, values } = this.waiting.get(waiting)!;
      if (time >= op.call) {
        this.release(waiting, values);
        this.addResolved(waiting, op, { time, revision }, value);
        return;
      }
    }
    this.observations.add(value, time, revision);
  }

  private release(index: number, values: string[]): void {
    this.waiting.delete(index);
    for (const v of values) this.waitingByValue.delete(v);
  }

  /** The write took effect before `seen.time`, at `seen.revision` (the same patch as patch.ts). */
  private addResolved(index: number, op: Operation, seen: Observation, value: string): void {
    this.resolved++;
    this.pushedAt.set(index, performance.now());
    this.engine.add(index, resolvedOperation(op, seen, value), 'linearize');
  }

  /** Settles everything pushed: call when the stream has ended. */
  finish(): Verdict {
    this.advance(Infinity);
    return this.verdict;
  }

  get verdict(): Verdict {
    // A late observation contradicts what the engine was told: no verdict can be trusted beyond it.
    if (this.lateObservation !== undefined) return 'inconclusive';
    if (this.engine.violation) return 'violation';
    if (this.engine.inconclusive !== undefined) return 'inconclusive';
    return 'linearizable';
  }

  get violation(): ViolationEvidence | undefined {
    return this.engine.violation;
  }

  get inconclusiveReason(): string | undefined {
    return this.lateObservation ?? this.engine.inconclusive;
  }

  stats(): LiveStats {
    const n = Math.min(this.lagCount, lagWindow);
    const sorted = Array.from(this.lags.subarray(0, n)).sort((a, b) => a - b);
    const pct = (p: number): number => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(p * n))]!);
    return {
      received: this.next,
      processed: this.engine.settled,
      pendingOperations: this.pushedAt.size + this.waiting.size,
      resolved: this.resolved,
      frontier: this.engine.frontierSize,
      lagP50Ms: pct(0.5),
      lagP99Ms: pct(0.99),
      lagMaxMs: n === 0 ? 0 : sorted[n - 1]!,
      waitingForWatch: this.waiting.size,
      method: 'search',
    };
  }
}

