import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  casRequest,
  createEtcdSimulation,
  ETCD_PREFIX,
  generateEtcdHistory,
  generateRegisterHistory,
  REGISTER_KEY,
  registerCall,
  Rng,
  toJsonl,
} from '../../bench/generate.ts';
import { buildPorcupine, runPorcupine } from '../../bench/porcupine.ts';
import type { EtcdRequest, History, Operation, RangeResponse } from '../../src/domain/index.ts';

/** Asserts that no client has two operations overlapping in time, nor one after an unknown outcome. */
function assertClientsSequential(history: History): void {
  const byClient = new Map<number, Operation[]>();
  for (const op of history.operations) {
    const list = byClient.get(op.client) ?? [];
    list.push(op);
    byClient.set(op.client, list);
  }
  for (const [client, ops] of byClient) {
    ops.sort((a, b) => a.call - b.call);
    for (let i = 1; i < ops.length; i++) {
      const prev = ops[i - 1]!;
      assert.notEqual(prev.return, null, `client ${client} continues after an unknown outcome`);
      assert.ok(ops[i]!.call >= prev.return!, `client ${client}: call ${ops[i]!.call} before the previous return ${prev.return}`);
    }
  }
  for (const op of history.operations) {
    if (op.return === null) assert.equal(op.response, undefined);
    else {
      assert.ok(op.return >= op.call);
      assert.notEqual(op.response, undefined);
    }
  }
}

/** Every value written by a put (alone or inside a txn). */
function writtenValues(history: History): string[] {
  const values: string[] = [];
  const collect = (request: EtcdRequest): void => {
    if (request.type === 'put') values.push(request.value);
    if (request.type === 'txn') for (const op of [...request.success, ...request.failure]) collect(op);
  };
  for (const op of history.operations) collect(op.request);
  return values;
}

describe('bench generators', () => {
  test('the PRNG is deterministic by seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 20 }, () => a.float());
    assert.deepEqual(
      sa,
      Array.from({ length: 20 }, () => b.float()),
    );
    assert.notDeepEqual(
      sa,
      Array.from({ length: 20 }, () => c.float()),
    );
    for (const x of sa) assert.ok(x >= 0 && x < 1);
  });

  test('register histories are deterministic by seed', () => {
    for (const corrupt of [false, true]) {
      const one = generateRegisterHistory({ seed: 7, corrupt });
      const two = generateRegisterHistory({ seed: 7, corrupt });
      assert.equal(toJsonl(one.history), toJsonl(two.history));
      assert.equal(one.corruption, two.corruption);
    }
    assert.notEqual(toJsonl(generateRegisterHistory({ seed: 7 }).history), toJsonl(generateRegisterHistory({ seed: 8 }).history));
  });

  test('register histories have the Jepsen shape: one key, get/put/cas, no revisions, many timeouts', () => {
    let operations = 0;
    let unknown = 0;
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const { history, clients } = generateRegisterHistory({ seed });
      assert.equal(history.operations.length, 80);
      assert.equal(history.meta?.mode, 'exclusive');
      assertClientsSequential(history);
      assert.ok(clients >= 5 && clients <= 10, `seed ${seed}: ${clients} clients`);
      const ids = new Set(history.operations.map((op) => op.client));
      for (let c = 0; c < clients; c++) assert.ok(ids.has(c), `seed ${seed}: client ${c} has no operation`);
      const values = writtenValues(history);
      assert.equal(new Set(values).size, values.length, `seed ${seed}: a value is written twice`);
      for (const op of history.operations) {
        const call = registerCall(op.request);
        assert.ok(call, `seed ${seed}: not a register operation: ${JSON.stringify(op.request)}`);
        assert.equal(call.key, REGISTER_KEY);
        kinds.add(call.kind);
        operations++;
        if (op.return === null) {
          unknown++;
          continue;
        }
        const text = JSON.stringify(op.response);
        assert.doesNotMatch(text, /[Rr]evision|version/, `seed ${seed}: revisions in ${text}`);
        if (call.kind === 'get') assert.ok((op.response as RangeResponse).kvs.length <= 1);
        if (call.kind === 'cas') assert.equal(typeof (op.response as { succeeded?: unknown }).succeeded, 'boolean');
      }
    }
    assert.deepEqual([...kinds].sort(), ['cas', 'get', 'put']);
    const rate = unknown / operations;
    assert.ok(rate >= 0.1 && rate <= 0.3, `unknown-outcome rate ${rate}`);
  });

  test('a corrupted register history differs from the clean one with the same seed in one response', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const clean = generateRegisterHistory({ seed });
      const bad = generateRegisterHistory({ seed, corrupt: true });
      assert.equal(clean.corrupted, false);
      assert.equal(bad.corrupted, true);
      assert.match(bad.corruption ?? '', /^operation \d+: /);
      const differing = clean.history.operations.filter((op, i) => JSON.stringify(op) !== JSON.stringify(bad.history.operations[i]));
      assert.equal(differing.length, 1, `seed ${seed}`);
      assert.deepEqual(
        differing.map((op) => op.request),
        differing.map((op) => bad.history.operations[clean.history.operations.indexOf(op)]!.request),
      );
    }
  });

  test('etcd histories carry revisions and the requested shape', () => {
    const options = { seed: 3, operations: 20_000 };
    const history = generateEtcdHistory(options);
    assert.equal(toJsonl(history), toJsonl(generateEtcdHistory(options)));
    assert.notEqual(toJsonl(history), toJsonl(generateEtcdHistory({ ...options, seed: 4 })));
    assert.equal(history.operations.length, 20_000);
    assert.deepEqual(history.meta, { kind: 'meta', mode: 'exclusive', initialRevision: 1, seed: 3, prefix: ETCD_PREFIX });
    assertClientsSequential(history);
    const values = writtenValues(history);
    assert.equal(new Set(values).size, values.length);
    assert.deepEqual(
      [...new Set(history.operations.map((op) => op.client).filter((c) => c < 8))].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );

    const keys = new Set<string>();
    const kinds = new Map<string, number>();
    let unknown = 0;
    let maxRevision = 0;
    for (const op of history.operations) {
      const r = op.request;
      const kind = r.type === 'range' && r.end !== undefined ? 'prefix range' : r.type;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (r.type === 'range' || r.type === 'put' || r.type === 'delete') keys.add(r.key);
      if (r.type === 'txn') {
        assert.deepEqual(
          r.compare.map((c) => c.target),
          ['mod'],
        );
        assert.deepEqual(
          r.success.map((o) => o.type),
          ['put'],
        );
        assert.deepEqual(
          r.failure.map((o) => o.type),
          ['range'],
        );
      }
      if (op.return === null) {
        unknown++;
        assert.notEqual(r.type, 'range', 'only writes have unknown outcomes');
        continue;
      }
      const revision = (op.response as { revision?: number }).revision;
      assert.ok(typeof revision === 'number' && revision >= 1, JSON.stringify(op));
      maxRevision = Math.max(maxRevision, revision);
      if (r.type === 'range') {
        for (const kv of (op.response as RangeResponse).kvs) {
          assert.ok(kv.modRevision! >= kv.createRevision! && kv.modRevision! <= revision && kv.version! >= 1, JSON.stringify(op));
          assert.ok(kv.key.startsWith(ETCD_PREFIX));
        }
      }
    }
    assert.deepEqual([...kinds.keys()].sort(), ['delete', 'prefix range', 'put', 'range', 'txn']);
    assert.equal([...keys].filter((k) => k !== ETCD_PREFIX).length, 10);
    assert.ok(unknown > 0 && unknown < history.operations.length * 0.01, `${unknown} unknown outcomes`);
    // Deletes of missing keys and failed txns do not bump the revision: fewer revisions than writes.
    const writes = (kinds.get('put') ?? 0) + (kinds.get('delete') ?? 0) + (kinds.get('txn') ?? 0);
    assert.ok(maxRevision > 1 && maxRevision < writes + 1, `revision ${maxRevision}, ${writes} writes`);
  });

  test('the stream emits operations with a watermark a recorder could advance to', () => {
    const sim = createEtcdSimulation({ seed: 9, operations: Infinity });
    let watermark = 0;
    for (let i = 0; i < 50_000; i++) {
      const e = sim.next();
      assert.ok(e);
      assert.ok(e.op.call >= watermark, `operation ${i} called at ${e.op.call}, before the watermark ${watermark} already advanced to`);
      assert.ok(e.watermark >= watermark, 'the watermark went back');
      watermark = e.watermark;
    }
  });
});

describe('porcupine (bench/porcupine)', () => {
  let dir = '';
  before(() => {
    buildPorcupine();
    dir = mkdtempSync(path.join(os.tmpdir(), 'bench-porcupine-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, operations: Operation[]): string => {
    const file = path.join(dir, name);
    writeFileSync(file, toJsonl({ meta: { kind: 'meta', mode: 'exclusive' }, operations, watches: [] }));
    return file;
  };
  const get = (client: number, call: number, ret: number, value: string | undefined): Operation => ({
    client,
    call,
    return: ret,
    request: { type: 'range', key: 'r' },
    response: { kvs: value === undefined ? [] : [{ key: 'r', value }] },
  });

  test('a trivially linearizable history is ok, a read of a never-written value is illegal', () => {
    const ok = write('ok.jsonl', [
      { client: 0, call: 0, return: 10, request: { type: 'put', key: 'r', value: 'a' }, response: {} },
      { client: 1, call: 20, return: 30, request: casRequest('r', 'a', 'b'), response: { succeeded: true } },
      get(0, 40, 50, 'b'),
    ]);
    const illegal = write('illegal.jsonl', [
      { client: 0, call: 0, return: 10, request: { type: 'put', key: 'r', value: 'a' }, response: {} },
      get(1, 20, 30, 'never-written'),
      get(0, 40, 50, 'a'),
    ]);
    const lines = runPorcupine([ok, illegal]);
    assert.deepEqual(
      lines.map((l) => [l.file, l.result]),
      [
        [ok, 'ok'],
        [illegal, 'illegal'],
      ],
    );
    for (const l of lines) assert.ok(Number.isInteger(l.ns) && l.ns >= 0);
  });

  test('an unknown-outcome put may take effect or not; a failed cas must not have applied', () => {
    const unknownPut: Operation = { client: 0, call: 0, return: null, request: { type: 'put', key: 'r', value: 'a' } };
    const seen = write('seen.jsonl', [unknownPut, get(1, 100, 110, 'a')]);
    const notSeen = write('not-seen.jsonl', [unknownPut, get(1, 100, 110, undefined)]);
    const casFailedButApplied = write('cas.jsonl', [
      { client: 0, call: 0, return: 10, request: { type: 'put', key: 'r', value: 'a' }, response: {} },
      { client: 0, call: 20, return: 30, request: casRequest('r', 'a', 'b'), response: { succeeded: false } },
      get(0, 40, 50, 'b'),
    ]);
    assert.deepEqual(
      runPorcupine([seen, notSeen, casFailedButApplied], { reps: 2 }).map((l) => [path.basename(l.file), l.result, l.rep]),
      [
        ['seen.jsonl', 'ok', 0],
        ['not-seen.jsonl', 'ok', 0],
        ['cas.jsonl', 'illegal', 0],
        ['seen.jsonl', 'ok', 1],
        ['not-seen.jsonl', 'ok', 1],
        ['cas.jsonl', 'illegal', 1],
      ],
    );
  });

  test('porcupine finds the uncorrupted generated register histories linearizable', () => {
    const files = Array.from({ length: 20 }, (_, i) => write(`clean-${i + 1}.jsonl`, generateRegisterHistory({ seed: i + 1 }).history.operations));
    for (const line of runPorcupine(files, { timeout: '20s' })) assert.equal(line.result, 'ok', line.file);
  });
});
