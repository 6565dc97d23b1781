// Histories whose revisions only compares test (no response shows one): the search once gave up on
// them (every place a timed-out write could take made a state of its own); the revision cap
// (linearize.ts) must decide them, and must not hide a corrupted response.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkHistory, LiveChecker, modelOptionsFor } from '../../src/checker/index.ts';
import { capRevisions, step } from '../../src/checker/model.ts';
import { initialState, statesEqual, type ModelOptions, type ModelState } from '../../src/checker/model-state.ts';
import type { EtcdRequest, History } from '../../src/domain/index.ts';
import { corrupt } from '../helpers/random-histories.ts';

/** Draws of the property generator (test/helpers/random-histories.ts) that went inconclusive. */
const fixtures = JSON.parse(readFileSync(new URL('../fixtures/checker-hidden-revisions.json', import.meta.url), 'utf8')) as { name: string; history: History }[];

/** Streams a history through the live checker in completion order (as checker-properties does). */
function liveVerdict(history: History): string {
  const opts = modelOptionsFor(history);
  const live = new LiveChecker({ mode: opts.mode, trackRevision: opts.trackRevision, trackVersion: opts.trackVersion, initialRevision: opts.initialRevision });
  const order = history.operations.map((op, i) => ({ op, i, done: op.return ?? op.call })).sort((a, b) => a.done - b.done || a.i - b.i);
  for (let k = 0; k < order.length; k++) {
    live.push(order[k]!.op);
    const later = order.slice(k + 1).map((o) => o.op.call);
    live.advance(Math.min(order[k]!.done, ...later));
  }
  return live.finish();
}

describe('histories with hidden revisions', () => {
  test('the fixtures are what the cap is for: revisions tracked, none shown, timed-out writes', () => {
    for (const { name, history } of fixtures) {
      assert.equal(modelOptionsFor(history).trackRevision, true, name);
      assert.ok(
        history.operations.every((op) => op.response === undefined || !('revision' in op.response)),
        name,
      );
      assert.ok(history.operations.filter((op) => op.return === null).length >= 4, name);
    }
  });

  for (const { name, history } of fixtures) {
    test(`${name}: linearizable, offline and live`, () => {
      const report = checkHistory(history, { timeoutMs: 20_000 });
      assert.equal(report.verdict, 'linearizable', JSON.stringify(report.linearizability.inconclusive ?? report.linearizability.violation));
      assert.equal(liveVerdict(history), 'linearizable');
    });

    test(`${name}: every corrupted response is caught`, () => {
      let corrupted = 0;
      history.operations.forEach((op, index) => {
        if (op.return === null || op.response === undefined) return;
        for (const how of [0, 1]) {
          const bad = corrupt(history, index, how);
          if (bad === undefined) continue;
          corrupted++;
          assert.notEqual(checkHistory(bad, { timeoutMs: 20_000 }).verdict, 'linearizable', `operation ${index}, corruption ${how}`);
        }
      });
      assert.ok(corrupted >= 10, `only ${corrupted} corruptions`);
    });
  }
});

/** Puts and deletes on three keys, as requests. */
const writes = fc.array(
  fc.record({ put: fc.boolean(), key: fc.constantFrom('/a', '/b', '/c'), value: fc.nat(3) }).map((w): EtcdRequest => (w.put ? { type: 'put', key: w.key, value: `v${w.value}` } : { type: 'delete', key: w.key })),
  { maxLength: 30 },
);
const levelsArb = fc.uniqueArray(fc.integer({ min: 0, max: 35 }), { minLength: 1, maxLength: 6 }).map((l) => l.sort((a, b) => a - b));
const exclusive: ModelOptions = { mode: 'exclusive', prefix: '', trackRevision: true, trackVersion: false };

function apply(state: ModelState, requests: EtcdRequest[]): ModelState {
  return requests.reduce((s, r) => step(s, r, undefined, exclusive)!, state);
}

describe('capRevisions (the lemma behind the revision cap)', () => {
  test('keeps how every mod/create revision compares with every level, and commutes with writes', () => {
    fc.assert(
      fc.property(writes, writes, levelsArb, (before, after, levels) => {
        const state = apply(initialState(exclusive, 1), before);
        const capped = capRevisions(state, levels);
        const top = levels[levels.length - 1]!;
        assert.equal(capped.revision, Math.min(state.revision, top));
        for (const [key, k] of state.keys) {
          const c = capped.keys.get(key)!;
          assert.equal(c.value, k.value);
          for (const level of levels) {
            assert.equal(Math.sign(c.mod - level), Math.sign(k.mod - level), `${key} mod ${k.mod} -> ${c.mod}, level ${level}`);
            assert.equal(Math.sign(c.create - level), Math.sign(k.create - level), `${key} create ${k.create} -> ${c.create}, level ${level}`);
          }
        }
        // cap(step(S)) = cap(step(cap(S))), for any writes that follow.
        assert.ok(statesEqual(capRevisions(apply(state, after), levels), capRevisions(apply(capped, after), levels)));
      }),
      { numRuns: 300, seed: 20_261_125 },
    );
  });
});

