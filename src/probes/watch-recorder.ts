/**
 * Records one watch stream (a key prefix, from a start revision, with previous values) as the history
 * format's watch lines, so its guarantees can be checked and its events can resolve unknown writes.
 */
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { prefixEnd, type WatchEvent, type WatchResponse, type WatchStream } from '../domain/index.ts';
import { kvFromWire } from './etcd-wire.ts';
import type { Clock } from './recorder.ts';
import { monotonicNs } from './recorder.ts';

export function watchEventsFromWire(response: IWatchResponse): WatchEvent[] {
  return response.events.map((e) => {
    // Built straight from the wire (three events a put on a run with a watch per member): the fields in
    // the order the history lines have always had them (type, key, value, revisions, version, isCreate, lease).
    const { kv } = e;
    const key = kv.key.toString('utf8');
    const modRevision = Number(kv.mod_revision);
    let event: WatchEvent;
    if (e.type === 'Put') {
      const createRevision = Number(kv.create_revision);
      event = { type: 'put', key, value: kv.value.toString('utf8'), modRevision, createRevision, version: Number(kv.version), isCreate: createRevision === modRevision };
      if (kv.lease && kv.lease !== '0') event.lease = kv.lease;
    } else event = { type: 'delete', key, modRevision };
    // Typed as always present, but absent at run time when the key did not exist before.
    const previous = e.prev_kv as IKeyValue | null | undefined;
    if (previous) event.prevKV = kvFromWire(previous, false);
    return event;
  });
}

export class WatchRecorder {
  readonly stream: WatchStream;
  private readonly watcher: Watcher;

  private constructor(stream: WatchStream, watcher: Watcher, clock: Clock, onResponse: ((response: WatchResponse) => void) | undefined) {
    this.stream = stream;
    this.watcher = watcher;
    watcher.on('data', (response: IWatchResponse) => {
      const events = watchEventsFromWire(response);
      if (events.length === 0) return; // creation acknowledgements carry nothing to check
      const recorded: WatchResponse = { time: clock(), revision: Number(response.header.revision), events };
      this.stream.responses.push(recorded);
      onResponse?.(recorded);
    });
    watcher.on('error', (error: Error) => {
      this.stream.responses.push({ time: clock(), events: [], canceled: true, error: error.message });
    });
  }

  static async start(
    etcd: Etcd3,
    options: { id: number; prefix: string; startRevision: number; member?: string; clock?: Clock; onResponse?: (response: WatchResponse) => void },
  ): Promise<WatchRecorder> {
    const watcher = await etcd.watch().prefix(options.prefix).startRevision(String(options.startRevision)).withPreviousKV().create();
    const stream: WatchStream = {
      id: options.id,
      request: { key: options.prefix, end: prefixEnd(options.prefix), startRevision: options.startRevision, prevKV: true },
      responses: [],
    };
    if (options.member !== undefined) stream.member = options.member;
    return new WatchRecorder(stream, watcher, options.clock ?? monotonicNs, options.onResponse);
  }

  async close(): Promise<void> {
    await this.watcher.cancel();
  }
}
