/**
 * Plans a run's faults from its spec and seed, before the run starts: pure and deterministic, so a failing
 * run can be replayed with the same faults at the same offsets (the executor may drift from them while it
 * waits for the cluster to recover; the plan gives the order and the nominal times).
 *
 * The run is a sequence of rounds. Each waits an interval (drawn in intervalMs), then injects 1 to
 * maxConcurrentFaults faults at once, drawn by weight without repeating a choice within the round. A fault
 * with a duration lasts a time drawn in durationMs; an instantaneous one (kill, panics...) has duration 0.
 * The next round's interval starts when the round's longest fault ends, so rounds never overlap and at most
 * maxConcurrentFaults faults are active at any instant. The last `quietMs` of the run stay fault-free, so
 * the cluster recovers before the final checks.
 */
import type { FaultChoice, FaultsSpec, PlannedFault } from '../domain/faults.ts';
import { seededRandom } from '../random.ts';
import { faultDefinition } from './catalog.ts';

/** The end of the run left without faults (ms). */
export const quietMs = 2000;

export interface PlanOptions {
  seed: number;
  /** The run's traffic duration, ms. */
  runDurationMs: number;
  /** No fault starts before this offset (ms; default 0): the first round's interval counts from here. */
  startDelayMs?: number;
}

/** Mixed into the seed so the plan does not share its random stream with traffic seeded by the same number. */
const faultStream = 0x5fa1_7ed;

function checkSpec(spec: FaultsSpec, options: PlanOptions): void {
  const range = (name: string, r: { min: number; max: number }): void => {
    if (!Number.isFinite(r.min) || !Number.isFinite(r.max) || r.min < 0 || r.min > r.max) {
      throw new RangeError(`${name} must be a range of non-negative numbers with min <= max, got ${r.min}..${r.max}`);
    }
  };
  range('intervalMs', spec.intervalMs);
  range('durationMs', spec.durationMs);
  if (!Number.isSafeInteger(spec.maxConcurrentFaults) || spec.maxConcurrentFaults < 1) {
    throw new RangeError(`maxConcurrentFaults must be a positive integer, got ${spec.maxConcurrentFaults}`);
  }
  if (!Number.isFinite(options.runDurationMs)) throw new RangeError(`runDurationMs must be a number, got ${options.runDurationMs}`);
}

/** A whole number in [min, max] (bounds rounded inwards to whole milliseconds). */
function drawMs(random: () => number, range: { min: number; max: number }): number {
  const min = Math.ceil(range.min);
  const max = Math.max(min, Math.floor(range.max));
  return min + Math.floor(random() * (max - min + 1));
}

/** Draws `count` distinct choices by weight (without replacement). */
function drawChoices(random: () => number, choices: readonly FaultChoice[], count: number): FaultChoice[] {
  const pool = [...choices];
  const drawn: FaultChoice[] = [];
  while (drawn.length < count && pool.length > 0) {
    const total = pool.reduce((sum, c) => sum + c.weight, 0);
    let r = random() * total;
    let index = pool.findIndex((c) => (r -= c.weight) < 0);
    if (index < 0) index = pool.length - 1; // rounding at the top end
    drawn.push(pool[index]!);
    pool.splice(index, 1);
  }
  return drawn;
}

/**
 * The faults of a run, in injection order (by `atMs`, then by position in the round). Same seed, spec and
 * options: the same plan. Choices with a weight that is not a positive number are never drawn. A round
 * never holds more faults than there are choices.
 */
export function planFaults(spec: FaultsSpec, options: PlanOptions): PlannedFault[] {
  checkSpec(spec, options);
  const choices = spec.choices.filter((c) => Number.isFinite(c.weight) && c.weight > 0);
  if (choices.length === 0) return [];
  const random = seededRandom((options.seed ^ faultStream) | 0);
  const end = options.runDurationMs - quietMs;
  const plan: PlannedFault[] = [];
  let time = Math.max(0, options.startDelayMs ?? 0);
  for (let round = 0; ; round++) {
    // At least 1 ms between rounds, so a round of instantaneous faults never shares its instant with the next.
    time += Math.max(1, drawMs(random, spec.intervalMs));
    const count = 1 + Math.floor(random() * Math.min(spec.maxConcurrentFaults, choices.length));
    const faults = drawChoices(random, choices, count).map((choice): PlannedFault => {
      const durationMs = faultDefinition(choice.fault).instantaneous ? 0 : drawMs(random, spec.durationMs);
      return {
        round,
        atMs: time,
        fault: choice.fault,
        target: choice.target,
        ...(choice.member === undefined ? {} : { member: choice.member }),
        params: { ...choice.params },
        durationMs,
        pick: random(),
      };
    });
    const roundEnd = time + Math.max(0, ...faults.map((f) => f.durationMs));
    if (roundEnd > end) return plan;
    plan.push(...faults);
    time = roundEnd;
  }
}
