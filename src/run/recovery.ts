/**
 * Time from a fault to the cluster being writable again: for each injected fault, the return time of the
 * first successful write invoked at or after the injection, minus the injection time. "First" is by
 * return time: the earliest moment a write that started after the fault is known to have committed.
 * A write invoked before the fault does not count, even if it returns after it (it may have committed
 * before the fault took effect). A fault with no such write before the run ended is unrecovered.
 *
 * faultRecoveries is the definition (pure, over a whole history); RecoveryTracker computes the same
 * figures as operations complete, for live metrics and for runs too long to keep their history.
 */
import type { FaultName, Operation } from '../domain/index.ts';
import { isErrorResponse, isWriteRequest } from '../domain/index.ts';

/** One injected fault. Times are ns on the history's clock (as operations' call and return). */
export interface FaultInjection {
  /** The fault's id in the run's fault events. */
  id: number;
  fault: FaultName;
  targets: string[];
  /** When the fault was in place (ns, history clock). */
  injectedAt: number;
}

export interface FaultRecovery extends FaultInjection {
  /** ms from the start of the run (the `origin` given) to the injection. */
  atMs: number;
  /** ms from the injection to the return of the first successful write invoked at or after it; absent when none succeeded before the run ended. */
  writableAfterMs?: number;
}

export interface RecoverySummary {
  /** Faults measured. */
  faults: number;
  /** Faults after which a write succeeded before the run ended. */
  recovered: number;
  /** Median and maximum writableAfterMs of the recovered faults; absent when none recovered. */
  medianMs?: number;
  maxMs?: number;
}

/** A write (it can change the store) that returned a response that is not an error. */
export function isSuccessfulWrite(op: Operation): op is Operation & { return: number } {
  return op.return !== null && op.response !== undefined && !isErrorResponse(op.response) && isWriteRequest(op.request);
}

function recovery(fault: FaultInjection, origin: number, firstReturn: number | undefined): FaultRecovery {
  const result: FaultRecovery = { ...fault, targets: [...fault.targets], atMs: (fault.injectedAt - origin) / 1e6 };
  if (firstReturn !== undefined) result.writableAfterMs = (firstReturn - fault.injectedAt) / 1e6;
  return result;
}

/**
 * The recovery of each fault (in the order given) over a history's operations (any order). `origin`
 * (ns, history clock) is where atMs counts from: the start of the run.
 */
export function faultRecoveries(operations: readonly Operation[], faults: readonly FaultInjection[], origin = 0): FaultRecovery[] {
  const writes = operations.filter(isSuccessfulWrite).sort((a, b) => a.call - b.call);
  // suffixMin[i]: the earliest return among writes[i..].
  const suffixMin = new Array<number>(writes.length + 1);
  suffixMin[writes.length] = Infinity;
  for (let i = writes.length - 1; i >= 0; i--) suffixMin[i] = Math.min(writes[i]!.return, suffixMin[i + 1]!);
  return faults.map((fault) => {
    // The first write invoked at or after the injection (binary search on call).
    let lo = 0;
    let hi = writes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (writes[mid]!.call < fault.injectedAt) lo = mid + 1;
      else hi = mid;
    }
    const first = suffixMin[lo]!;
    return recovery(fault, origin, Number.isFinite(first) ? first : undefined);
  });
}

/** Count, recovered, median and maximum of writableAfterMs. */
export function summarizeRecoveries(recoveries: readonly FaultRecovery[]): RecoverySummary {
  const times = recoveries.flatMap((r) => (r.writableAfterMs === undefined ? [] : [r.writableAfterMs])).sort((a, b) => a - b);
  const summary: RecoverySummary = { faults: recoveries.length, recovered: times.length };
  if (times.length > 0) {
    const mid = times.length >> 1;
    summary.medianMs = times.length % 2 === 1 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
    summary.maxMs = times.at(-1)!;
  }
  return summary;
}

/**
 * The same figures, live. Register each fault (fault()) as soon as it is in place, before any operation
 * invoked after it can complete, then feed operations in the order they complete (their return order,
 * as the recorder hands them on). A fault counts once confirmed (its effect was verified); abandon()
 * forgets one whose injection failed. Faults never confirmed are not in results().
 */
export class RecoveryTracker {
  private readonly origin: number;
  private readonly faults = new Map<number, { fault: FaultInjection; firstReturn: number | undefined; confirmed: boolean }>();
  /** Registered faults that no write has recovered yet (the only ones an operation can change). */
  private readonly waiting = new Map<number, FaultInjection>();

  /** `origin`: the start of the run (ns, history clock), where atMs counts from. */
  constructor(origin = 0) {
    this.origin = origin;
  }

  fault(fault: FaultInjection): void {
    if (this.faults.has(fault.id)) return;
    this.faults.set(fault.id, { fault, firstReturn: undefined, confirmed: false });
    this.waiting.set(fault.id, fault);
  }

  /** The fault took effect. Returns its recovery if a write already succeeded after it. */
  confirm(id: number): FaultRecovery | undefined {
    const entry = this.faults.get(id);
    if (!entry || entry.confirmed) return undefined;
    entry.confirmed = true;
    return entry.firstReturn === undefined ? undefined : recovery(entry.fault, this.origin, entry.firstReturn);
  }

  /** The fault's injection failed before it was confirmed: it is not measured. A confirmed fault stays. */
  abandon(id: number): void {
    if (this.faults.get(id)?.confirmed === true) return;
    this.faults.delete(id);
    this.waiting.delete(id);
  }

  /** A completed operation. Returns the confirmed faults it recovers (the first successful write after them). */
  operation(op: Operation): FaultRecovery[] {
    if (this.waiting.size === 0 || !isSuccessfulWrite(op)) return [];
    const recovered: FaultRecovery[] = [];
    for (const [id, fault] of this.waiting) {
      if (op.call < fault.injectedAt) continue;
      const entry = this.faults.get(id)!;
      entry.firstReturn = op.return;
      this.waiting.delete(id);
      if (entry.confirmed) recovered.push(recovery(fault, this.origin, op.return));
    }
    return recovered;
  }

  /** Every confirmed fault's recovery, in injection order. */
  results(): FaultRecovery[] {
    return [...this.faults.values()]
      .filter((e) => e.confirmed)
      .sort((a, b) => a.fault.injectedAt - b.fault.injectedAt || a.fault.id - b.fault.id)
      .map((e) => recovery(e.fault, this.origin, e.firstReturn));
  }
}
