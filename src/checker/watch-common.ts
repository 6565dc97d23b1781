/**
 * The watch check's shared vocabulary (watch.ts): what a stream delivered, the committed history it is
 * checked against and the lookups in it, key ranges, and how events are described in violations.
 * Separate from the checks themselves, which are all written in these terms.
 */
import type { KeyValue, WatchEvent, WatchRequest } from '../domain/index.ts';
import type { WatchProperty } from './result.ts';
import type { CommittedRevision } from './watch.ts';

/** Revisions with at most this many keys are searched linearly (most hold one); larger ones (a big txn) get a Set or Map. */
export const SMALL_REVISION = 16;

export type Report = (property: WatchProperty, message: string, events: WatchEvent[]) => void;

/** An event as delivered: which response (index into the stream's live responses) carried it. */
export interface Delivered {
  event: WatchEvent;
  response: number;
  /** The same (revision, key) was delivered earlier in the stream. */
  duplicate: boolean;
}

/** The keys a stream delivered at one revision, and the first response that carried the revision. */
export interface RevisionDelivery {
  keys: string[];
  /** A set of the keys once there are more than SMALL_REVISION. */
  keySet: Set<string> | undefined;
  response: number;
}

export function hasKey(revision: RevisionDelivery, key: string): boolean {
  return revision.keySet === undefined ? revision.keys.includes(key) : revision.keySet.has(key);
}

export function addKey(revision: RevisionDelivery, key: string): void {
  revision.keys.push(key);
  if (revision.keySet !== undefined) revision.keySet.add(key);
  else if (revision.keys.length > SMALL_REVISION) revision.keySet = new Set(revision.keys);
}

/** What a stream delivered: its events in order, and per revision. */
export interface Deliveries {
  events: Delivered[];
  revisions: Map<number, RevisionDelivery>;
}

/** The committed history, sorted by revision, with what is known about it. */
export interface KnownHistory {
  revisions: CommittedRevision[];
  start: number;
  prefix: string | undefined;
  compactRevision: number | undefined;
  unknownDeleter: ((key: string, time: number) => boolean) | undefined;
  /** Events by key of the large revisions looked up so far (a big txn), built on first use. */
  largeRevisions: Map<number, Map<string, WatchEvent>>;
}

/** Whether a watch on `request` matches `key`: end absent (or empty) = the key alone, "\0" = every key >= key. */
export function inWatchRange(request: WatchRequest, key: string): boolean {
  const end = request.end;
  if (end === undefined || end === '') return key === request.key;
  if (end === '\u0000') return key >= request.key;
  return key >= request.key && key < end;
}

export function describeRange(request: WatchRequest): string {
  const end = request.end;
  if (end === undefined || end === '') return `key ${JSON.stringify(request.key)}`;
  if (end === '\u0000') return `keys >= ${JSON.stringify(request.key)}`;
  return `range [${JSON.stringify(request.key)}, ${JSON.stringify(end)})`;
}

export function describe(event: WatchEvent): string {
  return `${event.type} of ${JSON.stringify(event.key)} at revision ${event.modRevision}`;
}

export function describeKeyValue(kv: KeyValue): string {
  return JSON.stringify(kv);
}

export function sortedByRevision(committed: CommittedRevision[]): CommittedRevision[] {
  const sorted = committed.every((entry, i) => i === 0 || committed[i - 1]!.revision < entry.revision);
  return sorted ? committed : [...committed].sort((a, b) => a.revision - b.revision);
}

/** Index of the first committed revision >= revision (binary search). */
export function lowerBound(revisions: CommittedRevision[], revision: number): number {
  let low = 0;
  let high = revisions.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (revisions[mid]!.revision < revision) low = mid + 1;
    else high = mid;
  }
  return low;
}

export function committedEvent(history: KnownHistory, revision: number, key: string): WatchEvent | undefined {
  const entry = history.revisions[lowerBound(history.revisions, revision)];
  if (entry?.revision !== revision) return undefined;
  if (entry.events.length <= SMALL_REVISION) return entry.events.find((event) => event.key === key);
  let byKey = history.largeRevisions.get(revision);
  if (byKey === undefined) {
    byKey = new Map(entry.events.map((event) => [event.key, event]));
    history.largeRevisions.set(revision, byKey);
  }
  return byKey.get(key);
}

/** The linearization put an unknown-outcome write at this revision (see CommittedRevision.uncertain). */
export function uncertainAt(history: KnownHistory, revision: number): boolean {
  const entry = history.revisions[lowerBound(history.revisions, revision)];
  return entry?.revision === revision && entry.uncertain === true;
}

export function underPrefix(history: KnownHistory, key: string): boolean {
  return history.prefix === undefined || key.startsWith(history.prefix);
}

/** Whether the history accounts for this (revision, key): an event there must be the committed one. */
export function isKnown(history: KnownHistory, revision: number, key: string): boolean {
  return revision >= history.start && underPrefix(history, key);
}
