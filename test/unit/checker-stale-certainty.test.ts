// A stale read is checked after the search, against the states of the one linearization it found. Where an
// unknown-outcome write stays unresolved (no watch event, no read showed its effect), that linearization
// made a choice for it (applied or not) that the history does not dictate, and a stale read may have seen
// the other choice. Seen in a run aborted by its cluster's deletion: an unknown-outcome delete was the
// last write, the watch had ended, and a serializable read at the delete's revision was reported as a
// violation because the linearization left the delete out. Such a mismatch is no evidence: inconclusive.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHistory } from '../../src/checker/check.ts';
import { HistoryParser, parseHistory } from '../../src/checker/parse.ts';
import { serializeHistory } from '../../src/checker/serialize.ts';
import { checkHistoryStream, type HistorySource } from '../../src/checker/stream.ts';
import type { CheckReport } from '../../src/checker/result.ts';
import type { EtcdRequest, History, Operation } from '../../src/domain/index.ts';
import { del, history, kvs, op, put, rev } from '../helpers/histories.ts';

const meta = { mode: 'exclusive' as const, prefix: '/p/', initialRevision: 1 };
const serializableList: EtcdRequest = { type: 'range', key: '/p/', end: '/p0', serializable: true };
const atRevision = (revision: number): EtcdRequest => ({ type: 'range', key: '/p/', end: '/p0', revision });

/** Both checks over one history: the whole one and the streaming one (over its JSON Lines text). */
function bothChecks(h: History): CheckReport[] {
  const text = serializeHistory(h);
  const source: HistorySource = {
    name: 'text',
    pass(onOperation, options = {}) {
      const parser = new HistoryParser('text', { retainOperations: false, ...(options.onElidedKvs ? { onElidedKvs: options.onElidedKvs } : {}), ...(options.keepKvValues ? { keepKvValues: options.keepKvValues } : {}), lazyKvs: options.lazyKvs === true });
      let index = 0;
      for (const line of text.split('\n')) {
        const parsed = parser.line(line);
        if (parsed !== undefined) onOperation(parsed, index++);
      }
      return { history: parser.finish(), inCallOrder: parser.inCallOrder };
    },
    load: () => parseHistory(text, 'text'),
  };
  return [checkHistory(h), checkHistoryStream(source)];
}

function verdicts(h: History): string[] {
  return bothChecks(h).map((r) => r.linearizability.verdict);
}

describe('stale reads against states that unresolved unknown-outcome writes leave open', () => {
  const putX: Operation = op(1, 0, 10, put('/p/x', '1'), rev(2));
  const unknownDelete: Operation = op(2, 20, null, del('/p/x'));

  test('a serializable read at the revision only an unresolved delete can have made is not a violation', () => {
    for (const report of bothChecks(history([putX, unknownDelete, op(3, 40, 50, serializableList, kvs([], 3))], meta))) {
      assert.equal(report.linearizability.verdict, 'inconclusive');
      assert.equal(report.linearizability.staleReadViolations, undefined);
      assert.match(report.linearizability.inconclusive ?? '', /stale read of \/p\/ does not match the state at revision 3 \(operation 2\), but the state it read depends on unknown-outcome writes/);
    }
  });

  test('the same read at a revision the acknowledged writes pin is still a violation', () => {
    // Revision 2 is the acknowledged put's: the state there is the only one the history allows.
    assert.deepEqual(verdicts(history([putX, unknownDelete, op(3, 40, 50, atRevision(2), kvs([], 2))], meta)), ['violation', 'violation']);
    // And it matches it: nothing to report.
    const seen = kvs([{ key: '/p/x', value: '1', modRevision: 2, createRevision: 2, version: 1 }], 2);
    assert.deepEqual(verdicts(history([putX, unknownDelete, op(3, 40, 50, atRevision(2), seen)], meta)), ['linearizable', 'linearizable']);
  });

  test('without unknown-outcome writes, a read of a revision nobody made is a violation', () => {
    assert.deepEqual(verdicts(history([putX, op(3, 40, 50, serializableList, kvs([], 3))], meta)), ['violation', 'violation']);
  });

  test('an unknown write the search had to apply: the read that matches passes, one that does not is not linearizable', () => {
    // The put at 4 leaves revision 3 to the delete: applied, so the read at 3 matches.
    const later = op(1, 60, 70, put('/p/y', '1'), rev(4));
    assert.deepEqual(verdicts(history([putX, unknownDelete, op(3, 40, 50, serializableList, kvs([], 3)), later], meta)), ['linearizable', 'linearizable']);
    // A read at 3 that still shows the key matches no state. The search applied the delete because the gap
    // at 3 needed a writer, but the check does not know that no other choice existed, so it does not claim
    // a violation: inconclusive, never linearizable.
    const shows = kvs([{ key: '/p/x', value: '1', modRevision: 2, createRevision: 2, version: 1 }], 3);
    assert.deepEqual(verdicts(history([putX, unknownDelete, op(3, 40, 50, serializableList, shows), later], meta)), ['inconclusive', 'inconclusive']);
  });
});

// Seen in CI (a run cut short by its cluster's deletion): the run cleared its prefix at revision 953 and a
// client asked for revision 952, two below the first revision it had seen. The history holds no state
// before its start, so the read proves nothing either way; the whole check used to call it a violation.
describe('stale reads at revisions before the history starts', () => {
  const started = { ...meta, initialRevision: 10 };
  const putX: Operation = op(1, 0, 10, put('/p/x', '1'), rev(11));

  test('a read before the start revision is not judged (whatever it shows), in both checks', () => {
    const shows = kvs([{ key: '/p/old', value: 'left by an earlier run', modRevision: 5, createRevision: 5, version: 1 }], 12);
    assert.deepEqual(verdicts(history([putX, op(2, 20, 30, atRevision(9), kvs([], 12)), op(3, 20, 30, atRevision(8), shows)], started)), ['linearizable', 'linearizable']);
  });

  test('a read at the start revision itself is judged: the run cleared its prefix there', () => {
    const shows = kvs([{ key: '/p/old', value: 'left by an earlier run', modRevision: 5, createRevision: 5, version: 1 }], 12);
    assert.deepEqual(verdicts(history([putX, op(2, 20, 30, atRevision(10), shows)], started)), ['violation', 'violation']);
    assert.deepEqual(verdicts(history([putX, op(2, 20, 30, atRevision(10), kvs([], 12))], started)), ['linearizable', 'linearizable']);
  });
});
