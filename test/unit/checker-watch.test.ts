import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkWatches, MAX_VIOLATIONS_PER_PROPERTY } from '../../src/checker/watch.ts';
import { inWatchRange } from '../../src/checker/watch-common.ts';
import type { CommittedRevision, WatchCheckInput } from '../../src/checker/watch.ts';
import type { WatchProperty, WatchViolation } from '../../src/checker/result.ts';
import type { KeyValue, WatchEvent, WatchRequest, WatchResponse, WatchStream } from '../../src/domain/index.ts';

// ---- building histories and streams

type Change = { type: 'put'; key: string; value: string } | { type: 'delete'; key: string };

const put = (key: string, value: string): Change => ({ type: 'put', key, value });
const del = (key: string): Change => ({ type: 'delete', key });

/** Replays changes (one list per revision, like a txn) into the events etcd emits, from `firstRevision`. */
function replay(revisions: Change[][], firstRevision = 2): CommittedRevision[] {
  const state = new Map<string, KeyValue>();
  const committed: CommittedRevision[] = [];
  let revision = firstRevision - 1;
  for (const changes of revisions) {
    const keys = new Set<string>();
    const applicable = changes.filter((change) => {
      if (keys.has(change.key) || (change.type === 'delete' && !state.has(change.key))) return false;
      keys.add(change.key);
      return true;
    });
    if (applicable.length === 0) continue;
    revision++;
    const events = applicable.map((change): WatchEvent => {
      const prev = state.get(change.key);
      const prevKV = prev === undefined ? {} : { prevKV: prev };
      if (change.type === 'delete') {
        state.delete(change.key);
        return { type: 'delete', key: change.key, modRevision: revision, isCreate: false, ...prevKV };
      }
      const kv: KeyValue = {
        key: change.key,
        value: change.value,
        modRevision: revision,
        createRevision: prev?.createRevision ?? revision,
        version: (prev?.version ?? 0) + 1,
      };
      state.set(change.key, kv);
      return { type: 'put', key: change.key, value: change.value, modRevision: revision, createRevision: kv.createRevision!, version: kv.version!, isCreate: prev === undefined, ...prevKV };
    });
    committed.push({ revision, events });
  }
  return committed;
}

/**
 * rev 2: put a=1 | rev 3: put b=1, c=1 | rev 4: put a=2 | rev 5: delete b | rev 6: put a=3, c=2 | rev 7: put b=2
 */
const HISTORY = replay([[put('a', '1')], [put('b', '1'), put('c', '1')], [put('a', '2')], [del('b')], [put('a', '3'), put('c', '2')], [put('b', '2')]]);

/** The committed event at (revision, key) as a watch delivers it; prevKV only when asked for. */
function ev(revision: number, key: string, withPrevKV = false, history = HISTORY): WatchEvent {
  const event = history.find((entry) => entry.revision === revision)?.events.find((e) => e.key === key);
  if (event === undefined) throw new Error(`no event for ${key} at ${revision}`);
  const copy = structuredClone(event);
  if (!withPrevKV) delete copy.prevKV;
  return copy;
}

let clock = 0;
const response = (events: WatchEvent[], extra: Partial<WatchResponse> = {}): WatchResponse => ({
  time: clock++,
  revision: events.at(-1)?.modRevision,
  events,
  ...extra,
});
const progress = (revision: number): WatchResponse => ({ time: clock++, revision, events: [], progress: true });
const stream = (request: WatchRequest, ...responses: WatchResponse[]): WatchStream => ({ id: 1, request, responses });

const ALL: WatchRequest = { key: 'a', end: '\u0000' };

function check(streams: WatchStream[], extra: Partial<WatchCheckInput> = {}): WatchViolation[] {
  return checkWatches({ streams, committed: HISTORY, ...extra });
}

function propertiesOf(violations: WatchViolation[]): WatchProperty[] {
  return [...new Set(violations.map((v) => v.property))].sort();
}

/** Asserts exactly one violation, of this property, whose events are exactly `events`; returns it. */
function assertOne(violations: WatchViolation[], property: WatchProperty, events: WatchEvent[]): WatchViolation {
  assert.equal(violations.length, 1, JSON.stringify(violations, null, 1));
  const violation = violations[0]!;
  assert.equal(violation.property, property);
  assert.equal(violation.watch, 1);
  assert.deepEqual(violation.events, events);
  return violation;
}

// ---- hand-written streams, one property at a time

describe('key ranges', () => {
  test('an absent end is one key, "\\0" is every key from key on, anything else is [key, end)', () => {
    assert.ok(inWatchRange({ key: 'a' }, 'a'));
    assert.ok(!inWatchRange({ key: 'a' }, 'ab'));
    assert.ok(inWatchRange({ key: 'b', end: '\u0000' }, 'zzz'));
    assert.ok(!inWatchRange({ key: 'b', end: '\u0000' }, 'a'));
    assert.ok(inWatchRange({ key: 'b', end: 'd' }, 'c'));
    assert.ok(inWatchRange({ key: 'b', end: 'd' }, 'b'));
    assert.ok(!inWatchRange({ key: 'b', end: 'd' }, 'd'));
  });
});

describe('filtered', () => {
  test('an event outside the watched key is reported', () => {
    const violations = check([stream({ key: 'a' }, response([ev(2, 'a')]), response([ev(3, 'b')]), response([ev(4, 'a')]))]);
    const violation = assertOne(violations, 'filtered', [ev(3, 'b')]);
    assert.match(violation.message, /"b" at revision 3 is outside the watched key "a"/);
  });

  test('events inside a [key, end) range pass', () => {
    assert.deepEqual(check([stream({ key: 'b', end: 'd' }, response([ev(3, 'b'), ev(3, 'c')]), response([ev(5, 'b')]), response([ev(6, 'c')]))]), []);
  });
});

describe('ordered', () => {
  test('an event older than the one before it is reported', () => {
    const violations = check([stream(ALL, response([ev(2, 'a')]), response([ev(4, 'a')]), response([ev(3, 'b'), ev(3, 'c')]))]);
    assert.match(assertOne(violations, 'ordered', [ev(3, 'b')]).message, /revision 3 arrived after .* revision 4/);
  });

  test('increasing revisions pass, also without history', () => {
    const ordered = stream(ALL, response([ev(2, 'a')]), response([ev(3, 'b'), ev(3, 'c'), ev(4, 'a')]));
    assert.deepEqual(check([ordered]), []);
    assert.deepEqual(check([ordered], { committed: undefined }), []);
  });
});

describe('unique', () => {
  test('an event delivered twice is reported once, and not as a split revision', () => {
    const violations = check([stream({ key: 'a' }, response([ev(2, 'a')]), response([ev(4, 'a')]), response([ev(4, 'a')]))]);
    assert.match(assertOne(violations, 'unique', [ev(4, 'a')]).message, /delivered twice/);
  });

  test('the same key at different revisions passes', () => {
    assert.deepEqual(check([stream({ key: 'a' }, response([ev(2, 'a'), ev(4, 'a')]), response([ev(6, 'a')]))]), []);
  });
});

describe('atomic', () => {
  test('a revision split across two responses is reported with the late events', () => {
    const violations = check([stream(ALL, response([ev(2, 'a')]), response([ev(3, 'b')]), response([ev(3, 'c'), ev(4, 'a')]))]);
    assert.match(assertOne(violations, 'atomic', [ev(3, 'c')]).message, /revision 3 were split across responses 1 and 2/);
  });

  test('whole revisions per response pass', () => {
    assert.deepEqual(check([stream(ALL, response([ev(2, 'a'), ev(3, 'b'), ev(3, 'c')]), response([ev(4, 'a')]))]), []);
  });
});

describe('bookmarkable', () => {
  test('an event at or below an earlier progress notification is reported', () => {
    const violations = check([stream({ key: 'a' }, response([ev(2, 'a')]), progress(4), response([ev(4, 'a')]))]);
    assert.match(assertOne(violations, 'bookmarkable', [ev(4, 'a')]).message, /after a progress notification at revision 4/);
  });

  test('a committed event below a progress notification that never arrived is reported', () => {
    const violations = check([stream({ key: 'a' }, response([ev(2, 'a')]), progress(5))]);
    assert.match(assertOne(violations, 'bookmarkable', [ev(4, 'a', true)]).message, /never delivered although a progress notification at revision 5/);
  });

  test('a watch from a revision that only got a progress notification must have received the events up to it', () => {
    const violations = check([stream({ key: 'a', startRevision: 3 }, progress(7))]);
    assert.deepEqual(propertiesOf(violations), ['bookmarkable']);
    assert.deepEqual(violations.map((v) => v.events), [[ev(4, 'a', true)], [ev(6, 'a', true)]]);
  });

  test('a progress notification going back is reported', () => {
    const violations = check([stream({ key: 'a' }, progress(5), progress(4))], { committed: undefined });
    assert.match(assertOne(violations, 'bookmarkable', []).message, /revision 4 went back from revision 5/);
  });

  test('a progress notification older than a delivered event is reported', () => {
    const violations = check([stream({ key: 'a' }, response([ev(2, 'a'), ev(4, 'a')]), progress(3))]);
    assertOne(violations, 'bookmarkable', [ev(4, 'a')]);
  });

  test('progress notifications consistent with the events pass', () => {
    assert.deepEqual(check([stream({ key: 'a' }, progress(1), response([ev(2, 'a')]), progress(3), response([ev(4, 'a')]), progress(5))]), []);
  });
});

describe('reliable', () => {
  test('a committed event between two delivered ones that never arrived is reported', () => {
    const violations = check([stream({ key: 'a' }, response([ev(2, 'a')]), response([ev(6, 'a')]))]);
    assert.match(assertOne(violations, 'reliable', [ev(4, 'a', true)]).message, /put of "a" at revision 4 was never delivered/);
  });

  test('a missing event inside a delivered revision is reported', () => {
    const violations = check([stream(ALL, response([ev(2, 'a'), ev(3, 'b')]), response([ev(4, 'a')]))]);
    assertOne(violations, 'reliable', [ev(3, 'c')]);
  });

  test('after a first progress notification, the events up to the first event are promised', () => {
    const violations = check([stream({ key: 'a' }, progress(3), response([ev(6, 'a')]))]);
    assertOne(violations, 'reliable', [ev(4, 'a', true)]);
  });

  test('an event that differs from the history is reported', () => {
    const wrong = { ...ev(4, 'a'), value: 'x' };
    const violations = check([stream({ key: 'a' }, response([ev(2, 'a')]), response([wrong]))]);
    assert.match(assertOne(violations, 'reliable', [wrong]).message, /differs from the history: value "x", expected "2"/);
  });

  test('an event no write committed is reported', () => {
    const phantom: WatchEvent = { type: 'put', key: 'a', value: '9', modRevision: 5 };
    const violations = check([stream({ key: 'a' }, response([ev(4, 'a')]), response([phantom]), response([ev(6, 'a')]))]);
    assert.match(assertOne(violations, 'reliable', [phantom]).message, /not in the history/);
  });

  test('every event from the first to the last passes; without history gaps are not checked', () => {
    assert.deepEqual(check([stream(ALL, response([ev(3, 'b'), ev(3, 'c')]), response([ev(4, 'a'), ev(5, 'b')]))]), []);
    assert.deepEqual(check([stream({ key: 'a' }, response([ev(2, 'a')]), response([ev(6, 'a')]))], { committed: undefined }), []);
  });

  test('a cancel or error ends the stream: later gaps are not reported', () => {
    const canceled = stream({ key: 'a' }, response([ev(2, 'a')]), response([], { canceled: true, compactRevision: 3 }), response([ev(6, 'a')]));
    assert.deepEqual(check([canceled]), []);
    const failed = stream({ key: 'a' }, response([ev(2, 'a')]), response([], { error: 'etcdserver: mvcc: required revision has been compacted' }), response([ev(6, 'a')]));
    assert.deepEqual(check([failed]), []);
  });

  test('events before the history started are not compared with it', () => {
    const old: WatchEvent = { type: 'put', key: 'a', value: 'old', modRevision: 1 };
    assert.deepEqual(check([stream({ key: 'a' }, response([old]), response([ev(2, 'a')]))], { historyStart: 2 }), []);
    assertOne(check([stream({ key: 'a' }, response([old]), response([ev(2, 'a')]))]), 'reliable', [old]);
  });
});

describe('resumable', () => {
  test('a watch from a revision that skips the first matching event is reported', () => {
    const violations = check([stream({ key: 'a', startRevision: 3 }, response([ev(6, 'a')]))]);
    assert.match(assertOne(violations, 'resumable', [ev(4, 'a', true)]).message, /watch from revision 3 must start with it/);
  });

  test('an event below the start revision is reported, with or without history', () => {
    const early = stream({ key: 'a', startRevision: 4 }, response([ev(2, 'a')]), response([ev(4, 'a')]));
    assert.match(assertOne(check([early]), 'resumable', [ev(2, 'a')]).message, /delivered to a watch from revision 4/);
    assertOne(check([early], { committed: undefined }), 'resumable', [ev(2, 'a')]);
  });

  test('starting with the first matching event passes; a watch without a start revision is not checked', () => {
    assert.deepEqual(check([stream({ key: 'a', startRevision: 3 }, response([ev(4, 'a')]), response([ev(6, 'a')]))]), []);
    assert.deepEqual(check([stream({ key: 'a', startRevision: 4 }, response([ev(4, 'a')]))]), []);
    assert.deepEqual(check([stream({ key: 'a' }, response([ev(6, 'a')]))]), []);
  });
});

describe('isCreate', () => {
  test('a creation flagged as an update is reported, with or without history', () => {
    const wrong = { ...ev(2, 'a'), isCreate: false };
    assert.match(assertOne(check([stream({ key: 'a' }, response([wrong]))]), 'isCreate', [wrong]).message, /history says it creates/);
    assert.match(assertOne(check([stream({ key: 'a' }, response([wrong]))], { committed: undefined }), 'isCreate', [wrong]).message, /own createRevision/);
  });

  test('an update flagged as a creation is reported against the history', () => {
    const wrong: WatchEvent = { type: 'put', key: 'a', value: '2', modRevision: 4, isCreate: true };
    assertOne(check([stream({ key: 'a' }, response([wrong]))]), 'isCreate', [wrong]);
    assert.deepEqual(check([stream({ key: 'a' }, response([wrong]))], { committed: undefined }), [], 'nothing says otherwise without history');
  });

  test('correct flags pass, including a key created again after a delete', () => {
    assert.deepEqual(check([stream({ key: 'b' }, response([ev(3, 'b')]), response([ev(5, 'b')]), response([ev(7, 'b')]))]), []);
  });
});

describe('prevKV', () => {
  const watchA: WatchRequest = { key: 'a', prevKV: true };

  test('the previous versions pass, also for deletes', () => {
    assert.deepEqual(check([stream(watchA, response([ev(2, 'a', true)]), response([ev(4, 'a', true)]), response([ev(6, 'a', true)]))]), []);
    assert.deepEqual(check([stream({ key: 'b', prevKV: true }, response([ev(3, 'b', true)]), response([ev(5, 'b', true)]))]), []);
  });

  test('a wrong previous value is reported', () => {
    const wrong = ev(4, 'a', true);
    wrong.prevKV = { ...wrong.prevKV!, value: 'zz' };
    const violations = check([stream(watchA, response([ev(2, 'a', true)]), response([wrong]))]);
    assert.match(assertOne(violations, 'prevKV', [wrong]).message, /value "zz", expected "1"/);
  });

  test('a prevKV on a creation is reported', () => {
    const wrong: WatchEvent = { ...ev(2, 'a'), prevKV: { key: 'a', value: '0' } };
    assert.match(assertOne(check([stream(watchA, response([wrong]))]), 'prevKV', [wrong]).message, /did not exist before/);
    assertOne(check([stream(watchA, response([wrong]))], { committed: undefined }), 'prevKV', [wrong]);
  });

  test('a missing prevKV is reported unless compaction can explain it', () => {
    const missing = ev(4, 'a');
    assertOne(check([stream(watchA, response([missing]))]), 'prevKV', [missing]);
    assert.deepEqual(check([stream(watchA, response([missing]))], { compactRevision: 4 }), []);
    assert.deepEqual(check([stream({ key: 'a' }, response([missing]))]), [], 'not asked for');
  });

  test('without history a prevKV of another key or a later revision is reported', () => {
    const otherKey: WatchEvent = { ...ev(4, 'a'), prevKV: { key: 'b', value: '1', modRevision: 2 } };
    const later: WatchEvent = { ...ev(6, 'a'), prevKV: { key: 'a', value: '2', modRevision: 6 } };
    const violations = check([stream(watchA, response([otherKey]), response([later]))], { committed: undefined });
    assert.deepEqual(propertiesOf(violations), ['prevKV']);
    assert.deepEqual(violations.map((v) => v.events[0]), [otherKey, later]);
  });
});

describe('shared mode and bounds', () => {
  // Another client wrote "q" at revision 11.
  const shared: CommittedRevision[] = [
    { revision: 10, events: [{ type: 'put', key: 'p/a', value: '1', modRevision: 10, createRevision: 10, version: 1, isCreate: true }] },
    { revision: 12, events: [{ type: 'put', key: 'p/a', value: '2', modRevision: 12, createRevision: 10, version: 2, isCreate: false }] },
  ];

  test('keys outside the prefix are not checked against the history', () => {
    const other: WatchEvent = { type: 'put', key: 'q', value: 'x', modRevision: 11, createRevision: 11, version: 1 };
    const violations = checkWatches({
      streams: [stream({ key: 'p/', end: '\u0000' }, response([ev(10, 'p/a', false, shared)]), response([other]), response([ev(12, 'p/a', false, shared)]))],
      committed: shared,
      prefix: 'p/',
    });
    assert.deepEqual(violations, []);
  });

  test('a key outside both the prefix and the watched range is filtered', () => {
    const other: WatchEvent = { type: 'put', key: 'q', value: 'x', modRevision: 11 };
    const violations = checkWatches({
      streams: [stream({ key: 'p/', end: 'p0' }, response([ev(10, 'p/a', false, shared)]), response([other]))],
      committed: shared,
      prefix: 'p/',
    });
    assertOne(violations, 'filtered', [other]);
  });

  test('each property is listed a bounded number of times per stream, then counted', () => {
    const outside = Array.from({ length: 30 }, (_, i): WatchEvent => ({ type: 'put', key: 'z', value: 'v', modRevision: 10 + i }));
    const violations = check([stream({ key: 'a' }, response(outside))], { committed: undefined });
    assert.equal(violations.length, MAX_VIOLATIONS_PER_PROPERTY + 1);
    assert.match(violations.at(-1)!.message, /20 more filtered violations/);
  });

  test('100k committed revisions and a few streams check in well under a second', () => {
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const changes = Array.from({ length: 100_000 }, (_, i): Change[] => (i % 7 === 3 ? [del(keys[i % 10]!)] : [put(keys[i % 10]!, `v${i}`)]));
    const big = replay(changes);
    const observe = (request: WatchRequest, from: number): WatchStream => ({
      id: from,
      request,
      responses: big
        .filter((entry) => entry.revision >= from)
        .map((entry) => response(entry.events.filter((e) => inWatchRange(request, e.key)).map((e) => (request.prevKV === true ? e : { ...e, prevKV: undefined }))))
        .filter((r) => r.events.length > 0),
    });
    const streams = [observe(ALL, 2), observe({ key: 'k3', prevKV: true }, 2), observe({ key: 'k0', end: 'k5', startRevision: 50_000 }, 50_000)];
    const started = performance.now();
    const violations = checkWatches({ streams, committed: big });
    const elapsed = performance.now() - started;
    assert.deepEqual(violations, []);
    assert.ok(elapsed < 1500, `took ${elapsed.toFixed(0)} ms`);
  });

  test('a revision with many keys is checked without quadratic work', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `k${String(i).padStart(5, '0')}`);
    const big = replay([keys.map((key) => put(key, 'v'))]);
    const events = big[0]!.events.map((e) => ({ ...e, prevKV: undefined }));
    const dropped = events.splice(100, 1)[0]!;
    const started = performance.now();
    const violations = checkWatches({ streams: [stream({ key: 'k', end: '\u0000' }, response(events))], committed: big });
    const elapsed = performance.now() - started;
    assertOne(violations, 'reliable', [big[0]!.events[100]!]);
    assert.equal(dropped.key, 'k00100');
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  });
});

// ---- property-based: streams derived from a random history pass; one mutation is caught

const KEYS = ['a', 'b', 'c', 'd'];
/** Shrinking generated streams can run for minutes; stop it and report the smallest counterexample found so far. */
const SHRINK_LIMIT = { interruptAfterTimeLimit: 10_000, markInterruptAsFailure: true };
const RANGES: WatchRequest[] = [{ key: 'a' }, { key: 'c' }, { key: 'b', end: 'd' }, { key: 'a', end: '\u0000' }];

const changeArb: fc.Arbitrary<Change> = fc
  .record({ key: fc.constantFrom(...KEYS), remove: fc.boolean(), value: fc.string({ maxLength: 2 }) })
  .map(({ key, remove, value }) => (remove ? del(key) : put(key, value)));
const historyArb = fc.array(fc.array(changeArb, { minLength: 1, maxLength: 3 }), { minLength: 4, maxLength: 30 }).map((revisions) => replay(revisions));

/**
 * A correct stream for a random watch on `committed`: it covers [from, until], splits the events into responses
 * only between revisions, and sends progress notifications only at revisions whose events were all delivered.
 */
function deriveStream(id: number, committed: CommittedRevision[], g: fc.GeneratorValue): WatchStream {
  const last = committed.at(-1)?.revision ?? 1;
  const range = g(() => fc.constantFrom(...RANGES));
  const prevKV = g(fc.boolean);
  const withStart = g(fc.boolean);
  const from = g(fc.integer, { min: withStart ? 1 : 2, max: last + 1 });
  const until = g(fc.integer, { min: from - 1, max: last });
  const request: WatchRequest = { ...range, prevKV, ...(withStart ? { startRevision: from } : {}) };
  const keepIsCreate = g(fc.boolean);
  const observe = (event: WatchEvent): WatchEvent => {
    const copy = structuredClone(event);
    if (!prevKV) delete copy.prevKV;
    if (!keepIsCreate) delete copy.isCreate;
    return copy;
  };
  const revisions = committed
    .filter((entry) => entry.revision >= from && entry.revision <= until)
    .map((entry) => ({ revision: entry.revision, events: entry.events.filter((e) => inWatchRange(range, e.key)).map(observe) }))
    .filter((entry) => entry.events.length > 0);

  let time = 0;
  const responses: WatchResponse[] = [];
  if (g(fc.boolean)) responses.push({ time: time++, revision: from - 1, events: [] }); // the "created" answer
  let sent = from - 1;
  let notified = -Infinity;
  let pending: WatchEvent[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    sent = pending.at(-1)!.modRevision;
    responses.push({ time: time++, revision: sent, events: pending });
    pending = [];
  };
  const maybeNotify = (upTo: number): void => {
    const low = Math.max(sent, notified);
    if (low > upTo || !g(fc.boolean)) return;
    notified = g(fc.integer, { min: low, max: upTo });
    responses.push({ time: time++, revision: notified, events: [], progress: true });
  };
  for (const entry of revisions) {
    if (pending.length > 0 && g(fc.boolean)) flush();
    if (pending.length === 0) maybeNotify(entry.revision - 1);
    pending.push(...entry.events);
  }
  flush();
  maybeNotify(until);
  if (g(fc.boolean)) responses.push({ time: time++, events: [], canceled: true });
  return { id, request, responses };
}

describe('property: streams derived from a history', () => {
  test('correct streams have no violations, with or without the history', () => {
    fc.assert(
      fc.property(historyArb, fc.gen(), (committed, g) => {
        const streams = Array.from({ length: 4 }, (_, i) => deriveStream(i, committed, g));
        assert.deepEqual(checkWatches({ streams, committed }), []);
        assert.deepEqual(checkWatches({ streams, committed: undefined }), []);
      }),
      { numRuns: 300, ...SHRINK_LIMIT },
    );
  });

  interface Located {
    response: number;
    index: number;
    event: WatchEvent;
  }
  const locate = (s: WatchStream): Located[] =>
    s.responses.flatMap((r, response) => r.events.map((event, index) => ({ response, index, event })));
  const same = (a: WatchEvent, b: WatchEvent): boolean => a.modRevision === b.modRevision && a.key === b.key;
  const pick = <T>(g: fc.GeneratorValue, items: T[]): T | undefined =>
    items.length === 0 ? undefined : items[g(fc.integer, { min: 0, max: items.length - 1 })];

  /** Mutates a stream in place; returns the event the violation must name, or undefined when it does not apply. */
  type Mutation = (s: WatchStream, g: fc.GeneratorValue) => WatchEvent | undefined;

  const mutations: Record<string, { property: WatchProperty; mutate: Mutation }> = {
    'drop an event': {
      property: 'reliable',
      mutate: (s, g) => {
        const events = locate(s);
        const target = pick(g, events.slice(1, -1));
        if (target === undefined) return undefined;
        s.responses[target.response]!.events.splice(target.index, 1);
        return target.event;
      },
    },
    'duplicate an event': {
      property: 'unique',
      mutate: (s, g) => {
        const target = pick(g, locate(s));
        if (target === undefined) return undefined;
        s.responses[target.response]!.events.splice(target.index + 1, 0, structuredClone(target.event));
        return target.event;
      },
    },
    'swap two events of different revisions': {
      property: 'ordered',
      mutate: (s, g) => {
        const events = locate(s);
        const pairs = events.slice(1).map((second, i) => [events[i]!, second] as const).filter(([a, b]) => a.event.modRevision !== b.event.modRevision);
        const pair = pick(g, pairs);
        if (pair === undefined) return undefined;
        const [a, b] = pair;
        s.responses[a.response]!.events[a.index] = b.event;
        s.responses[b.response]!.events[b.index] = a.event;
        return a.event;
      },
    },
    'split a revision': {
      property: 'atomic',
      mutate: (s, g) => {
        const splits = locate(s).filter((l) => l.index > 0 && s.responses[l.response]!.events[l.index - 1]!.modRevision === l.event.modRevision);
        const target = pick(g, splits);
        if (target === undefined) return undefined;
        const original = s.responses[target.response]!;
        const tail = original.events.splice(target.index);
        s.responses.splice(target.response + 1, 0, { ...original, events: tail });
        return target.event;
      },
    },
    'announce progress before an event': {
      property: 'bookmarkable',
      mutate: (s, g) => {
        const target = pick(g, locate(s).filter((l) => l.index === 0));
        if (target === undefined) return undefined;
        s.responses.splice(target.response, 0, { time: 0, revision: target.event.modRevision, events: [], progress: true });
        return target.event;
      },
    },
    'drop the last revision behind a progress notification': {
      property: 'bookmarkable',
      mutate: (s) => {
        const events = locate(s);
        const lastRevision = events.at(-1)?.event.modRevision;
        if (lastRevision === undefined) return undefined;
        if (s.request.startRevision === undefined && events[0]!.event.modRevision === lastRevision) return undefined;
        const dropped = events.find((l) => l.event.modRevision === lastRevision)!.event;
        for (const r of s.responses) r.events = r.events.filter((e) => e.modRevision !== lastRevision);
        const canceled = s.responses.at(-1)?.canceled === true ? 1 : 0;
        s.responses.splice(s.responses.length - canceled, 0, { time: 0, revision: lastRevision, events: [], progress: true });
        return dropped;
      },
    },
    'skip the first revision after the start': {
      property: 'resumable',
      mutate: (s) => {
        const events = locate(s);
        const firstRevision = events[0]?.event.modRevision;
        if (s.request.startRevision === undefined || firstRevision === undefined) return undefined;
        if (!events.some((l) => l.event.modRevision !== firstRevision)) return undefined;
        for (const r of s.responses) r.events = r.events.filter((e) => e.modRevision !== firstRevision);
        return events[0]!.event;
      },
    },
    'deliver a key outside the range': {
      property: 'filtered',
      mutate: (s) => {
        const last = locate(s).at(-1);
        if (last === undefined) return undefined;
        const outside: WatchEvent = { type: 'put', key: '0', value: 'x', modRevision: last.event.modRevision };
        s.responses[last.response]!.events.push(outside);
        return outside;
      },
    },
    'change a value': {
      property: 'reliable',
      mutate: (s, g) => {
        const target = pick(g, locate(s).filter((l) => l.event.type === 'put'));
        if (target === undefined) return undefined;
        target.event.value = `${target.event.value ?? ''}!`;
        return target.event;
      },
    },
    'flip isCreate': {
      property: 'isCreate',
      mutate: (s, g) => {
        const target = pick(g, locate(s).filter((l) => l.event.isCreate !== undefined));
        if (target === undefined) return undefined;
        target.event.isCreate = target.event.isCreate !== true;
        return target.event;
      },
    },
    'change a prevKV': {
      property: 'prevKV',
      mutate: (s, g) => {
        const target = pick(g, locate(s).filter((l) => l.event.prevKV !== undefined));
        if (target === undefined) return undefined;
        target.event.prevKV = { ...target.event.prevKV!, value: `${target.event.prevKV!.value ?? ''}!` };
        return target.event;
      },
    },
  };

  for (const [name, { property, mutate }] of Object.entries(mutations)) {
    test(`${name} is reported as ${property}`, () => {
      let applied = 0;
      fc.assert(
        fc.property(historyArb, fc.gen(), (committed, g) => {
          const s = deriveStream(1, committed, g);
          const offending = mutate(s, g);
          if (offending === undefined) return;
          applied++;
          const violations = checkWatches({ streams: [s], committed });
          const matching = violations.filter((v) => v.property === property);
          assert.ok(matching.length > 0, `expected ${property} in ${JSON.stringify(violations)} for ${JSON.stringify(s)}`);
          assert.ok(
            matching.some((v) => v.events.some((e) => same(e, offending))),
            `expected ${JSON.stringify(offending)} in ${JSON.stringify(matching)}`,
          );
        }),
        { numRuns: 300, ...SHRINK_LIMIT },
      );
      assert.ok(applied >= 30, `the mutation applied to only ${applied} streams`);
    });
  }
});

// ---- watches reopened at past or future revisions (spec.watch.reopen)

describe('watches opened at past or future revisions', () => {
  const from = (startRevision: number): WatchRequest => ({ ...ALL, startRevision, prevKV: true });

  test('a watch from a future revision passes when it delivers exactly the events from its start on', () => {
    assert.deepEqual(check([stream(from(6), response([ev(6, 'a', true), ev(6, 'c', true)]), response([ev(7, 'b', true)]))]), []);
  });

  test('a progress notification below a future watch start promises nothing and passes', () => {
    assert.deepEqual(check([stream(from(9), progress(5), progress(7))]), []);
    assert.deepEqual(check([stream(from(6), progress(4), response([ev(6, 'a', true), ev(6, 'c', true)]), response([ev(7, 'b', true)]))]), []);
  });

  test('a watch from a future revision that receives an older event fails (etcd issue 20221)', () => {
    const violations = check([stream(from(6), response([ev(4, 'a', true)]), response([ev(6, 'a', true), ev(6, 'c', true)]), response([ev(7, 'b', true)]))]);
    const violation = assertOne(violations, 'resumable', [ev(4, 'a', true)]);
    assert.match(violation.message, /revision 4 was delivered to a watch from revision 6/);
    // Without the history the stream alone still shows it.
    assert.deepEqual(propertiesOf(check([stream(from(6), response([ev(4, 'a')]))], { committed: undefined })), ['resumable']);
  });

  test('an old event after the future watch has delivered newer ones fails as ordered too', () => {
    const violations = check([stream(from(6), response([ev(6, 'a', true), ev(6, 'c', true)]), response([ev(5, 'b', true)]))]);
    assert.deepEqual(propertiesOf(violations), ['ordered', 'resumable']);
  });

  test('a progress notification that runs ahead of a future watch events fails as bookmarkable', () => {
    // From 5: the delete of b at 5 and the puts at 6 are owed before a notification at 6.
    const violations = check([stream(from(5), progress(6))]);
    assert.deepEqual(propertiesOf(violations), ['bookmarkable']);
    assert.equal(violations.length, 3);
  });

  test('a watch from a past revision must start with the first event at or after it', () => {
    const whole = stream(from(3), response([ev(3, 'b', true), ev(3, 'c', true)]), response([ev(4, 'a', true)]), response([ev(5, 'b', true)]));
    assert.deepEqual(check([whole]), []);
    const late = stream(from(3), response([ev(4, 'a', true)]), response([ev(5, 'b', true)]));
    assert.deepEqual(propertiesOf(check([late])), ['resumable']);
  });

  test('resumed exactly at the compaction revision, the watch must deliver that revision (etcd issues 18089, 19179)', () => {
    const cancelled = { ...stream(from(2), response([], { canceled: true, compactRevision: 5 })), id: 1 };
    // At the compaction revision etcd can no longer read the previous version: no prevKV there.
    const resumed = { ...stream(from(5), response([ev(5, 'b')]), response([ev(6, 'a', true), ev(6, 'c', true)])), id: 2 };
    assert.deepEqual(check([cancelled, resumed], { compactRevision: 5 }), []);
    const dropped = { ...stream(from(5), response([ev(6, 'a', true), ev(6, 'c', true)])), id: 2 };
    const violations = check([cancelled, dropped], { compactRevision: 5 });
    assert.deepEqual(violations.map((v) => [v.property, v.watch, v.events]), [['resumable', 2, [ev(5, 'b', true)]]]);
  });
});
