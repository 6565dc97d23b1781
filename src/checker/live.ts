/**
 * The live checker: consumes operations as they complete and keeps a running verdict, with bounded
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
import type { ClusterMode, Operation, WatchResponse } from '../domain/index.ts';
import { defaultMaxFrontier, defaultUnknownHorizonMs } from './check.ts';
import { LinearizationEngine, roleOf } from './linearize.ts';
import { anonymize, forEachObservedValue, forEachWatchedValue, resolvedOperation, unobservedValue, writtenValues, type Observation } from './patch.ts';
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
  /**
   * How long an unknown-outcome write waits for a read or watch event to show its value; default 5 s.
   * A write in flight when the leader dies is committed (or not) only after the next election plus the
   * client's deadline: 1 s proved too short for a leader kill, which then ended inconclusive live.
   */
  resolveWindowMs?: number;
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
}

const lagWindow = 16_384;

export const defaultResolveWindowMs = 5000;

export class LiveChecker {
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
  private readonly observations = new Map<string, { time: number; revision: number | undefined }>();
  private readonly observationOrder: { time: number; value: string }[] = [];
  private observationHead = 0;
  /** Values of writes released unobserved (as the placeholder), in release order, until the horizon. */
  private readonly anonymized = new Map<string, number>();
  private readonly anonymizedOrder: { call: number; value: string }[] = [];
  private lateObservation: string | undefined;
  /** Values that txn compares named (a write of such a value is never anonymized), with their times. */
  private readonly compared = new Map<string, number>();
  private readonly unknownHorizon: number;

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
    const index = this.next++;
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
    this.forgetObservationsBefore(watermark);
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
    if (!this.observations.has(value)) {
      this.observations.set(value, { time, revision });
      this.observationOrder.push({ time, value });
    }
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

  /** No operation pushed from now on was called before the watermark, so older observations are useless. */
  private forgetObservationsBefore(watermark: number): void {
    while (this.observationHead < this.observationOrder.length && this.observationOrder[this.observationHead]!.time < watermark) {
      this.observations.delete(this.observationOrder[this.observationHead]!.value);
      this.observationHead++;
    }
    if (this.observationHead > 65_536) {
      this.observationOrder.splice(0, this.observationHead);
      this.observationHead = 0;
    }
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
    };
  }
}

