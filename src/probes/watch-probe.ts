/**
 * A resumable watch over a key prefix on etcd's raw gRPC Watch stream, recorded as the history format's watch
 * streams. Unlike WatchRecorder (etcd3's high-level Watcher) it records progress notifications, can ask for them
 * (progress_request), and when a stream breaks (member killed, network) or etcd cancels the watch, it records how
 * the stream ended and opens a new one exactly after the last revision it knows was delivered, so the union of
 * its streams covers every revision from the start: a resume never skips. After a compaction cancel it resumes
 * from the compact revision, the earliest one etcd still has.
 *
 * One gRPC stream carries one watcher. A stream enters the history (onStreamOpened, a new id) only once etcd
 * confirms the watch (the `created` response, itself not recorded): attempts that fail before that, while the
 * member is down, leave nothing to check. Every later response with events, every progress notification, and
 * the end of the stream (cancel or error) is recorded in order.
 *
 * etcd marks a progress notification only by what it lacks: a response that is not `created`, not `canceled`
 * and has no events; its watch_id is -1 when it answers a progress_request, the watcher's id when it is the
 * periodic progress_notify (etcd's --experimental-watch-progress-notify-interval, 10 minutes by default).
 */
import type { Etcd3, IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import { prefixEnd, type WatchRequest, type WatchResponse, type WatchStream } from '../domain/index.ts';
import { watchEventsFromWire } from './watch-recorder.ts';

export interface WatchProbeOptions {
  prefix: string;
  /** The first revision to watch (inclusive); 0 means "from now". */
  startRevision: number;
  /** The member this probe's client talks to, recorded on every stream. */
  member?: string;
  /** Nanoseconds of a monotonic clock. */
  clock: () => number;
  /** Ask etcd for periodic progress notifications on each watcher. */
  progressNotify: boolean;
  /** When > 0, send a progress_request this often (etcd answers once the watcher is synced). */
  progressIntervalMs: number;
  nextStreamId: () => number;
  /** A stream etcd confirmed, with no responses yet; the probe pushes its responses into it. */
  onStreamOpened: (stream: WatchStream) => void;
  onResponse: (streamId: number, response: WatchResponse) => void;
  /** Delay before reopening a broken stream: doubles per failed attempt up to max, back to initial after a success. */
  resumeBackoffMs?: { initial: number; max: number };
}

type WatchCall = IDuplexStream<IWatchRequest, IWatchResponse>;

/** One gRPC Watch call and the watcher it carries. */
interface Attempt {
  call: WatchCall;
  request: WatchRequest;
  /** Set once etcd confirms the watcher. */
  stream: WatchStream | undefined;
  done: boolean;
}

const defaultBackoff = { initial: 100, max: 2000 };

export class WatchProbe {
  private readonly etcd: Etcd3;
  private readonly options: WatchProbeOptions;
  private readonly backoff: { initial: number; max: number };
  private delay: number;
  /** The revision the next stream starts from: never beyond lastRevision + 1 unless etcd compacted past it. */
  private nextStart: number;
  private last: number;
  private current: Attempt | undefined;
  private opening: Promise<void> | undefined;
  private reconnect: ReturnType<typeof setTimeout> | undefined;
  private readonly ticker: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private streamCount = 0;
  private progressCount = 0;

  private constructor(etcd: Etcd3, options: WatchProbeOptions) {
    this.etcd = etcd;
    this.options = options;
    this.backoff = options.resumeBackoffMs ?? defaultBackoff;
    this.delay = this.backoff.initial;
    this.nextStart = options.startRevision;
    this.last = options.startRevision - 1;
    if (options.progressIntervalMs > 0) this.ticker = setInterval(() => this.requestProgress(), options.progressIntervalMs);
    this.opening = this.open();
  }

  /** Starts watching at once; streams are reported through onStreamOpened as etcd confirms them. */
  static start(etcd: Etcd3, options: WatchProbeOptions): WatchProbe {
    return new WatchProbe(etcd, options);
  }

  /** The highest revision known delivered: the last event's, or a later progress notification's. */
  get lastRevision(): number {
    return this.last;
  }

  /** Streams etcd confirmed. */
  get streams(): number {
    return this.streamCount;
  }

  /** Streams opened to continue an earlier one. */
  get resumes(): number {
    return Math.max(0, this.streamCount - 1);
  }

  get progressNotifications(): number {
    return this.progressCount;
  }

  /** Cancels the watch and stops reconnecting; once it resolves, no callback is called again. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ticker);
    clearTimeout(this.reconnect);
    await this.opening;
    const attempt = this.current;
    if (attempt !== undefined && !attempt.done) this.finish(attempt);
  }

  private async open(): Promise<void> {
    const request: WatchRequest = {
      key: this.options.prefix,
      end: prefixEnd(this.options.prefix),
      startRevision: this.nextStart,
      progressNotify: this.options.progressNotify,
      prevKV: true,
    };
    let call: WatchCall;
    try {
      call = await this.etcd.watchClient.watch();
    } catch {
      if (!this.closed) this.retry();
      return;
    }
    const attempt: Attempt = { call, request, stream: undefined, done: false };
    this.current = attempt;
    if (this.closed) return this.finish(attempt);
    call.on('data', (response) => this.receive(attempt, response));
    call.on('error', (error) => this.broken(attempt, error.message));
    call.on('end', () => this.broken(attempt, 'the watch stream ended'));
    call.write({
      create_request: {
        key: Buffer.from(request.key),
        range_end: Buffer.from(request.end!),
        start_revision: request.startRevision!,
        progress_notify: this.options.progressNotify,
        prev_kv: true,
      },
    });
  }

  private receive(attempt: Attempt, response: IWatchResponse): void {
    if (this.closed || attempt.done) return;
    // etcd leaves the header revision 0 on a compaction cancel: record a revision only when there is one.
    const revision = Number(response.header.revision);
    if (response.created) {
      this.confirm(attempt, revision);
      if (!response.canceled) return;
    }
    const stream = attempt.stream;
    if (stream === undefined) return; // nothing comes before `created`; ignore a stray response
    if (response.canceled) {
      const compactRevision = Number(response.compact_revision);
      const ended: WatchResponse = { time: this.options.clock(), events: [], canceled: true };
      if (revision > 0) ended.revision = revision;
      if (compactRevision > 0) {
        ended.compactRevision = compactRevision;
        this.nextStart = Math.max(this.nextStart, compactRevision);
      }
      if (response.cancel_reason) ended.error = response.cancel_reason;
      this.record(stream, ended);
      this.finish(attempt);
      this.retry();
      return;
    }
    const events = watchEventsFromWire(response);
    if (events.length > 0) {
      this.record(stream, { time: this.options.clock(), revision, events });
      this.delivered(events[events.length - 1]!.modRevision);
    } else {
      this.progressCount++;
      this.record(stream, { time: this.options.clock(), revision, events: [], progress: true });
      this.delivered(revision);
    }
  }

  private confirm(attempt: Attempt, revision: number): void {
    const stream: WatchStream = { id: this.options.nextStreamId(), request: attempt.request, responses: [] };
    if (this.options.member !== undefined) stream.member = this.options.member;
    attempt.stream = stream;
    this.streamCount++;
    this.delay = this.backoff.initial;
    // A watch "from now" covers the revisions after the one etcd was at when it created the watcher.
    if (attempt.request.startRevision! <= 0 && this.last < revision) {
      this.last = revision;
      this.nextStart = revision + 1;
    }
    this.options.onStreamOpened(stream);
  }

  private delivered(revision: number): void {
    this.last = Math.max(this.last, revision);
    this.nextStart = Math.max(this.nextStart, revision + 1);
  }

  private record(stream: WatchStream, response: WatchResponse): void {
    stream.responses.push(response);
    this.options.onResponse(stream.id, response);
  }

  private broken(attempt: Attempt, message: string): void {
    if (this.closed || attempt.done) return;
    if (attempt.stream !== undefined) this.record(attempt.stream, { time: this.options.clock(), events: [], canceled: true, error: message });
    this.finish(attempt);
    this.retry();
  }

  /** Ends the gRPC call; its later events are ignored. */
  private finish(attempt: Attempt): void {
    attempt.done = true;
    // end() first: etcd3 marks the host failed on an error only while the call is still writable.
    attempt.call.end();
    attempt.call.cancel();
  }

  private retry(): void {
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, this.backoff.max);
    this.reconnect = setTimeout(() => {
      this.reconnect = undefined;
      this.opening = this.open();
    }, delay);
  }

  private requestProgress(): void {
    const attempt = this.current;
    if (attempt?.stream !== undefined && !attempt.done) attempt.call.write({ progress_request: {} });
  }
}
