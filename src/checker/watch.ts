/**
 * The watch-guarantee checker: etcd's watch API guarantees
 * (https://etcd.io/docs/v3.6/learning/api_guarantees/#watch-apis), checked per stream the way etcd's own
 * robustness tests do (tests/robustness/validate/watch.go).
 *
 * Checks that need nothing but the stream itself:
 * - filtered: every event's key is inside the watched key range (a range wider than the shared-mode prefix
 *   legitimately carries other clients' keys, so the prefix does not filter);
 * - ordered: event revisions never go backwards;
 * - unique: no (revision, key) event arrives twice;
 * - atomic: the events of one revision arrive in one response, never split across two;
 * - bookmarkable: no event at or below a progress notification's revision arrives after it, and progress
 *   notifications never go back (below an earlier notification or an already delivered event);
 * - resumable (the part without history): a watch from revision s never delivers an event below s;
 * - isCreate and prevKV (self-consistency): the flag agrees with the event's own createRevision/version, a
 *   prevKV names the same key at an earlier revision, creations carry none.
 *
 * Checks against the committed history (the linearization replayed as one list of events per revision):
 * - reliable: every committed event the watch matches is delivered over the revisions the stream covers
 *   (from its first event, or just after a progress notification that came first, to its last event), and every
 *   delivered event is the committed one (type, value, version, createRevision);
 * - resumable: a watch from revision s starts with the first matching committed event at or after s;
 * - bookmarkable: a progress notification at r promises every matching event up to r, so committed events
 *   after the stream's last event but at or below r must have arrived;
 * - isCreate and prevKV: against the committed event and the key's previous version.
 *
 * A cancel or error response (compaction, for one) ends a stream: whatever the recorder logged after it is
 * ignored. In shared mode only keys under the run's prefix are known, so other keys are checked only by the
 * history-free checks. Each property is listed at most MAX_VIOLATIONS_PER_PROPERTY times per stream, followed by
 * a count of the rest, so one broken stream cannot flood a report.
 */
import type { KeyValue, WatchEvent, WatchRequest, WatchResponse, WatchStream } from '../domain/index.ts';
import type { WatchProperty, WatchViolation } from './result.ts';
import {
  addKey,
  committedEvent,
  describe,
  describeKeyValue,
  describeRange,
  hasKey,
  inWatchRange,
  isKnown,
  lowerBound,
  sortedByRevision,
  uncertainAt,
  underPrefix,
  type Deliveries,
  type Delivered,
  type KnownHistory,
  type Report,
  type RevisionDelivery,
} from './watch-common.ts';

export const MAX_VIOLATIONS_PER_PROPERTY = 10;

/** One committed revision of the linearized history: the events etcd must have emitted for it. */
export interface CommittedRevision {
  revision: number;
  /** key, value, modRevision, createRevision, version, isCreate and prevKV (absent when the key did not exist). */
  events: WatchEvent[];
  /**
   * Made by an operation whose outcome stayed unknown: the linearization chose to apply it here, nothing
   * observed it. What a watch delivered at this revision may be another unknown write that really took
   * the slot, so a difference here is the search's guess, not evidence (the watch check does not report it).
   */
  uncertain?: true;
}

export interface WatchCheckInput {
  streams: WatchStream[];
  /**
   * Every committed revision of the run in increasing order, as replayed from the linearization; undefined when
   * no linearization is known (then only the checks that need no history run).
   */
  committed: CommittedRevision[] | undefined;
  /** Shared mode: other clients also write, so only keys under prefix are known (committed holds only those). */
  prefix?: string;
  /**
   * The first revision the history accounts for (exclusive mode: meta.initialRevision + 1). Events below it
   * predate the recording and are not compared with `committed`. Default 1: everything is known.
   */
  historyStart?: number;
  /**
   * The highest revision the run compacted to, if it compacted. etcd leaves prevKV out when it can no longer
   * read the previous version (events at or below the compaction), so a missing prevKV is accepted there.
   */
  compactRevision?: number;
  /**
   * Whether an operation whose outcome stayed unknown (after patching, patch.ts) could have deleted `key`,
   * having been called by `time`. Such an operation has no known revision: the linearization may leave it
   * out, or apply it at a revision it cannot name. So a delivered delete of `key` that the committed history
   * lacks is not reported as "not in the history" when this says yes (the one weakening: with two or more
   * such candidates patching cannot tell which one it was), and a committed delete of `key` at an unknown
   * revision (modRevision < 0) is not reported missing from any stream once some stream delivered such a
   * delete of `key` (the linearization's placement of it is one choice among many).
   */
  unknownDeleter?: (key: string, time: number) => boolean;
}

export function checkWatches(input: WatchCheckInput): WatchViolation[] {
  const history: KnownHistory | undefined =
    input.committed === undefined
      ? undefined
      : {
          revisions: sortedByRevision(input.committed),
          start: input.historyStart ?? 1,
          prefix: input.prefix,
          compactRevision: input.compactRevision,
          unknownDeleter: input.unknownDeleter,
          largeRevisions: new Map(),
        };
  const unplaced = history?.unknownDeleter === undefined ? new Set<string>() : unplacedDeletes(input.streams, history);
  return input.streams.flatMap((stream) => checkStream(stream, history, unplaced));
}

/**
 * Keys of delete events some stream delivered that the committed history lacks but an unknown-outcome
 * operation may have made (see unknownDeleter). The linearization may have applied that operation at a
 * revision it cannot name, and anywhere in its window: no stream is held to that placement.
 */
function unplacedDeletes(streams: WatchStream[], history: KnownHistory): Set<string> {
  const keys = new Set<string>();
  for (const stream of streams) {
    for (const response of liveResponses(stream.responses)) {
      for (const event of response.events) {
        if (event.type !== 'delete' || keys.has(event.key) || !isKnown(history, event.modRevision, event.key)) continue;
        if (committedEvent(history, event.modRevision, event.key) === undefined && history.unknownDeleter?.(event.key, response.time) === true) keys.add(event.key);
      }
    }
  }
  return keys;
}

function checkStream(stream: WatchStream, history: KnownHistory | undefined, unplaced: Set<string>): WatchViolation[] {
  const { report, violations } = boundedReporter(stream.id);
  const responses = liveResponses(stream.responses);
  const deliveries = deliver(responses);
  const delivered = deliveries.events;
  const request = stream.request;
  checkFiltered(request, delivered, report);
  checkOrdered(delivered, report);
  checkUnique(delivered, report);
  checkAtomic(deliveries, report);
  checkBookmarkable(responses, report);
  checkStartRevision(request, delivered, report);
  for (const { event, response } of delivered) checkEventContents(request, event, responses[response]!.time, history, report);
  if (history !== undefined) checkMissing(request, responses, deliveries, history, report, unplaced);
  return violations();
}

/** Lists the first MAX_VIOLATIONS_PER_PROPERTY violations of each property, then how many more there were. */
function boundedReporter(watch: number): { report: Report; violations: () => WatchViolation[] } {
  const listed: WatchViolation[] = [];
  const counts = new Map<WatchProperty, number>();
  const report: Report = (property, message, events) => {
    const count = (counts.get(property) ?? 0) + 1;
    counts.set(property, count);
    if (count <= MAX_VIOLATIONS_PER_PROPERTY) listed.push({ property, watch, message, events });
  };
  const violations = (): WatchViolation[] => {
    const more: WatchViolation[] = [];
    for (const [property, count] of counts) {
      if (count > MAX_VIOLATIONS_PER_PROPERTY) {
        const rest = count - MAX_VIOLATIONS_PER_PROPERTY;
        more.push({ property, watch, message: `${rest} more ${property} violations on this watch are not listed`, events: [] });
      }
    }
    return [...listed, ...more];
  };
  return { report, violations };
}

/** The responses up to and including the first cancel or error, which ends the stream. */
function liveResponses(responses: WatchResponse[]): WatchResponse[] {
  const end = responses.findIndex((response) => response.canceled === true || response.error !== undefined);
  return end < 0 ? responses : responses.slice(0, end + 1);
}

function deliver(responses: WatchResponse[]): Deliveries {
  const events: Delivered[] = [];
  const revisions = new Map<number, RevisionDelivery>();
  responses.forEach((response, index) => {
    for (const event of response.events) {
      const revision = revisions.get(event.modRevision);
      const duplicate = revision !== undefined && hasKey(revision, event.key);
      if (revision === undefined) revisions.set(event.modRevision, { keys: [event.key], keySet: undefined, response: index });
      else if (!duplicate) addKey(revision, event.key);
      events.push({ event, response: index, duplicate });
    }
  });
  return { events, revisions };
}

// ---- checks that need no history

function checkFiltered(request: WatchRequest, delivered: Delivered[], report: Report): void {
  for (const { event } of delivered) {
    if (!inWatchRange(request, event.key)) {
      report('filtered', `${describe(event)} is outside the watched ${describeRange(request)}`, [event]);
    }
  }
}

function checkOrdered(delivered: Delivered[], report: Report): void {
  let previous: WatchEvent | undefined;
  for (const { event } of delivered) {
    if (previous !== undefined && event.modRevision < previous.modRevision) {
      report('ordered', `${describe(event)} arrived after ${describe(previous)}: revisions went backwards`, [event]);
    }
    previous = event;
  }
}

function checkUnique(delivered: Delivered[], report: Report): void {
  for (const { event, duplicate } of delivered) {
    if (duplicate) report('unique', `${describe(event)} was delivered twice`, [event]);
  }
}

/** A revision's events that arrived in a later response than the revision's first events. */
interface SplitRevision {
  revision: number;
  firstResponse: number;
  response: number;
  events: WatchEvent[];
}

function checkAtomic(deliveries: Deliveries, report: Report): void {
  const splits = new Map<string, SplitRevision>();
  for (const { event, response, duplicate } of deliveries.events) {
    if (duplicate) continue; // unique reports it
    const first = deliveries.revisions.get(event.modRevision)!.response;
    if (first !== response) {
      const splitId = `${event.modRevision}/${response}`;
      const split = splits.get(splitId) ?? { revision: event.modRevision, firstResponse: first, response, events: [] };
      split.events.push(event);
      splits.set(splitId, split);
    }
  }
  for (const split of splits.values()) {
    report(
      'atomic',
      `the events of revision ${split.revision} were split across responses ${split.firstResponse} and ${split.response}`,
      split.events,
    );
  }
}

function checkBookmarkable(responses: WatchResponse[], report: Report): void {
  let progress: number | undefined;
  let lastEvent: WatchEvent | undefined;
  for (const response of responses) {
    for (const event of response.events) {
      if (progress !== undefined && event.modRevision <= progress) {
        report(
          'bookmarkable',
          `${describe(event)} arrived after a progress notification at revision ${progress}, which promised every event up to it had been delivered`,
          [event],
        );
      }
      lastEvent = event;
    }
    if (response.progress !== true || response.revision === undefined) continue;
    if (progress !== undefined && response.revision < progress) {
      report('bookmarkable', `a progress notification at revision ${response.revision} went back from revision ${progress}`, []);
    }
    if (lastEvent !== undefined && response.revision < lastEvent.modRevision) {
      report(
        'bookmarkable',
        `a progress notification at revision ${response.revision} came after ${describe(lastEvent)}, a later revision`,
        [lastEvent],
      );
    }
    progress = Math.max(progress ?? response.revision, response.revision);
  }
}

function startRevision(request: WatchRequest): number | undefined {
  const start = request.startRevision;
  return start !== undefined && start > 0 ? start : undefined;
}

function checkStartRevision(request: WatchRequest, delivered: Delivered[], report: Report): void {
  const start = startRevision(request);
  if (start === undefined) return;
  for (const { event } of delivered) {
    if (event.modRevision < start) {
      report('resumable', `${describe(event)} was delivered to a watch from revision ${start}`, [event]);
    }
  }
}

// ---- per-event contents: against the committed event when known, else against the event itself

function checkEventContents(
  request: WatchRequest,
  event: WatchEvent,
  time: number,
  history: KnownHistory | undefined,
  report: Report,
): void {
  const known = history !== undefined && isKnown(history, event.modRevision, event.key) && !uncertainAt(history, event.modRevision);
  const committed = known ? committedEvent(history, event.modRevision, event.key) : undefined;
  if (known && committed === undefined) {
    // Unless it is a delete an unknown-outcome operation may have made, at a revision the history cannot place.
    const unplaced = event.type === 'delete' && history.unknownDeleter?.(event.key, time) === true;
    if (!unplaced) report('reliable', `${describe(event)} is not in the history: no such change was committed`, [event]);
  }
  if (committed !== undefined) {
    const differences = eventDifferences(event, committed);
    if (differences.length > 0) {
      report('reliable', `${describe(event)} differs from the history: ${differences.join(', ')}`, [event]);
    }
  }
  checkIsCreate(event, committed, report);
  if (request.prevKV === true) {
    if (committed !== undefined) checkPrevKVAgainstHistory(event, committed, history?.compactRevision, report);
    else checkPrevKVConsistency(event, report);
  }
}

function eventDifferences(got: WatchEvent, want: WatchEvent): string[] {
  if (got.type !== want.type) return [`type ${got.type}, expected ${want.type}`];
  if (got.type === 'delete') return [];
  const differences: string[] = [];
  if (got.value !== undefined && want.value !== undefined && got.value !== want.value) {
    differences.push(`value ${JSON.stringify(got.value)}, expected ${JSON.stringify(want.value)}`);
  }
  if (got.version !== undefined && want.version !== undefined && got.version !== want.version) {
    differences.push(`version ${got.version}, expected ${want.version}`);
  }
  if (got.createRevision !== undefined && want.createRevision !== undefined && got.createRevision !== want.createRevision) {
    differences.push(`createRevision ${got.createRevision}, expected ${want.createRevision}`);
  }
  return differences;
}

/** Whether the event creates its key, from its own fields (undefined when they do not say). */
function createsKey(event: WatchEvent): boolean | undefined {
  if (event.type === 'delete') return false;
  if (event.createRevision !== undefined) return event.createRevision === event.modRevision;
  if (event.version !== undefined) return event.version === 1;
  return undefined;
}

function checkIsCreate(event: WatchEvent, committed: WatchEvent | undefined, report: Report): void {
  if (event.isCreate === undefined) return;
  const expected = committed === undefined ? createsKey(event) : (committed.isCreate ?? createsKey(committed));
  if (expected === undefined || expected === event.isCreate) return;
  const why = committed === undefined ? 'its own createRevision/version say' : 'the history says';
  report(
    'isCreate',
    `${describe(event)} has isCreate ${event.isCreate} but ${why} it ${expected ? 'creates' : 'does not create'} the key`,
    [event],
  );
}

function keyValueDifferences(got: KeyValue, want: KeyValue): string[] {
  const differences: string[] = [];
  const fields = ['key', 'value', 'modRevision', 'createRevision', 'version'] as const;
  for (const field of fields) {
    const gotValue = got[field];
    const wantValue = want[field];
    if (gotValue !== undefined && wantValue !== undefined && gotValue !== wantValue) {
      differences.push(`${field} ${JSON.stringify(gotValue)}, expected ${JSON.stringify(wantValue)}`);
    }
  }
  return differences;
}

function checkPrevKVAgainstHistory(event: WatchEvent, committed: WatchEvent, compactRevision: number | undefined, report: Report): void {
  const got = event.prevKV;
  const want = committed.prevKV;
  if (want === undefined) {
    if (got !== undefined) {
      report('prevKV', `${describe(event)} carries prevKV ${describeKeyValue(got)} but the key did not exist before`, [event]);
    }
    return;
  }
  if (got === undefined) {
    // etcd reads the previous version at modRevision - 1; once compacted away, it sends no prevKV.
    const compacted = compactRevision !== undefined && event.modRevision <= compactRevision;
    if (!compacted) report('prevKV', `${describe(event)} has no prevKV; expected ${describeKeyValue(want)}`, [event]);
    return;
  }
  const differences = keyValueDifferences(got, want);
  if (differences.length > 0) {
    report('prevKV', `${describe(event)} has a wrong prevKV: ${differences.join(', ')}`, [event]);
  }
}

/** Without history: a prevKV must be an earlier version of the same key, and a creation has none. */
function checkPrevKVConsistency(event: WatchEvent, report: Report): void {
  const prev = event.prevKV;
  if (prev === undefined) return;
  const problems: string[] = [];
  if (prev.key !== event.key) problems.push(`it names key ${JSON.stringify(prev.key)}`);
  if (prev.modRevision !== undefined && prev.modRevision >= event.modRevision) {
    problems.push(`its modRevision ${prev.modRevision} is not before the event`);
  }
  if ((createsKey(event) ?? event.isCreate) === true) problems.push('the event creates the key');
  else if (event.type === 'put' && event.version !== undefined && prev.version !== undefined && prev.version !== event.version - 1) {
    problems.push(`its version ${prev.version} does not precede the event's version ${event.version}`);
  }
  if (problems.length > 0) {
    report('prevKV', `${describe(event)} has an impossible prevKV ${describeKeyValue(prev)}: ${problems.join('; ')}`, [event]);
  }
}

// ---- missing events: the revisions a stream covers must hold every matching committed event

/** The revisions a stream promises to have delivered completely, and what bounds them. */
interface Coverage {
  from: number;
  to: number;
  firstEvent: WatchEvent | undefined;
  lastEvent: WatchEvent | undefined;
  lastProgress: number | undefined;
}

/**
 * A stream covers from its start revision (or, without one, from just after a first progress notification, or
 * from its first event) up to its last event or progress notification, whichever is later.
 */
function coverage(request: WatchRequest, responses: WatchResponse[], delivered: Delivered[]): Coverage | undefined {
  let firstEvent: WatchEvent | undefined;
  let lastEvent: WatchEvent | undefined;
  for (const { event } of delivered) {
    if (firstEvent === undefined || event.modRevision < firstEvent.modRevision) firstEvent = event;
    if (lastEvent === undefined || event.modRevision > lastEvent.modRevision) lastEvent = event;
  }
  let lastProgress: number | undefined;
  for (const response of responses) {
    if (response.progress === true && response.revision !== undefined) lastProgress = Math.max(lastProgress ?? response.revision, response.revision);
  }
  const from = startRevision(request) ?? implicitStart(responses);
  const to = Math.max(lastEvent?.modRevision ?? -Infinity, lastProgress ?? -Infinity);
  if (from === undefined || to === -Infinity) return undefined;
  return { from, to, firstEvent, lastEvent, lastProgress };
}

/** Without a start revision: the first event, or just after a progress notification that precedes all events. */
function implicitStart(responses: WatchResponse[]): number | undefined {
  for (const response of responses) {
    const first = response.events[0];
    if (first !== undefined) return first.modRevision;
    if (response.progress === true && response.revision !== undefined) return response.revision + 1;
  }
  return undefined;
}

function checkMissing(
  request: WatchRequest,
  responses: WatchResponse[],
  deliveries: Deliveries,
  history: KnownHistory,
  report: Report,
  unplaced: Set<string>,
): void {
  const covered = coverage(request, responses, deliveries.events);
  if (covered === undefined) return;
  const revisions = history.revisions;
  for (let i = lowerBound(revisions, Math.max(covered.from, history.start)); i < revisions.length; i++) {
    const entry = revisions[i]!;
    if (entry.revision > covered.to) break;
    // The linearization's guess for an unknown write, not an observation: no event of it is owed.
    if (entry.uncertain === true) continue;
    const delivered = deliveries.revisions.get(entry.revision);
    for (const event of entry.events) {
      if (!inWatchRange(request, event.key) || !underPrefix(history, event.key)) continue;
      if (delivered !== undefined && hasKey(delivered, event.key)) continue;
      // An unknown-outcome delete applied at a revision the history cannot name, which a stream did deliver.
      if (event.type === 'delete' && event.modRevision < 0 && unplaced.has(event.key)) continue;
      reportMissing(request, event, covered, report);
    }
  }
}

/** Blames a missing event on the guarantee that promised it: the start revision, the stream, or a progress notification. */
function reportMissing(request: WatchRequest, missing: WatchEvent, covered: Coverage, report: Report): void {
  const { firstEvent, lastEvent, lastProgress } = covered;
  const start = startRevision(request);
  if (firstEvent === undefined || lastEvent === undefined || missing.modRevision > lastEvent.modRevision) {
    report(
      'bookmarkable',
      `${describe(missing)} was never delivered although a progress notification at revision ${lastProgress ?? covered.to} promised every event up to it`,
      [missing],
    );
  } else if (missing.modRevision < firstEvent.modRevision && start !== undefined) {
    report(
      'resumable',
      `${describe(missing)} was never delivered: a watch from revision ${start} must start with it, but its first event was ${describe(firstEvent)}`,
      [missing],
    );
  } else if (missing.modRevision < firstEvent.modRevision) {
    report(
      'reliable',
      `${describe(missing)} was never delivered although a progress notification at revision ${covered.from - 1} showed the watch started before it`,
      [missing],
    );
  } else {
    report(
      'reliable',
      `${describe(missing)} was never delivered although the watch delivered ${describe(firstEvent)} and ${describe(lastEvent)}`,
      [missing],
    );
  }
}
