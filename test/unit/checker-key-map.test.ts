/**
 * The model's persistent key map (src/checker/key-map.ts) against a plain Map: same contents after any
 * sequence of writes, earlier maps never change, and ranges come back in order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { KeyMap, KeyMapDraft } from '../../src/checker/key-map.ts';
import { keyInRange } from '../../src/checker/model-state.ts';

const key = fc.stringMatching(/^\/k\/[a-e]{0,3}$/);
const write = fc.oneof(fc.record({ set: key, value: fc.nat(9) }), fc.record({ delete: key }));

type Write = { set: string; value: number } | { delete: string };

/** The map after `writes` in one draft; the same writes applied to the plain Map `reference`. */
function applyWrites(map: KeyMap<number>, reference: Map<string, number>, writes: readonly Write[]): KeyMap<number> {
  const draft = new KeyMapDraft(map);
  for (const w of writes) {
    if ('set' in w) {
      draft.set(w.set, w.value);
      reference.set(w.set, w.value);
    } else {
      draft.delete(w.delete);
      reference.delete(w.delete);
    }
  }
  return draft.finish();
}

function sortedEntries(map: ReadonlyMap<string, number>): [string, number][] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

describe('KeyMap', () => {
  test('matches a Map after every step, keeps earlier maps unchanged, and ranges in key order', () => {
    fc.assert(
      fc.property(fc.array(fc.array(write, { maxLength: 4 }), { maxLength: 30 }), key, fc.oneof(key, fc.constant('\u0000')), (steps, start, end) => {
        let map = KeyMap.empty<number>();
        const reference = new Map<string, number>();
        const snapshots: [KeyMap<number>, [string, number][]][] = [];
        for (const writes of steps) {
          map = applyWrites(map, reference, writes);
          assert.deepEqual(sortedEntries(map), sortedEntries(reference));
          assert.equal(map.size, reference.size);
          for (const k of reference.keys()) assert.equal(map.get(k), reference.get(k));
          const expected = [...reference.keys()].filter((k) => keyInRange(k, start, end)).sort();
          assert.deepEqual(map.keysIn(start, end), expected);
          snapshots.push([map, sortedEntries(map)]);
        }
        for (const [snapshot, entries] of snapshots) assert.deepEqual(sortedEntries(snapshot), entries);
      }),
      { numRuns: 300, seed: 20_261_206 },
    );
  });

  test('ranges stay in order whether the previous map was ranged or not, and after drafts of many changes', () => {
    const manyKeys = fc.stringMatching(/^\/k\/[a-z]{1,3}$/);
    const manyWrites = fc.oneof(fc.record({ set: manyKeys, value: fc.nat(9) }), fc.record({ delete: manyKeys }));
    fc.assert(
      fc.property(fc.array(fc.record({ writes: fc.array(manyWrites, { maxLength: 24 }), ranged: fc.boolean() }), { maxLength: 30 }), (steps) => {
        let map = KeyMap.empty<number>();
        const reference = new Map<string, number>();
        for (const { writes, ranged } of steps) {
          map = applyWrites(map, reference, writes);
          if (ranged) assert.deepEqual(map.keysIn('/k/', '\u0000'), [...reference.keys()].sort());
        }
        assert.deepEqual(map.keysIn('/k/', '\u0000'), [...reference.keys()].sort());
      }),
      { numRuns: 300, seed: 20_261_207 },
    );
  });
});
