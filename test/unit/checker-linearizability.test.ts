import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHistory, LiveChecker } from '../../src/checker/index.ts';
import type { EtcdRequest, History } from '../../src/domain/index.ts';
import { del, get, history, kvs, op, put, rev } from '../helpers/histories.ts';

function verdict(h: History): string {
  return checkHistory(h).verdict;
}

describe('linearizability: hand-written histories with known answers', () => {
  test('sequential put then get is linearizable, with the linearization in order', () => {
    const h = history([op(1, 0, 10, put('x', '1'), rev(2)), op(2, 20, 30, get('x'), kvs([{ key: 'x', value: '1', modRevision: 2 }], 2))]);
    const report = checkHistory(h);
    assert.equal(report.verdict, 'linearizable');
    assert.deepEqual(report.linearizability.linearization, [0, 1]);
  });

  test('lost write: an acknowledged put is not seen by a later read', () => {
    const h = history([op(1, 0, 10, put('x', '1'), rev(2)), op(2, 20, 30, get('x'), kvs([], 2))]);
    const report = checkHistory(h);
    assert.equal(report.verdict, 'violation');
    assert.deepEqual(report.linearizability.violation?.unplaceable, [1]);
    assert.deepEqual(report.linearizability.violation?.prefix, [0]);
    assert.match(report.linearizability.violation.reason, /expected 1 keys/);
    assert.deepEqual(report.linearizability.violation?.states[0]?.kvs, [{ key: 'x', value: '1', modRevision: 2, createRevision: 2 }]);
  });

  test('lost write is found without revisions too', () => {
    const h = history([op(1, 0, 10, put('x', '1'), {}), op(2, 20, 30, get('x'), kvs([]))]);
    assert.equal(verdict(h), 'violation');
  });

  test('stale read: a read after two writes returns the first value', () => {
    const h = history([
      op(1, 0, 10, put('x', '1'), {}),
      op(1, 20, 30, put('x', '2'), {}),
      op(2, 40, 50, get('x'), kvs([{ key: 'x', value: '1' }])),
    ]);
    assert.equal(verdict(h), 'violation');
  });

  test('a read concurrent with a write may return either value', () => {
    const old = history([op(1, 0, 10, put('x', '1'), {}), op(1, 20, 60, put('x', '2'), {}), op(2, 30, 50, get('x'), kvs([{ key: 'x', value: '1' }]))]);
    const fresh = history([op(1, 0, 10, put('x', '1'), {}), op(1, 20, 60, put('x', '2'), {}), op(2, 30, 50, get('x'), kvs([{ key: 'x', value: '2' }]))]);
    assert.equal(verdict(old), 'linearizable');
    assert.equal(verdict(fresh), 'linearizable');
  });

  test('revision going backwards', () => {
    const h = history([op(1, 0, 10, put('x', 'a'), rev(2)), op(2, 20, 30, get('y'), kvs([], 1))]);
    assert.equal(verdict(h), 'violation');
  });

  test('a timed-out put that later becomes visible is linearizable', () => {
    const h = history([op(1, 0, null, put('x', '1')), op(2, 100, 110, get('x'), kvs([{ key: 'x', value: '1', modRevision: 2 }], 2))]);
    assert.equal(verdict(h), 'linearizable');
  });

  test('a timed-out put that never becomes visible is linearizable', () => {
    const h = history([op(1, 0, null, put('x', '1')), op(2, 100, 110, get('x'), kvs([], 1))]);
    assert.equal(verdict(h), 'linearizable');
  });

  test('a timed-out put whose value is read before its call is a violation', () => {
    const h = history([op(2, 0, 10, get('x'), kvs([{ key: 'x', value: '1' }])), op(1, 20, null, put('x', '1'))]);
    const report = checkHistory(h);
    assert.equal(report.verdict, 'violation');
    assert.deepEqual(report.linearizability.violation?.unplaceable, [0]);
  });

  test('txn compare on mod revision: compare-and-set', () => {
    const cas = (expectedMod: number): EtcdRequest => ({
        type: 'txn',
        compare: [{ key: 'x', target: 'mod', result: '=', value: expectedMod }],
        success: [{ type: 'put', key: 'x', value: `after-${expectedMod}` }],
        failure: [{ type: 'range', key: 'x' }],
      });
    const ok = history([
      op(1, 0, 10, put('x', 'a'), rev(2)),
      op(1, 20, 30, cas(2), { succeeded: true, revision: 3 }),
      op(2, 40, 50, cas(2), { succeeded: false, revision: 3, results: [{ kvs: [{ key: 'x', value: 'after-2', modRevision: 3 }] }] }),
    ]);
    assert.equal(verdict(ok), 'linearizable');
    const doubleSuccess = history([
      op(1, 0, 10, put('x', 'a'), rev(2)),
      op(1, 20, 30, cas(2), { succeeded: true, revision: 3 }),
      op(2, 40, 50, cas(2), { succeeded: true, revision: 4 }),
    ]);
    assert.equal(verdict(doubleSuccess), 'violation');
  });

  test('lease revoke deletes the keys attached to the lease', () => {
    const base = [
      op(1, 0, 10, { type: 'leaseGrant', id: '7', ttl: 60 }, rev(1)),
      op(1, 20, 30, put('x', 'a', '7'), rev(2)),
      op(1, 40, 50, { type: 'leaseRevoke', id: '7' }, rev(3)),
    ];
    assert.equal(verdict(history([...base, op(2, 60, 70, get('x'), kvs([], 3))])), 'linearizable');
    assert.equal(verdict(history([...base, op(2, 60, 70, get('x'), kvs([{ key: 'x', value: 'a' }], 3))])), 'violation');
  });

  test('a put with a lease that was never granted cannot succeed', () => {
    assert.equal(verdict(history([op(1, 0, 10, put('x', 'a', '9'), rev(2))])), 'violation');
  });

  test('reads with missing revisions and fields are left unconstrained', () => {
    const h = history([
      op(1, 0, 10, put('x', '1'), {}),
      op(2, 5, 15, get('x'), { kvs: [{ key: 'x' }] }),
      op(3, 20, 30, del('x'), {}),
      op(2, 40, 50, get('x'), { kvs: [] }),
    ]);
    assert.equal(verdict(h), 'linearizable');
  });

  test('a delete of a missing key does not bump the revision', () => {
    const h = history([op(1, 0, 10, del('x'), { revision: 1, deleted: 0 }), op(1, 20, 30, put('x', 'a'), rev(2))]);
    assert.equal(verdict(h), 'linearizable');
    const bumped = history([op(1, 0, 10, del('x'), { revision: 2, deleted: 0 })]);
    assert.equal(verdict(bumped), 'violation');
  });

  test('definite errors are not applied', () => {
    const h = history([op(1, 0, 10, put('x', '1'), { error: 'etcdserver: request timed out, definitely not applied' }), op(2, 20, 30, get('x'), kvs([], 1))]);
    assert.equal(verdict(h), 'linearizable');
  });

  test('range over a prefix with limit and count', () => {
    const h = history([
      op(1, 0, 10, put('/p/a', '1'), rev(2)),
      op(1, 20, 30, put('/p/b', '2'), rev(3)),
      op(2, 40, 50, { type: 'range', key: '/p/', end: '/p0', limit: 1 }, { kvs: [{ key: '/p/a', value: '1' }], count: 2, revision: 3 }),
    ]);
    assert.equal(verdict(h), 'linearizable');
    const wrongCount = history([
      op(1, 0, 10, put('/p/a', '1'), rev(2)),
      op(2, 40, 50, { type: 'range', key: '/p/', end: '/p0' }, { kvs: [{ key: '/p/a', value: '1' }], count: 2, revision: 2 }),
    ]);
    assert.equal(verdict(wrongCount), 'violation');
  });

  test('stale reads are checked against the states they could have seen', () => {
    const writes = [op(1, 0, 10, put('x', '1'), rev(2)), op(1, 20, 30, put('x', '2'), rev(3))];
    const atRevision2 = { type: 'range', key: 'x', revision: 2 } as const;
    assert.equal(verdict(history([...writes, op(2, 40, 50, atRevision2, kvs([{ key: 'x', value: '1' }], 3))])), 'linearizable');
    const wrong = checkHistory(history([...writes, op(2, 40, 50, atRevision2, kvs([{ key: 'x', value: '2' }], 3))]));
    assert.equal(wrong.verdict, 'violation');
    assert.equal(wrong.linearizability.staleReadViolations?.[0]?.operation, 2);
    const serializable = { type: 'range', key: 'x', serializable: true } as const;
    assert.equal(verdict(history([...writes, op(2, 40, 50, serializable, kvs([{ key: 'x', value: '1' }]))])), 'linearizable');
    assert.equal(verdict(history([...writes, op(2, 40, 50, serializable, kvs([{ key: 'x', value: 'never' }]))])), 'violation');
    // A serializable read cannot see a write that was called only after it returned.
    const future = history([op(2, 0, 10, serializable, kvs([{ key: 'x', value: '1' }])), op(1, 20, 30, put('x', '1'), rev(2))]);
    assert.equal(verdict(future), 'violation');
  });

  test('shared mode: foreign writes may bump the revision, own keys stay checked', () => {
    const meta = { mode: 'shared' as const, prefix: '/run/' };
    const ok = history(
      [
        op(1, 0, 10, put('/run/x', 'a'), rev(1000)),
        op(2, 20, 30, get('/run/x'), kvs([{ key: '/run/x', value: 'a', modRevision: 1000 }], 1007)),
        op(1, 40, 50, put('/run/x', 'b'), rev(1010)),
        op(2, 60, 70, { type: 'range', key: '/', end: '0' }, kvs([{ key: '/other', value: 'foreign' }, { key: '/run/x', value: 'b', modRevision: 1010 }], 1012)),
      ],
      meta,
    );
    assert.equal(verdict(ok), 'linearizable');
    const backwards = history([op(1, 0, 10, put('/run/x', 'a'), rev(1000)), op(2, 20, 30, get('/run/x'), kvs([{ key: '/run/x', value: 'a' }], 990))], meta);
    assert.equal(verdict(backwards), 'violation');
    const wrongMod = history([op(1, 0, 10, put('/run/x', 'a'), rev(1000)), op(2, 20, 30, get('/run/x'), kvs([{ key: '/run/x', value: 'a', modRevision: 999 }], 1001))], meta);
    assert.equal(verdict(wrongMod), 'violation');
  });

  test('many timed-out writes do not blow up the search', () => {
    const ops = [];
    for (let i = 0; i < 40; i++) ops.push(op(100 + i, i * 10, null, put('x', `t${i}`)));
    ops.push(op(1, 1000, 1010, get('x'), kvs([{ key: 'x', value: 't17' }])));
    ops.push(op(1, 1020, 1030, put('x', 'final'), {}));
    ops.push(op(1, 1040, 1050, get('x'), kvs([{ key: 'x', value: 't33' }])));
    const report = checkHistory(history(ops), { timeoutMs: 30_000 });
    assert.equal(report.verdict, 'linearizable');
  });
});

describe('live checker', () => {
  test('resolves an unknown-outcome put that a later read observes, and agrees with the offline check', () => {
    const ops = [
      op(1, 0, null, put('x', 'maybe')),
      op(2, 10, 20, put('y', 'sure'), rev(3)),
      op(3, 30, 40, get('x'), kvs([{ key: 'x', value: 'maybe', modRevision: 2 }], 3)),
    ];
    const live = new LiveChecker();
    for (const o of ops) live.push(o);
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().resolved, 1);
    assert.equal(checkHistory(history(ops)).linearizability.patched?.observed, 1);
  });

  test('a watch event resolves an unknown-outcome put; a put never observed stays unknown', () => {
    const live = new LiveChecker();
    live.push(op(1, 0, null, put('x', 'seen')));
    live.push(op(2, 5, null, put('z', 'unseen')));
    live.pushWatchResponse({ time: 50, revision: 2, events: [{ type: 'put', key: 'x', value: 'seen', modRevision: 2 }] });
    live.push(op(3, 60, 70, get('x'), kvs([{ key: 'x', value: 'seen', modRevision: 2 }], 2)));
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().resolved, 1);
  });

  test('an unresolved write holds nothing back: later operations are checked at once, the write waits for the watch', () => {
    const live = new LiveChecker({ resolveWindowMs: 1 });
    live.push(op(1, 0, null, put('x', 'late')));
    live.push(op(2, 10, 20, get('x'), kvs([], 1)));
    live.advance(30);
    assert.equal(live.stats().processed, 1); // the read, checked against the state at revision 1
    assert.equal(live.stats().pendingOperations, 0);
    assert.equal(live.stats().waitingForWatch, 1); // the write, until its value is seen or its window passes
    live.advance(2_000_000); // past the 1 ms window: taken as never applied
    assert.equal(live.stats().waitingForWatch, 0);
    live.push(op(3, 3_000_000, 3_000_010, get('x'), kvs([], 1)));
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().resolved, 0);
    assert.equal(live.stats().method, 'revision');
  });

  test('an observation after the resolve window: the search takes over from the pinned state and explains it, never a false violation', () => {
    const live = new LiveChecker({ resolveWindowMs: 1 });
    live.push(op(1, 0, null, put('x', 'late')));
    live.advance(2_000_000);
    // Revision 2 is the unknown write's: nobody claims it in the revision order, so the search decides.
    live.push(op(2, 3_000_000, 3_000_010, get('x'), kvs([{ key: 'x', value: 'late', modRevision: 2 }], 2)));
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().method, 'search');
    assert.match(live.stats().searchReason ?? '', /revision 2/);
  });

  test('a violation is reported as soon as the offending return is settled', () => {
    const live = new LiveChecker();
    live.push(op(1, 0, 10, put('x', '1'), rev(2)));
    live.advance(15);
    assert.equal(live.verdict, 'linearizable');
    live.push(op(2, 20, 30, get('x'), kvs([], 2)));
    live.advance(40);
    assert.equal(live.verdict, 'violation');
    assert.deepEqual(live.violation?.unplaceable, [1]);
  });
});

describe('unknown-outcome writes nothing observed', () => {
  // 30 timed-out puts to one key whose values nobody reads; a later put shows how many took effect
  // (its revision) and a read shows the key's version.
  function gapHistory(applied: number, version: number): History {
    const ops = [];
    for (let i = 0; i < 30; i++) ops.push(op(100 + i, i, null, put('x', `lost-${i}`)));
    ops.push(op(1, 1000, 1010, put('y', 'known'), rev(2 + applied)));
    ops.push(op(1, 1020, 1030, get('x'), kvs(version === 0 ? [] : [{ key: 'x', version }], 2 + applied)));
    return history(ops);
  }

  test('are interchangeable: which of them filled the revision gap does not multiply the search', () => {
    const report = checkHistory(gapHistory(12, 12), { timeoutMs: 10_000 });
    assert.equal(report.verdict, 'linearizable');
    assert.equal(report.linearizability.patched, undefined);
  });

  test('still cannot explain more writes than were issued', () => {
    assert.equal(checkHistory(gapHistory(12, 13), { timeoutMs: 10_000 }).verdict, 'violation');
    assert.equal(checkHistory(gapHistory(31, 31), { timeoutMs: 10_000 }).verdict, 'violation');
  });
});
