import type { EtcdRequest, EtcdResponse, KeyValue } from './etcd.ts';
import type { FaultEvent } from './faults.ts';

/**
 * A recorded history (docs/history-format.md): operations, watch streams and an optional header.
 * Times are integers in nanoseconds of one monotonic clock (any common origin).
 */

export type ClusterMode = 'exclusive' | 'shared';

/** What a check concludes about a history. */
export type Verdict = 'linearizable' | 'violation' | 'inconclusive';

export interface HistoryMeta {
  kind: 'meta';
  seed?: number | string;
  cluster?: string;
  profile?: string;
  startTime?: string;
  /** The run's own key prefix; in shared mode only keys under it are checked. */
  prefix?: string;
  /** exclusive: the run owns the cluster; shared: other clients write too (see the format doc). */
  mode?: ClusterMode;
  /** Exclusive mode: the store's revision when the history starts (1 for a new cluster). */
  initialRevision?: number;
}

export interface Operation {
  /** Stream id: one client's operations never overlap in time. */
  client: number;
  call: number;
  /** null when the client never learned the outcome: it may have taken effect after `call`, or never. */
  return: number | null;
  request: EtcdRequest;
  /** Absent when the outcome is unknown. */
  response?: EtcdResponse;
  member?: string;
  error?: string;
}

/**
 * An operation as it is sent (a `kind: "invoke"` line, as Jepsen records :invoke): the operation line with
 * the same client and call completes it. One still open when the history ends (a crash) becomes an
 * operation with an unknown outcome.
 */
export interface Invocation {
  kind: 'invoke';
  client: number;
  call: number;
  request: EtcdRequest;
  /** The member the client is pinned to, if it is. */
  member?: string;
}

/** The history's last line was cut mid-write (no newline, not valid JSON) and was ignored. */
export interface TornTail {
  file: string;
  line: number;
}

export interface WatchRequest {
  key: string;
  end?: string;
  startRevision?: number;
  progressNotify?: boolean;
  prevKV?: boolean;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  modRevision: number;
  createRevision?: number;
  version?: number;
  isCreate?: boolean;
  /** A put's lease (absent: none). Recorded since the live checker builds states from watch events. */
  lease?: string;
  prevKV?: KeyValue;
}

export interface WatchResponse {
  time: number;
  /** The header revision. */
  revision?: number;
  events: WatchEvent[];
  /** A progress notification: every event up to `revision` has been sent. */
  progress?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  error?: string;
}

/** One watch stream: the request that opened it and the responses it received, in order. */
export interface WatchStream {
  id: number;
  client?: number;
  member?: string;
  request: WatchRequest;
  responses: WatchResponse[];
}

export interface History {
  meta: HistoryMeta | undefined;
  operations: Operation[];
  watches: WatchStream[];
  /** The `kind: "fault"` lines: injections and heals, for the reports (no weight in the checks). Absent when there are none. */
  faults?: FaultEvent[];
  /** Set when the last line was torn by a crash and ignored (docs/history-format.md, "Invocations and crashes"). */
  tornTail?: TornTail;
}
