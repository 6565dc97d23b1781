// The witness record's validation and write rules (src/domain/witness.ts), the HTTP witness's request and
// file parsing, and a property of the file store used in-process: whatever the interleaving of
// compare-and-swaps from writers with stale versions and old terms, the successful writes carry epochs
// 1, 2, 3, ... with no gap or repeat, and a lower term never lands after a higher one.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  parseWitnessRecord,
  WitnessRecordError,
  witnessWriteRefusal,
  type VersionedWitnessRecord,
  type WitnessRecord,
} from '../../src/domain/witness.ts';
import { parseWitnessFile, parseWitnessWriteRequest, WitnessFileError, WitnessFileStore } from '../../src/witness/index.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-witness-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(tmp, `d${++dirs}`);

function record(overrides: Partial<WitnessRecord> = {}): WitnessRecord {
  return {
    epoch: 1,
    owner: 'operator-a',
    ownerTerm: 1,
    phase: 'paired',
    members: ['m1', 'm2'],
    fenced: [],
    updatedAt: '2026-01-01T00:00:00Z',
    ...overrides,
  };
}

/** The record as JSON with `field` set to `value` (undefined: removed). */
function withField(field: string, value: unknown): unknown {
  const raw: Record<string, unknown> = Object.fromEntries(Object.entries(record()).filter(([key]) => key !== field));
  if (value !== undefined) raw[field] = value;
  return raw;
}

describe('parseWitnessRecord', () => {
  test('accepts a valid record and returns exactly its fields', () => {
    assert.deepEqual(parseWitnessRecord('lease ns/w', record()), record());
    const single = record({ phase: 'single', members: ['m1'], fenced: ['m0'], fencedMember: 'm0', epoch: 7, ownerTerm: 3 });
    assert.deepEqual(parseWitnessRecord('lease ns/w', single), single);
    // Unknown fields are dropped, not kept.
    assert.deepEqual(parseWitnessRecord('lease ns/w', { ...record(), extra: true }), record());
    // failingOver with its survivor (and failover epoch, where the record has one).
    const failingOver = parseWitnessRecord('lease ns/w', { ...record({ phase: 'failingOver', members: ['m1'], fencedMember: 'm2', fenced: ['m2'] }), survivor: 'm1', failoverEpoch: 1 });
    assert.equal(failingOver.phase, 'failingOver');
    assert.equal(failingOver.survivor, 'm1');
  });

  const malformed: [string, string, unknown][] = [
    ['epoch', 'a negative epoch', -1],
    ['epoch', 'a fractional epoch', 1.5],
    ['epoch', 'a string epoch', '1'],
    ['epoch', 'no epoch', undefined],
    ['owner', 'an empty owner', ''],
    ['owner', 'a numeric owner', 5],
    ['owner', 'no owner', undefined],
    ['ownerTerm', 'a negative term', -3],
    ['ownerTerm', 'no term', undefined],
    ['phase', 'an unknown phase', 'leading'],
    ['phase', 'no phase', undefined],
    ['members', 'members that are not a list', 'm1,m2'],
    ['members', 'an empty member name', ['m1', '']],
    ['members', 'a numeric member', [1]],
    ['fenced', 'no fenced list', undefined],
    ['fenced', 'fenced that is an object', { m1: true }],
    ['updatedAt', 'an empty updatedAt', ''],
    ['updatedAt', 'no updatedAt', undefined],
    ['survivor', 'an empty survivor', ''],
    ['fencedMember', 'a numeric fencedMember', 2],
  ];
  for (const [field, what, value] of malformed) {
    test(`rejects ${what}, naming ${field} and the witness`, () => {
      assert.throws(
        () => parseWitnessRecord('configMap ns/w', withField(field, value)),
        (error: unknown) => {
          assert.ok(error instanceof WitnessRecordError, String(error));
          assert.equal(error.witness, 'configMap ns/w');
          assert.match(error.message, /^witness configMap ns\/w: invalid record: /);
          assert.match(error.message, new RegExp(`\\b${field}\\b`));
          return true;
        },
      );
    });
  }

  test('rejects what is not an object', () => {
    for (const value of [null, 'record', 3, [record()], undefined]) {
      assert.throws(() => parseWitnessRecord('w', value), /invalid record: not an object/);
    }
  });

  test('rejects a failingOver record without its survivor', () => {
    assert.throws(() => parseWitnessRecord('w', record({ phase: 'failingOver' })), /failingOver record names its survivor/);
  });
});

describe('witnessWriteRefusal', () => {
  test('the first record has epoch 1', () => {
    assert.equal(witnessWriteRefusal(undefined, record({ epoch: 1 })), undefined);
    assert.match(witnessWriteRefusal(undefined, record({ epoch: 0 })) ?? '', /epoch 0 does not follow epoch 0/);
    assert.match(witnessWriteRefusal(undefined, record({ epoch: 2 })) ?? '', /epoch 2 does not follow epoch 0/);
  });

  test('the epoch must be the current one plus one', () => {
    const current = record({ epoch: 4 });
    assert.equal(witnessWriteRefusal(current, record({ epoch: 5 })), undefined);
    assert.match(witnessWriteRefusal(current, record({ epoch: 4 })) ?? '', /epoch 4 does not follow epoch 4/);
    assert.match(witnessWriteRefusal(current, record({ epoch: 6 })) ?? '', /epoch 6 does not follow epoch 4/);
    assert.match(witnessWriteRefusal(current, record({ epoch: 3 })) ?? '', /epoch 3 does not follow epoch 4/);
  });

  test('a lower term is refused; the same or a higher term is not', () => {
    const current = record({ epoch: 4, ownerTerm: 5, owner: 'operator-b' });
    assert.equal(
      witnessWriteRefusal(current, record({ epoch: 5, ownerTerm: 4, owner: 'operator-a' })),
      'term 4 of operator-a is older than term 5 of operator-b',
    );
    assert.equal(witnessWriteRefusal(current, record({ epoch: 5, ownerTerm: 5, owner: 'operator-b' })), undefined);
    assert.equal(witnessWriteRefusal(current, record({ epoch: 5, ownerTerm: 9, owner: 'operator-a' })), undefined);
  });
});

describe('the HTTP witness: PUT /record bodies and the data file', () => {
  test('a valid write request', () => {
    assert.deepEqual(parseWitnessWriteRequest({ expectedVersion: '', record: record() }), { ok: true, request: { expectedVersion: '', record: record() } });
  });

  test('malformed write requests name the field', () => {
    const cases: [unknown, RegExp][] = [
      [null, /must be a JSON object/],
      [[], /must be a JSON object/],
      [{ record: record() }, /^expectedVersion: required/],
      [{ expectedVersion: 3, record: record() }, /^expectedVersion: required, a string .* got 3/],
      [{ expectedVersion: '1' }, /^record: required/],
      [{ expectedVersion: '1', record: withField('ownerTerm', 'x') }, /^record: ownerTerm must be a whole number/],
      [{ expectedVersion: '1', record: withField('members', undefined) }, /^record: members must be a list/],
      [{ expectedVersion: '1', record: record(), force: true }, /^force: unknown field/],
    ];
    for (const [body, message] of cases) {
      const parsed = parseWitnessWriteRequest(body);
      assert.equal(parsed.ok, false, JSON.stringify(body));
      if (!parsed.ok) assert.match(parsed.error, message);
    }
  });

  test('a corrupt data file is a WitnessFileError naming the file and what is wrong', () => {
    const file = '/var/lib/witness/witness.json';
    const cases: [string, RegExp][] = [
      ['', /not JSON/],
      ['{"version": "1", "record": ', /not JSON/],
      ['[1]', /not a JSON object/],
      [JSON.stringify({ version: 1, record: record() }), /version must be a counter string/],
      [JSON.stringify({ version: '', record: record() }), /version must be a counter string/],
      [JSON.stringify({ version: '01', record: record() }), /version must be a counter string/],
      [JSON.stringify({ version: '2', record: { ...record(), epoch: -1 } }), /invalid record: epoch must be/],
      [JSON.stringify({ version: '2' }), /invalid record: not an object/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseWitnessFile(file, text),
        (error: unknown) => {
          assert.ok(error instanceof WitnessFileError, String(error));
          assert.equal(error.file, file);
          assert.ok(error.message.includes(file), error.message);
          assert.match(error.message, message);
          return true;
        },
        text,
      );
    }
    assert.deepEqual(parseWitnessFile(file, JSON.stringify({ version: '12', record: record({ epoch: 12 }) })), { version: '12', record: record({ epoch: 12 }) });
  });
});

describe('the file store', () => {
  test('create, compare-and-swap, reopen: the record and version survive; a stale version loses', async () => {
    const dir = freshDir();
    const store = await WitnessFileStore.open(dir);
    assert.deepEqual(await store.read(), { version: '', record: undefined });
    assert.deepEqual(await store.compareAndSwap('', record()), { ok: true, version: '1' });
    const second = record({ epoch: 2, phase: 'single', members: ['m1'] });
    assert.deepEqual(await store.compareAndSwap('1', second), { ok: true, version: '2' });
    const lost = await store.compareAndSwap('1', record({ epoch: 2 }));
    assert.equal(lost.ok, false);
    if (!lost.ok) {
      assert.deepEqual(lost.current, { version: '2', record: second });
      assert.match(lost.reason, /version "1" is not the current version "2"/);
    }
    await assert.rejects(store.compareAndSwap('2', withField('owner', '') as WitnessRecord), WitnessRecordError);
    await store.close();
    assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'witness.json'), 'utf8')), { version: '2', record: second });
    const reopened = await WitnessFileStore.open(dir);
    assert.deepEqual(await reopened.read(), { version: '2', record: second });
    await reopened.close();
  });

  interface Writer {
    name: string;
    term: number;
    /** What this writer last saw (its own successful write, a lost write's current, or a read). */
    seen: VersionedWitnessRecord;
  }
  type Attempt = { writer: number; action: 'cas' | 'read' | 'newTerm'; epochOffset: number };

  test('property: any interleaving of compare-and-swaps yields epochs 1, 2, 3, ... and terms that never go back', async () => {
    const attempt = fc.record({
      writer: fc.nat({ max: 4 }),
      action: fc.constantFrom<Attempt['action']>('cas', 'cas', 'cas', 'cas', 'read', 'newTerm'),
      // Mostly the epoch that follows what the writer saw; sometimes a repeat or a skip.
      epochOffset: fc.constantFrom(1, 1, 1, 1, 1, 0, 2),
    });
    const batches = fc.array(fc.array(attempt, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 5 }), batches, async (writerCount, plan) => {
        const store = await WitnessFileStore.open(freshDir());
        let lastTerm = 0;
        const writers: Writer[] = Array.from({ length: writerCount }, (_, i) => ({
          name: `operator-${i}`,
          term: ++lastTerm,
          seen: { version: '', record: undefined },
        }));
        const landed: { version: string; record: WitnessRecord }[] = [];
        try {
          for (const batch of plan) {
            // One batch runs concurrently: every writer acts on what it saw before the batch (stale for all but one).
            await Promise.all(
              batch.map(async ({ writer: index, action, epochOffset }) => {
                const writer = writers[index % writerCount]!;
                if (action === 'read') {
                  writer.seen = await store.read();
                  return;
                }
                if (action === 'newTerm') {
                  // A new leader-election term, higher than any so far (a Lease's transitions).
                  writer.term = ++lastTerm;
                  return;
                }
                const next = record({ epoch: (writer.seen.record?.epoch ?? 0) + epochOffset, owner: writer.name, ownerTerm: writer.term });
                const result = await store.compareAndSwap(writer.seen.version, next);
                if (result.ok) {
                  landed.push({ version: result.version, record: next });
                  writer.seen = { version: result.version, record: next };
                } else {
                  writer.seen = result.current;
                }
              }),
            );
          }
          landed.sort((a, b) => Number(a.version) - Number(b.version));
          assert.deepEqual(landed.map((w) => w.version), landed.map((_, i) => String(i + 1)), 'versions are a counter');
          assert.deepEqual(landed.map((w) => w.record.epoch), landed.map((_, i) => i + 1), 'epochs 1, 2, 3, ... without gaps or repeats');
          for (let i = 1; i < landed.length; i++) {
            assert.ok(landed[i]!.record.ownerTerm >= landed[i - 1]!.record.ownerTerm, `term ${landed[i]!.record.ownerTerm} landed after term ${landed[i - 1]!.record.ownerTerm}`);
          }
          const final = await store.read();
          assert.deepEqual(final, landed.length === 0 ? { version: '', record: undefined } : landed.at(-1));
          await store.close();
          const reopened = await WitnessFileStore.open(store.dataDir);
          assert.deepEqual(reopened.snapshot(), final, 'what was acknowledged is what is on disk');
          await reopened.close();
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
