import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '../../src/random.ts';
import { drawRevisionOffset, reopenedStartRevision, runWatchReopens } from '../../src/probes/watch-reopen.ts';

describe('watches reopened at past or future revisions', () => {
  test('offsets are drawn in [min, max], every value reachable, and the same seed draws the same ones', () => {
    const draw = (seed: number): number[] => {
      const random = seededRandom(seed);
      return Array.from({ length: 500 }, () => drawRevisionOffset(random, { min: -3, max: 3 }));
    };
    const drawn = draw(7);
    assert.deepEqual([...new Set(drawn)].sort((a, b) => a - b), [-3, -2, -1, 0, 1, 2, 3]);
    assert.deepEqual(draw(7), drawn);
    assert.notDeepEqual(draw(8), drawn);
    assert.equal(drawRevisionOffset(() => 0.999999999, { min: 50, max: 100 }), 100);
    assert.equal(drawRevisionOffset(() => 0, { min: 50, max: 50 }), 50);
  });

  test('a start revision is the newest plus the offset, never below 1 (0 would mean "from now")', () => {
    assert.equal(reopenedStartRevision(100, 50), 150);
    assert.equal(reopenedStartRevision(100, -40), 60);
    assert.equal(reopenedStartRevision(10, -40), 1);
  });

  test('watches open per target until the signal aborts, never more at once than maxOpen, and all are closed', async () => {
    const stop = new AbortController();
    const starts: [string, number][] = [];
    let open = 0;
    let peak = 0;
    let closed = 0;
    const done = runWatchReopens({
      spec: { intervalMs: 10, lifetimeMs: 60_000, revisionOffset: { min: 5, max: 5 } },
      random: seededRandom(1),
      newestRevision: () => 20,
      targets: ['m1', 'm2'],
      open: (target, start) => {
        starts.push([target, start]);
        peak = Math.max(peak, ++open);
        if (starts.length >= 5) stop.abort();
        return {
          close: () => {
            open--;
            closed++;
            return Promise.resolve();
          },
        };
      },
      signal: stop.signal,
      maxOpen: 5,
    });
    const opened = await done;
    assert.equal(opened, 5);
    assert.equal(peak, 5);
    assert.equal(closed, 5, 'every watch is closed when the run stops, before its lifetime');
    assert.deepEqual(starts, [['m1', 25], ['m2', 25], ['m1', 25], ['m2', 25], ['m1', 25]]);
  });
});
