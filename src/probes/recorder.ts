/**
 * Records operations as they are sent (invocations, for the history file: a crash leaves them with an
 * unknown outcome) and as they complete, and hands them on (to a live checker, a file...). It also knows
 * which operations are still in flight, which gives the live checker its watermark: no operation that
 * will still be recorded can have been called before the earliest in-flight call.
 */
import type { EtcdRequest, Invocation, Operation } from '../domain/index.ts';

/** Nanoseconds on one monotonic clock. */
export type Clock = () => number;

export const monotonicNs: Clock = () => Number(process.hrtime.bigint());

export type OperationSink = (op: Operation) => void;
export type InvocationSink = (invocation: Invocation) => void;

export class HistoryRecorder {
  readonly operations: Operation[] = [];
  readonly clock: Clock;
  private readonly inFlight = new Map<number, number>();
  private readonly sinks: OperationSink[] = [];
  private readonly invocationSinks: InvocationSink[] = [];
  private nextToken = 0;
  private nextClient = 0;
  /** Keep every operation in memory (off for long live runs that stream to sinks only). */
  private readonly keep: boolean;

  constructor(options: { clock?: Clock; keep?: boolean } = {}) {
    this.clock = options.clock ?? monotonicNs;
    this.keep = options.keep ?? true;
  }

  onOperation(sink: OperationSink): void {
    this.sinks.push(sink);
  }

  /** Each operation as it is sent (before it can complete); onOperation gets it again when it completes. */
  onInvocation(sink: InvocationSink): void {
    this.invocationSinks.push(sink);
  }

  /** A fresh stream id: for each new client, and for a client after an unknown outcome. */
  newClientId(): number {
    return this.nextClient++;
  }

  /**
   * Call just before sending `request`: the invocation sinks get it at once. If one throws (the history
   * cannot be written), so does begin, and the request must not be sent.
   */
  begin(client: number, request: EtcdRequest, member?: string): { token: number; call: number } {
    const call = this.clock();
    const invocation: Invocation = { kind: 'invoke', client, call, request };
    if (member !== undefined) invocation.member = member;
    for (const sink of this.invocationSinks) sink(invocation);
    const token = this.nextToken++;
    this.inFlight.set(token, call);
    return { token, call };
  }

  end(token: number, op: Operation): void {
    this.inFlight.delete(token);
    if (this.keep) this.operations.push(op);
    for (const sink of this.sinks) sink(op);
  }

  /** Every operation called before this time has been recorded (see the header). */
  watermark(): number {
    let earliest = this.clock();
    for (const call of this.inFlight.values()) if (call < earliest) earliest = call;
    return earliest;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }
}
