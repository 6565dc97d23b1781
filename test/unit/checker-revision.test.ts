/**
 * The revision-ordered path (src/checker/revision.ts) against the search (linearize.ts): on every generated
 * history with revisions both reach the same verdict, a corrupted one is never linearizable on either, and
 * the hand-written cases show where the revision path hands a window to the search.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkLinearizability } from '../../src/checker/check.ts';
import { LiveChecker } from '../../src/checker/live.ts';
import type { History, Operation } from '../../src/domain/index.ts';
import { buildHistory, corrupt, shapeArbitrary } from '../helpers/random-histories.ts';

const seed = process.env['FC_SEED'] === undefined ? 20_261_207 : Number(process.env['FC_SEED']);

const withRevisions = shapeArbitrary.map((shape) => ({ ...shape, withRevisions: true }));

function shared(history: History): History {
  return { ...history, meta: { kind: 'meta', mode: 'shared', prefix: '/k/' } };
}

describe('the revision path and the search agree', () => {
  test('on generated histories with revisions, corrupted or not, exclusive or shared', () => {
    const methods = { revision: 0, search: 0 };
    fc.assert(
      fc.property(withRevisions, fc.nat(), fc.boolean(), fc.boolean(), (shape, pick, corrupted, inShared) => {
        const { history: built, corruptible } = buildHistory(shape);
        let history = corrupted && corruptible.length > 0 ? (corrupt(built, corruptible[pick % corruptible.length]!, pick) ?? built) : built;
        if (inShared) history = shared(history);
        const byRevision = checkLinearizability(history, { timeoutMs: 20_000 });
        const bySearch = checkLinearizability(history, { timeoutMs: 20_000, searchOnly: true });
        methods[byRevision.method ?? 'search']++;
        assert.equal(bySearch.method, 'search');
        if (byRevision.verdict !== 'inconclusive' && bySearch.verdict !== 'inconclusive') {
          assert.equal(byRevision.verdict, bySearch.verdict, JSON.stringify({ revision: byRevision.violation ?? byRevision.searchWindow, search: bySearch.violation }));
        }
        if (history === built || (inShared && history.operations === built.operations)) assert.equal(byRevision.verdict, 'linearizable', JSON.stringify(byRevision.violation ?? byRevision.inconclusive));
      }),
      { numRuns: 400, seed },
    );
    // The draw reaches both: about half are decided by the revision order alone (corrupted ones and unobserved unknown writes go to the search).
    assert.ok(methods.revision > 150 && methods.search > 50, JSON.stringify(methods));
  });

  test('a corrupted history is never linearizable on either path', () => {
    fc.assert(
      fc.property(withRevisions, fc.nat(), fc.nat(), fc.boolean(), (shape, pick, how, inShared) => {
        const { history, corruptible } = buildHistory(shape);
        fc.pre(corruptible.length > 0);
        const bad = corrupt(history, corruptible[pick % corruptible.length]!, how);
        fc.pre(bad !== undefined);
        const subject = inShared ? shared(bad) : bad;
        if (!inShared) assert.notEqual(checkLinearizability(subject, { timeoutMs: 20_000 }).verdict, 'linearizable');
        // Shared mode checks less (foreign writes may explain a revision), so compare the paths there.
        else assert.equal(checkLinearizability(subject, { timeoutMs: 20_000 }).verdict === 'linearizable', checkLinearizability(subject, { timeoutMs: 20_000, searchOnly: true }).verdict === 'linearizable');
        if (!inShared) assert.notEqual(checkLinearizability(subject, { timeoutMs: 20_000, searchOnly: true }).verdict, 'linearizable');
      }),
      { numRuns: 300, seed },
    );
  });
});

const put = (client: number, call: number, ret: number | null, key: string, value: string, revision?: number): Operation => ({
  client,
  call,
  return: ret,
  request: { type: 'put', key, value },
  ...(revision === undefined ? {} : { response: { revision } }),
});
const get = (client: number, call: number, ret: number, key: string, value: string | undefined, revision: number, mod?: number): Operation => ({
  client,
  call,
  return: ret,
  request: { type: 'range', key },
  response: { revision, kvs: value === undefined ? [] : [{ key, value, ...(mod === undefined ? {} : { modRevision: mod }) }] },
});
const exclusive = (operations: Operation[]): History => ({ meta: { kind: 'meta', mode: 'exclusive', initialRevision: 1 }, operations, watches: [] });

describe('the revision path by hand', () => {
  test('a history the revisions order is linearizable without a search, with the order as its linearization', () => {
    const result = checkLinearizability(exclusive([put(1, 0, 10, 'a', '1', 2), get(2, 5, 20, 'a', '1', 2, 2), put(3, 15, 30, 'a', '2', 3), get(1, 25, 40, 'a', '2', 3, 3)]));
    assert.equal(result.verdict, 'linearizable');
    assert.equal(result.method, 'revision');
    assert.equal(result.searchWindow, undefined);
    assert.deepEqual(result.linearization, [0, 1, 2, 3]);
  });

  test('a read returning an overwritten value is a violation: the search decides over a window from the pinned state', () => {
    // Revisions 2 and 3 are pinned; the read at revision 4 shows the value of revision 3 after "c" replaced it.
    const result = checkLinearizability(
      exclusive([put(1, 0, 10, 'a', 'x', 2), put(1, 11, 20, 'a', 'y', 3), put(1, 21, 30, 'a', 'z', 4), get(2, 31, 40, 'a', 'y', 4, 3)]),
    );
    assert.equal(result.verdict, 'violation');
    assert.equal(result.method, 'search');
    assert.equal(result.searchWindow?.fromRevision, 3);
    assert.match(result.searchWindow?.reason ?? '', /operation 3 \(range\) at revision 4/);
    assert.deepEqual(result.violation?.unplaceable[0], 3);
    // The evidence keeps the whole prefix: the pinned operations, then the window's.
    assert.deepEqual(result.violation?.prefix.slice(0, 2), [0, 1]);
  });

  test('real time against revisions: a write called after a read returned cannot hold a revision the read saw', () => {
    const result = checkLinearizability(exclusive([put(1, 0, 10, 'a', 'x', 2), get(2, 11, 20, 'a', 'y', 3, 3), put(3, 21, 30, 'a', 'y', 3)]));
    assert.equal(result.verdict, 'violation');
    assert.equal(result.method, 'search');
  });

  test('an unknown write that filled a revision nobody claims: the search fills the gap from the pinned state', () => {
    // The write of "b" timed out, took revision 3 and nothing observed its value; "c" at 4 proves revision 3 happened.
    const result = checkLinearizability(exclusive([put(1, 0, 10, 'a', 'x', 2), put(2, 5, null, 'b', 'lost'), put(3, 20, 30, 'c', 'y', 4), get(1, 31, 40, 'a', 'x', 4, 2)]));
    assert.equal(result.verdict, 'linearizable');
    assert.equal(result.method, 'search');
    assert.equal(result.searchWindow?.fromRevision, 2);
    assert.match(result.searchWindow?.reason ?? '', /revision 3/);
  });

  test('shared mode: foreign revisions between the own writes are not gaps; a violation there searches the whole history', () => {
    const shared = (operations: Operation[]): History => ({ meta: { kind: 'meta', mode: 'shared', prefix: 'a' }, operations, watches: [] });
    const ok = checkLinearizability(shared([put(1, 0, 10, 'a', 'x', 5), get(2, 11, 20, 'a', 'x', 9, 5), put(1, 21, 30, 'a', 'y', 12), get(2, 31, 40, 'a', 'y', 12, 12)]));
    assert.equal(ok.verdict, 'linearizable');
    assert.equal(ok.method, 'revision');
    const bad = checkLinearizability(shared([put(1, 0, 10, 'a', 'x', 5), put(1, 21, 30, 'a', 'y', 12), get(2, 31, 40, 'a', 'x', 13, 5)]));
    assert.equal(bad.verdict, 'violation');
    assert.equal(bad.searchWindow?.fromRevision, null);
  });
});

describe('offline gap filling from the watch', () => {
  test('a revision nobody claimed goes to the one unknown operation that makes exactly its watch events', () => {
    const del: Operation = { client: 2, call: 12, return: null, request: { type: 'delete', key: 'a' } };
    // Also unknown, also deletes "a": patching by key cannot tell the two apart; its put of "b" is not in the events.
    const txn: Operation = { client: 3, call: 13, return: null, request: { type: 'txn', compare: [], success: [{ type: 'delete', key: 'a' }, { type: 'put', key: 'b', value: 'y' }], failure: [] } };
    const history: History = {
      meta: { kind: 'meta', mode: 'exclusive', initialRevision: 1 },
      operations: [put(1, 0, 10, 'a', 'x', 2), del, txn, put(4, 30, 40, 'c', 'z', 4), get(1, 41, 50, 'a', undefined, 4)],
      watches: [
        {
          id: 1,
          request: { key: 'a' },
          responses: [
            { time: 11, revision: 2, events: [{ type: 'put', key: 'a', value: 'x', modRevision: 2, createRevision: 2, version: 1 }] },
            { time: 20, revision: 3, events: [{ type: 'delete', key: 'a', modRevision: 3 }] },
          ],
        },
      ],
    };
    const result = checkLinearizability(history);
    assert.equal(result.verdict, 'linearizable');
    assert.equal(result.method, 'revision', JSON.stringify(result.searchWindow));
    assert.ok(result.linearization?.includes(1));
    assert.ok(!result.linearization?.includes(2));
  });
});

describe('the live checker on the revision path', () => {
  const del = (client: number, call: number, ret: number | null, key: string, revision?: number): Operation => ({
    client,
    call,
    return: ret,
    request: { type: 'delete', key },
    ...(revision === undefined ? {} : { response: { revision, deleted: 1 } }),
  });

  test('a read that arrives after later writes went in is checked against the state at its revision', () => {
    const live = new LiveChecker();
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.push(put(1, 11, 20, 'a', 'y', 3)); // applied at once: revision 2 is claimed
    live.push(get(2, 5, 21, 'a', 'x', 2, 2)); // concurrent with both writes, saw revision 2
    live.advance(22);
    assert.equal(live.stats().processed, 3);
    assert.equal(live.verdict, 'linearizable');
    live.push(get(3, 25, 35, 'a', 'x', 3, 2)); // revision 3 holds "y": a violation, decided by the search from revision 2
    live.advance(36);
    assert.equal(live.verdict, 'violation');
    assert.equal(live.stats().method, 'search');
    assert.deepEqual(live.violation?.unplaceable[0], 3);
  });

  test('an unknown-outcome delete is placed at the revision whose delete event the watch delivered', () => {
    const live = new LiveChecker();
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.push(del(2, 12, null, 'a')); // timed out; took revision 3
    live.push(put(3, 30, 40, 'b', 'y', 4));
    live.advance(45);
    assert.equal(live.stats().waitingForWatch, 2); // the put at 4 waits for revision 3, and the delete for its fate
    live.pushWatchResponse({ time: 20, revision: 3, events: [{ type: 'delete', key: 'a', modRevision: 3 }] }, { id: 1, request: { key: '', end: '\u0000' } });
    assert.equal(live.stats().waitingForWatch, 0);
    assert.equal(live.stats().resolved, 1);
    live.push(get(1, 50, 60, 'a', undefined, 4));
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().method, 'revision');
  });

  // A txn that reads and deletes: what its reads returned nobody saw, so they cannot be checked, but its
  // delete event still names its revision (a 40-failover two-node run stopped the revision path here).
  const readAndDelete = (client: number, call: number): Operation => ({
    client,
    call,
    return: null,
    request: { type: 'txn', compare: [], success: [{ type: 'range', key: 'b' }, { type: 'delete', key: 'a' }], failure: [] },
  });

  test('an unknown-outcome txn that reads and deletes takes the revision of its delete event', () => {
    const live = new LiveChecker();
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.push(readAndDelete(2, 12)); // timed out; took revision 3
    live.push(put(3, 30, 40, 'b', 'y', 4));
    live.pushWatchResponse({ time: 20, revision: 3, events: [{ type: 'delete', key: 'a', modRevision: 3 }] }, { id: 1, request: { key: '', end: '\u0000' } });
    live.advance(45);
    assert.equal(live.stats().resolved, 1);
    live.push(get(1, 50, 60, 'a', undefined, 4));
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().method, 'revision', live.stats().searchReason);
  });

  test('... and a read after its delete event that still sees the key is a violation', () => {
    const live = new LiveChecker();
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.push(readAndDelete(2, 12));
    live.push(put(3, 30, 40, 'b', 'y', 4));
    live.pushWatchResponse({ time: 20, revision: 3, events: [{ type: 'delete', key: 'a', modRevision: 3 }] }, { id: 1, request: { key: '', end: '\u0000' } });
    live.advance(45);
    live.push(get(1, 50, 60, 'a', 'x', 4, 2));
    assert.equal(live.finish(), 'violation');
  });

  test('a revoke that arrives before the write claiming its revision is not taken for that write', () => {
    // The txn at revision 4 deletes the key that held the lease; the revoke, at 4 too, then deleted nothing.
    const live = new LiveChecker();
    live.push({ client: 1, call: 0, return: 5, request: { type: 'leaseGrant', id: '7', ttl: 60 }, response: { revision: 1 } });
    live.push({ client: 1, call: 6, return: 10, request: { type: 'put', key: 'a', value: 'x', lease: '7' }, response: { revision: 2 } });
    live.push(put(2, 11, 15, 'b', 'y', 3));
    live.advance(16);
    live.push({ client: 1, call: 20, return: 40, request: { type: 'leaseRevoke', id: '7' }, response: { revision: 4 } });
    const txn: Operation = {
      client: 3,
      call: 18,
      return: 45,
      request: { type: 'txn', compare: [], success: [{ type: 'delete', key: 'a' }, { type: 'put', key: 'c', value: 'z' }], failure: [] },
      response: { revision: 4, succeeded: true, results: [{ revision: 4, deleted: 1 }, { revision: 4 }] },
    };
    live.push(txn);
    live.advance(50);
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().method, 'revision');
  });

  test('the watch moves the state on while the write that made a revision is still in flight; the write is verified when it arrives', () => {
    const live = new LiveChecker({ watchEventsCarryLeases: true });
    const watch = { id: 1, request: { key: '', end: '\u0000' } };
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.advance(12); // the put of "b" was called at 12 and is in flight
    live.pushWatchResponse({ time: 20, revision: 3, events: [{ type: 'put', key: 'b', value: 'y', modRevision: 3, createRevision: 3, version: 1 }] }, watch);
    live.push(get(2, 21, 25, 'b', 'y', 3, 3));
    live.push(put(3, 26, 30, 'a', 'z', 4));
    assert.equal(live.stats().processed, 3); // checked before the write of revision 3 is known
    assert.equal(live.stats().pendingOperations, 0);
    live.push(put(4, 12, 40, 'b', 'y', 3)); // now it arrives: it makes the events the watch showed
    live.advance(41);
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().method, 'revision');
    assert.equal(live.stats().processed, 4);
  });

  test('a revoke in flight whose deletes the watch showed (in key order) is verified against them', () => {
    const live = new LiveChecker({ watchEventsCarryLeases: true });
    const watch = { id: 1, request: { key: '', end: '\u0000' } };
    const keys = ['/k/q', '/k/b', '/k/x', '/k/a', '/k/m', '/k/c'];
    live.push({ client: 1, call: 0, return: 5, request: { type: 'leaseGrant', id: '9', ttl: 60 }, response: { revision: 1 } });
    keys.forEach((key, i) => live.push({ client: 1, call: 10 + i * 10, return: 15 + i * 10, request: { type: 'put', key, value: `v${i}`, lease: '9' }, response: { revision: 2 + i } }));
    live.advance(80); // the revoke was called at 80 and is in flight
    const deletes = [...keys].sort().map((key) => ({ type: 'delete' as const, key, modRevision: 8 }));
    live.pushWatchResponse({ time: 90, revision: 8, events: deletes }, watch);
    live.push(get(2, 91, 95, '/k/a', undefined, 8));
    live.push({ client: 1, call: 80, return: 100, request: { type: 'leaseRevoke', id: '9' }, response: { revision: 8 } });
    live.advance(101);
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().method, 'revision', live.stats().searchReason);
  });

  test('a watch that lies about a revision makes no violation: the search decides from before it', () => {
    const live = new LiveChecker({ watchEventsCarryLeases: true });
    const watch = { id: 1, request: { key: '', end: '\u0000' } };
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.advance(12);
    // The watch says revision 3 put "b" = "w"; the write that made revision 3 put "y".
    live.pushWatchResponse({ time: 20, revision: 3, events: [{ type: 'put', key: 'b', value: 'w', modRevision: 3, createRevision: 3, version: 1 }] }, watch);
    live.push(put(3, 26, 30, 'a', 'z', 4));
    live.push(put(4, 12, 40, 'b', 'y', 3));
    live.push(get(2, 41, 45, 'b', 'y', 4, 3));
    live.advance(46);
    assert.equal(live.finish(), 'linearizable');
    assert.equal(live.stats().method, 'search');
    assert.match(live.stats().searchReason ?? '', /from revision 2: operation 2 \(put\) at revision 3 does not make the events the watch showed/);
  });

  test('real time against revisions, live: a read that saw revision 3 returned before the write of revision 3 was called', () => {
    const live = new LiveChecker();
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.push(get(2, 11, 20, 'a', 'y', 3, 3));
    live.advance(21);
    live.push(put(3, 21, 30, 'a', 'y', 3));
    assert.equal(live.finish(), 'violation');
    assert.match(live.stats().searchReason ?? '', /was called after operation 1 had returned at revision 3/);
  });
});

describe('the live checker judges stale reads on the revision path', () => {
  const staleGet = (client: number, call: number, ret: number, key: string, value: string | undefined, revision: number, at?: number): Operation => ({
    client,
    call,
    return: ret,
    request: at === undefined ? { type: 'range', key, serializable: true } : { type: 'range', key, revision: at },
    response: { revision, kvs: value === undefined ? [] : [{ key, value, modRevision: revision }] },
  });

  test('a serializable read at an older revision that shows that revision\'s state passes', () => {
    const live = new LiveChecker();
    live.push(put(1, 0, 10, 'a', 'x', 2));
    live.push(put(1, 11, 20, 'a', 'y', 3));
    live.push(staleGet(2, 15, 21, 'a', 'x', 2)); // a lagging member answered at revision 2
    live.advance(22);
    assert.equal(live.verdict, 'linearizable');
    assert.equal(live.finish(), 'linearizable');
  });

  test('one whose content does not match the state at its header revision is a violation, naming the read, as offline', () => {
    const ops = [put(1, 0, 10, 'a', 'x', 2), put(1, 11, 20, 'a', 'y', 3), staleGet(2, 15, 21, 'a', 'y', 2)];
    const live = new LiveChecker();
    for (const op of ops) live.push(op);
    live.advance(22);
    assert.equal(live.verdict, 'violation');
    assert.deepEqual(live.violation?.unplaceable, [2]);
    assert.match(live.violation?.reason ?? '', /^stale read of a does not match the state at revision 2 \(operation 2\)/);
    assert.deepEqual(live.violation?.states[0]?.kvs.map((kv) => kv.value), ['x']);
    assert.equal(checkLinearizability(exclusive(ops)).verdict, 'violation');
  });

  test('a read at a past revision waits until every write up to it is placed, then is judged', () => {
    const live = new LiveChecker();
    live.push(put(1, 0, 10, 'a', 'x', 2));
    // Revision 3's write is still in flight: a read naming it cannot be judged yet.
    live.push(staleGet(2, 12, 14, 'a', 'x', 4, 3));
    live.advance(11);
    assert.equal(live.verdict, 'linearizable');
    live.push(put(3, 11, 15, 'a', 'y', 3)); // revision 3 holds "y": the read showed "x"
    live.advance(16);
    assert.equal(live.verdict, 'violation');
    assert.match(live.violation?.reason ?? '', /does not match the state at revision 3/);
  });

  test('a read naming a revision before the stream started is not judged', () => {
    const live = new LiveChecker({ initialRevision: 10 });
    live.push(put(1, 0, 10, 'a', 'x', 11));
    live.push(staleGet(2, 12, 14, 'a', 'left over', 11, 9));
    live.advance(15);
    assert.equal(live.finish(), 'linearizable');
  });
});
