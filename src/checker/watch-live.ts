/**
 * The watch checks that need nothing but the stream itself, done as responses arrive so a run can
 * report (and alert on) a broken watch guarantee while it runs: filtered, ordered, unique, atomic,
 * bookmarkable and the history-free part of resumable. The offline check (watch.ts) repeats them with the committed
 * history and adds reliable, isCreate and prevKV; it stays the authority for the final verdict.
 */
import type { WatchEvent, WatchRequest, WatchResponse } from '../domain/index.ts';
import type { WatchProperty } from './result.ts';

export interface LiveWatchViolation {
  property: WatchProperty;
  watch: number;
  message: string;
}

interface StreamState {
  request: WatchRequest;
  lastEventRevision: number;
  lastProgress: number;
  /** Keys seen at the last event revision (events of one revision arrive in one response). */
  keysAtLast: Set<string>;
  closed: boolean;
}

const noViolations: readonly LiveWatchViolation[] = Object.freeze([]);

/** `found` with one more violation (the list is created with the first). */
function withViolation(found: LiveWatchViolation[] | undefined, watch: number, property: WatchProperty, message: string): LiveWatchViolation[] {
  const list = found ?? [];
  list.push({ property, watch, message });
  return list;
}

const describe = (e: WatchEvent): string => `${e.type} of ${JSON.stringify(e.key)} at revision ${e.modRevision}`;

export class LiveWatchChecker {
  private readonly streams = new Map<number, StreamState>();

  open(id: number, request: WatchRequest): void {
    this.streams.set(id, { request, lastEventRevision: 0, lastProgress: 0, keysAtLast: new Set(), closed: false });
  }

  /** Checks one response of an opened stream; returns the violations it shows (empty when none). */
  push(id: number, response: WatchResponse): readonly LiveWatchViolation[] {
    const stream = this.streams.get(id);
    if (!stream || stream.closed) return noViolations;
    // Called for every response of every stream: nothing is allocated unless a guarantee is broken.
    let found: LiveWatchViolation[] | undefined;
    const start = stream.request.startRevision ?? 0;
    let previousInResponse = 0;
    const { key, end } = stream.request;
    for (const event of response.events) {
      const revision = event.modRevision;
      const inside = end === undefined ? event.key === key : end === '\u0000' ? event.key >= key : event.key >= key && event.key < end;
      if (!inside) found = withViolation(found, id, 'filtered', `${describe(event)} is outside the watched range`);
      if (start > 0 && revision < start) found = withViolation(found, id, 'resumable', `${describe(event)} is below the watch's start revision ${start}`);
      if (revision <= stream.lastProgress) {
        found = withViolation(found, id, 'bookmarkable', `${describe(event)} arrived after a progress notification at revision ${stream.lastProgress}`);
      }
      if (revision < stream.lastEventRevision) found = withViolation(found, id, 'ordered', `${describe(event)} arrived after an event at revision ${stream.lastEventRevision}`);
      else if (revision === stream.lastEventRevision) {
        if (stream.keysAtLast.has(event.key)) found = withViolation(found, id, 'unique', `${describe(event)} arrived twice`);
        else if (previousInResponse !== revision) found = withViolation(found, id, 'atomic', `events of revision ${revision} were split across responses`);
        stream.keysAtLast.add(event.key);
      } else {
        stream.lastEventRevision = revision;
        stream.keysAtLast.clear();
        stream.keysAtLast.add(event.key);
      }
      previousInResponse = revision;
    }
    if (response.progress && response.revision !== undefined) {
      if (response.revision < stream.lastProgress) {
        found = withViolation(found, id, 'bookmarkable', `a progress notification at revision ${response.revision} went back from ${stream.lastProgress}`);
      } else if (response.revision < stream.lastEventRevision) {
        found = withViolation(found, id, 'bookmarkable', `a progress notification at revision ${response.revision} is below an event already delivered at ${stream.lastEventRevision}`);
      }
      stream.lastProgress = Math.max(stream.lastProgress, response.revision);
    }
    // A cancel or error ends the stream (the probe resumes on a new one).
    if (response.canceled === true || response.error !== undefined) stream.closed = true;
    return found ?? noViolations;
  }
}
