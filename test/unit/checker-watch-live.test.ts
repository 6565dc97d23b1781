import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LiveWatchChecker } from '../../src/checker/watch-live.ts';
import type { WatchEvent, WatchResponse } from '../../src/domain/index.ts';

const put = (key: string, modRevision: number): WatchEvent => ({ type: 'put', key, value: `v${modRevision}`, modRevision });
const events = (time: number, ...list: WatchEvent[]): WatchResponse => ({ time, revision: list[list.length - 1]?.modRevision ?? 0, events: list });
const progress = (time: number, revision: number): WatchResponse => ({ time, revision, events: [], progress: true });

function checker(startRevision = 2): LiveWatchChecker {
  const c = new LiveWatchChecker();
  c.open(1, { key: '/p/', end: '/p0', startRevision, prevKV: true });
  return c;
}

const properties = (c: LiveWatchChecker, responses: WatchResponse[]): string[] => responses.flatMap((r) => c.push(1, r).map((v) => v.property));

describe('live watch checks', () => {
  test('a well-behaved stream shows nothing', () => {
    assert.deepEqual(properties(checker(), [events(1, put('/p/a', 2), put('/p/b', 2)), progress(2, 3), events(3, put('/p/a', 4)), progress(4, 4)]), []);
  });

  test('ordered: an event below one already delivered', () => {
    assert.deepEqual(properties(checker(), [events(1, put('/p/a', 5)), events(2, put('/p/b', 4))]), ['ordered']);
  });

  test('unique: the same key at the same revision twice', () => {
    assert.deepEqual(properties(checker(), [events(1, put('/p/a', 5), put('/p/a', 5))]), ['unique']);
  });

  test('atomic: one revision split over two responses', () => {
    assert.deepEqual(properties(checker(), [events(1, put('/p/a', 5)), events(2, put('/p/b', 5))]), ['atomic']);
  });

  test('bookmarkable: an event at or below a progress notification, and a notification going back', () => {
    assert.deepEqual(properties(checker(), [progress(1, 10), events(2, put('/p/a', 9))]), ['bookmarkable']);
    assert.deepEqual(properties(checker(), [progress(1, 10), progress(2, 8)]), ['bookmarkable']);
    assert.deepEqual(properties(checker(), [events(1, put('/p/a', 12)), progress(2, 11)]), ['bookmarkable']);
  });

  test('resumable and filtered: below the start revision, outside the range', () => {
    assert.deepEqual(properties(checker(7), [events(1, put('/p/a', 6))]), ['resumable']);
    assert.deepEqual(properties(checker(), [events(1, put('/q/a', 6))]), ['filtered']);
  });

  test('a canceled stream ends: later lines are not checked, and unknown streams are ignored', () => {
    const c = checker();
    assert.deepEqual(c.push(1, { time: 1, events: [], canceled: true, error: 'connection dropped' }), []);
    assert.deepEqual(c.push(1, events(2, put('/q/x', 1))), []);
    assert.deepEqual(c.push(9, events(2, put('/q/x', 1))), []);
  });
});

describe('a watch opened at a future revision', () => {
  test('an event below its start revision is reported as it arrives (etcd issue 20221)', () => {
    const c = checker(50);
    assert.deepEqual(c.push(1, progress(0, 30)), []);
    const found = c.push(1, events(1, put('/p/a', 31)));
    assert.deepEqual(found.map((v) => v.property), ['resumable']);
    assert.deepEqual(c.push(1, events(2, put('/p/a', 50), put('/p/b', 50))), []);
  });
});
