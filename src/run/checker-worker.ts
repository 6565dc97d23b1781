/**
 * The checkers off the main thread. A run executes inside the operator process, whose one event loop also
 * renews the leader-election Lease, reconciles and answers probes; the linearizability search can hold a
 * thread for seconds (after a failover, many unknown-outcome writes grow the frontier), which once cost
 * the operator its Lease. So the live checker and the final offline check run in a worker thread
 * (checker-thread.ts) and the main thread only records and forwards:
 *
 * - LiveCheckerWorker: the LiveChecker surface the engine needs. push/advance/pushWatchResponse are queued
 *   in call order and sent in batches (every 20 ms or every 512 calls), and the worker replays them on one
 *   LiveChecker in that same order, so the live verdict is the one the in-process checker would reach. A
 *   batch carries its operations and watch responses as one JSON text (the lines the history file holds,
 *   so the live checker sees what the offline check will read: the engine passes the writer's lines, and
 *   nothing is encoded twice) and its numbers in a transferred Float64Array. (3.0 µs of the recording
 *   thread per call when each call was still encoded here, against 3.7 µs for a structured clone of each
 *   call's objects in 5 ms batches.) verdict, violation, inconclusiveReason and stats() return the latest state the
 *   worker reported: stale by at most one message. A change of verdict is reported as soon as the worker
 *   sees it (onUpdate), other changes at most every 250 ms. finish() is async.
 * - checkHistoryInWorker: checkHistory in a worker of its own, on the history files on disk (the thread
 *   reads them itself: the main thread sends a path, not the data) or, as a fallback, a history in memory.
 *
 * The worker entry is the .ts source next to this file when it runs from source (Node strips the types),
 * and the compiled .js next to it in dist/.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { CheckOptions, CheckReport, LiveCheckerOptions, LiveStats, Verdict, ViolationEvidence } from '../checker/index.ts';
import type { History, Operation, WatchRequest, WatchResponse } from '../domain/index.ts';

/** What each call of a batch was: push, advance or pushWatchResponse. */
export const liveCallKind = { op: 'o', advance: 'a', watch: 'w' } as const;

/**
 * The calls on the LiveChecker since the last batch, in the order the engine made them. kinds holds one
 * liveCallKind letter per call; numbers one number per call: for an operation when it was pushed
 * (epochMs), for an advance its watermark (Infinity included), 0 for a watch response; payloads is the
 * JSON array of the operations and watch responses, in call order. A watch response is either a
 * WatchPayload or its history line (WatchLine), which names the stream by id alone.
 */
export interface LiveBatch {
  kinds: string;
  numbers: Float64Array<ArrayBuffer>;
  payloads: string;
}

/** What the worker knows, as it last reported it. */
export interface LiveState {
  verdict: Verdict;
  violation: ViolationEvidence | undefined;
  inconclusiveReason: string | undefined;
  stats: LiveStats;
}

export type CheckSource = { dir: string } | { history: History };

/** workerData: which job the thread does. */
export type CheckerThreadData = { job: 'live'; options: LiveCheckerOptions } | { job: 'check'; source: CheckSource; options: CheckOptions };

export type ToLiveThread = ({ type: 'batch' } & LiveBatch) | { type: 'finish' };

export type FromCheckerThread =
  | { type: 'state'; state: LiveState; final: boolean }
  /** The live checker threw (a bug): the thread stops checking; the run goes on with an inconclusive live verdict. */
  | { type: 'failed'; message: string }
  | { type: 'report'; report: CheckReport }
  /** phase read: the history could not be read back (the caller may check the one it holds instead). */
  | { type: 'checkFailed'; phase: 'read' | 'check'; name: string; message: string };

/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads (unlike performance.now()). */
export const epochMs = (): number => performance.timeOrigin + performance.now();

const entry = new URL(import.meta.url.endsWith('.ts') ? './checker-thread.ts' : './checker-thread.js', import.meta.url);

/** Which watch stream a response came from: the live checker counts the progress of streams over the run's keys. */
export interface WatchStreamId {
  id: number;
  /** Sent with the stream's first response only (the checker remembers it). */
  request?: WatchRequest;
}

/** A watch response as a batch carries it. */
export interface WatchPayload {
  response: WatchResponse;
  stream?: WatchStreamId;
}

/** A watch response's line in the history file (serializeWatchResponseLine): the batch carries the same text. */
export interface WatchLine {
  kind: 'watch';
  id: number;
  response: WatchResponse;
}

/** A batch as the worker receives it (see LiveBatch). JSON.stringify throws on what JSON cannot hold (a BigInt, a cycle). */
export function encodeLiveBatch(kinds: string, numbers: readonly number[], payloads: readonly (Operation | WatchPayload)[]): LiveBatch {
  return liveBatchFromTexts(kinds, numbers, payloads.map((p) => JSON.stringify(p)));
}

/**
 * The same from each payload's JSON text: the operation and watch lines the history writer already made
 * (the engine encodes each once, for the file and the batch alike).
 */
export function liveBatchFromTexts(kinds: string, numbers: readonly number[], texts: readonly string[]): LiveBatch {
  return { kinds, numbers: Float64Array.from(numbers), payloads: `[${texts.join(',')}]` };
}

/** One call of a decoded batch, in the engine's order. */
export type LiveCall = { kind: 'op'; op: Operation; at: number } | { kind: 'advance'; watermark: number } | ({ kind: 'watch' } & WatchPayload);

/** The calls of a batch, in order (the inverse of encodeLiveBatch; the payloads are parsed once, here). */
export function* decodeLiveBatch(batch: LiveBatch): Generator<LiveCall> {
  // The boundary: the text is what encodeLiveBatch made of Operations and WatchResponses, in call order.
  const payloads = JSON.parse(batch.payloads) as (Operation | WatchPayload | WatchLine)[];
  let next = 0;
  for (let i = 0; i < batch.kinds.length; i++) {
    const kind = batch.kinds[i];
    const value = batch.numbers[i]!;
    if (kind === liveCallKind.op) yield { kind: 'op', op: payloads[next++] as Operation, at: value };
    else if (kind === liveCallKind.advance) yield { kind: 'advance', watermark: value };
    else {
      const payload = payloads[next++] as WatchPayload | WatchLine;
      yield 'kind' in payload ? { kind: 'watch', response: payload.response, stream: { id: payload.id } } : { kind: 'watch', ...payload };
    }
  }
}

export const emptyLiveStats: LiveStats = { received: 0, processed: 0, pendingOperations: 0, resolved: 0, frontier: 1, lagP50Ms: 0, lagP99Ms: 0, lagMaxMs: 0, waitingForWatch: 0, method: 'revision' };

export interface LiveCheckerWorkerOptions extends LiveCheckerOptions {
  /** After each state the worker reports (a new verdict first of all), on the main thread. */
  onUpdate?: () => void;
  /** Send queued calls at least this often (default 20 ms: each message costs the recording thread a wake-up of the worker). */
  flushIntervalMs?: number;
  /** ... and whenever this many are queued (default 512). */
  maxBatch?: number;
}

/** The live linearizability checker (src/checker/live.ts) in a worker thread; see the header. */
export class LiveCheckerWorker {
  private readonly worker: Worker;
  private readonly onUpdate: (() => void) | undefined;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  /** The batch being gathered (LiveBatch, each payload already a JSON text). */
  private kinds = '';
  private numbers: number[] = [];
  private payloads: string[] = [];
  /** Watch streams whose request the worker has been sent. */
  private readonly streamsSent = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private state: LiveState = { verdict: 'linearizable', violation: undefined, inconclusiveReason: undefined, stats: emptyLiveStats };
  private pushed = 0;
  /** Why the worker stopped checking (it threw, or the thread died). */
  private failure: string | undefined;
  private finished = false;
  private closed = false;
  private finishing: { promise: Promise<Verdict>; resolve: (verdict: Verdict) => void } | undefined;

  constructor(options: LiveCheckerWorkerOptions = {}) {
    const { onUpdate, flushIntervalMs, maxBatch, ...live } = options;
    this.onUpdate = onUpdate;
    this.flushIntervalMs = flushIntervalMs ?? 20;
    this.maxBatch = maxBatch ?? 512;
    const data: CheckerThreadData = { job: 'live', options: live };
    this.worker = new Worker(entry, { workerData: data, name: 'live-checker' });
    // The thread alone must not keep the process alive; finish() holds it while it waits for the verdict.
    this.worker.unref();
    this.worker.on('message', (message: FromCheckerThread) => {
      this.receive(message);
    });
    this.worker.on('error', (error: Error) => {
      this.fail(`the live checker's thread failed: ${error.message}`);
    });
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(`the live checker's thread exited (code ${code})`);
    });
  }

  /**
   * Adds a completed (or abandoned) operation (LiveChecker.push). `line`: its history line
   * (serializeOperationLine, as HistoryFileWriter.writeOperation returns it), when the caller has it.
   */
  push(op: Operation, line?: string): void {
    if (this.finished || this.closed) return;
    this.pushed++;
    this.enqueue(liveCallKind.op, epochMs(), op, line);
  }

  /** LiveChecker.advance: settles everything before the watermark. */
  advance(watermark: number): void {
    this.enqueue(liveCallKind.advance, watermark, undefined);
  }

  /**
   * LiveChecker.pushWatchResponse. `line`: the response's history line for this stream
   * (serializeWatchResponseLine(stream.id, response), as HistoryFileWriter.writeWatchResponse returns it).
   */
  pushWatchResponse(response: WatchResponse, stream?: { id: number; request: WatchRequest }, line?: string): void {
    if (stream === undefined) return this.enqueue(liveCallKind.watch, 0, { response });
    // The stream's first response carries its request; the line names the stream by id alone.
    if (!this.streamsSent.has(stream.id)) {
      this.streamsSent.add(stream.id);
      return this.enqueue(liveCallKind.watch, 0, { response, stream });
    }
    this.enqueue(liveCallKind.watch, 0, line === undefined ? { response, stream: { id: stream.id } } : undefined, line);
  }

  get verdict(): Verdict {
    if (this.state.verdict === 'violation') return 'violation';
    return this.failure !== undefined ? 'inconclusive' : this.state.verdict;
  }

  get violation(): ViolationEvidence | undefined {
    return this.state.violation;
  }

  get inconclusiveReason(): string | undefined {
    if (this.state.verdict === 'violation') return this.state.inconclusiveReason;
    return this.failure ?? this.state.inconclusiveReason;
  }

  /** Why the worker stopped checking (it threw, or its thread died), if it did: the live verdict is then inconclusive. */
  get failed(): string | undefined {
    return this.failure;
  }

  /** The worker's last stats; operations not yet checked by it (queued here or there) count as pending. */
  stats(): LiveStats {
    const { stats } = this.state;
    return { ...stats, received: this.pushed, pendingOperations: stats.pendingOperations + (this.pushed - stats.received) };
  }

  /** Sends what is queued and settles everything (LiveChecker.finish); resolves with the final verdict. */
  finish(): Promise<Verdict> {
    if (this.finishing) return this.finishing.promise;
    this.flush();
    this.finished = true;
    let resolve!: (verdict: Verdict) => void;
    const promise = new Promise<Verdict>((r) => (resolve = r));
    this.finishing = { promise, resolve };
    if (this.failure !== undefined) resolve(this.verdict);
    else {
      this.worker.ref();
      this.worker.postMessage({ type: 'finish' } satisfies ToLiveThread);
    }
    return promise;
  }

  /** Stops the thread (idempotent). A finish() still waiting resolves with the verdict so far. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.clearBatch();
    await this.worker.terminate();
    if (this.finishing) this.finishing.resolve(this.verdict);
  }

  /** `text`: the payload's JSON when the caller already has it (a history line), else `payload` is encoded here. */
  private enqueue(kind: string, value: number, payload: Operation | WatchPayload | undefined, text?: string): void {
    // After finish() the verdict is final (LiveChecker.finish settles at watermark Infinity): later calls are dropped.
    if (this.finished || this.closed || this.failure !== undefined) return;
    if (text !== undefined) this.payloads.push(text);
    else if (payload !== undefined) {
      try {
        this.payloads.push(JSON.stringify(payload));
      } catch (error) {
        // Operations are plain JSON-able data (src/domain/history.ts); anything else is a bug to report, not to throw to the recorder.
        return this.fail(`could not send operations to the live checker: ${(error as Error).message}`);
      }
    }
    this.kinds += kind;
    this.numbers.push(value);
    if (this.numbers.length >= this.maxBatch) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushIntervalMs).unref();
  }

  private clearBatch(): void {
    this.kinds = '';
    this.numbers = [];
    this.payloads = [];
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.numbers.length === 0 || this.closed || this.failure !== undefined) return;
    const { kinds, numbers, payloads } = this;
    this.clearBatch();
    const batch = liveBatchFromTexts(kinds, numbers, payloads);
    // The numbers' buffer moves to the worker rather than being copied.
    this.worker.postMessage({ type: 'batch', ...batch } satisfies ToLiveThread, [batch.numbers.buffer]);
  }

  private receive(message: FromCheckerThread): void {
    switch (message.type) {
      case 'state':
        this.state = message.state;
        if (message.final) this.settle();
        break;
      case 'failed':
        this.fail(`the live checker failed: ${message.message}`);
        return;
      case 'report':
      case 'checkFailed':
        return;
    }
    this.onUpdate?.();
  }

  private fail(reason: string): void {
    if (this.failure !== undefined || this.closed) return;
    this.failure = reason;
    this.clearBatch();
    this.settle();
    this.onUpdate?.();
  }

  private settle(): void {
    if (!this.finishing) return;
    this.worker.unref();
    this.finishing.resolve(this.verdict);
  }
}

/** The history could not be read back from disk (the worker's message, under the error's name). */
export class HistoryReadBackError extends Error {
  override name = 'HistoryReadBackError';
}

/**
 * checkHistory (src/checker/check.ts) in a worker thread of its own: on a history directory (the worker
 * reads the segments; HistoryReadBackError when it cannot) or on a history in memory (copied to the thread).
 */
export async function checkHistoryInWorker(source: CheckSource, options: CheckOptions = {}): Promise<CheckReport> {
  const data: CheckerThreadData = { job: 'check', source, options };
  const worker = new Worker(entry, { workerData: data, name: 'history-check' });
  try {
    return await new Promise<CheckReport>((resolve, reject) => {
      worker.on('message', (message: FromCheckerThread) => {
        if (message.type === 'report') resolve(message.report);
        else if (message.type === 'checkFailed') {
          const error = message.phase === 'read' ? new HistoryReadBackError(message.message) : new Error(`the offline check failed: ${message.name}: ${message.message}`);
          reject(error);
        }
      });
      worker.on('error', (error: Error) => {
        reject(new Error(`the offline check's thread failed: ${error.message}`, { cause: error }));
      });
      worker.on('exit', (code) => {
        reject(new Error(`the offline check's thread exited (code ${code}) without a report`));
      });
    });
  } finally {
    await worker.terminate();
  }
}
