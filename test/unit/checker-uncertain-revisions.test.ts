// A revision the linearization filled with an unknown-outcome write is the search's guess, not an
// observation: when a watch delivered another unknown write there instead (both were possible), the watch
// is not blamed. Found by the fault-catalog rollingRestart test in CI: "put of key2-1 at revision 4610 was
// never delivered although the watch delivered ... at 4536 and ... at 4611", where two unknown deletes of
// one key and an unobserved unknown put competed for revision 4610.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHistory } from '../../src/checker/check.ts';
import type { History, HistoryMeta, Operation, WatchEvent } from '../../src/domain/index.ts';
import { del, history, op, put, rev } from '../helpers/histories.ts';

const exclusive: Omit<HistoryMeta, 'kind'> = { mode: 'exclusive', prefix: '/p/', initialRevision: 4 };
const putEvent = (key: string, value: string, modRevision: number): WatchEvent => ({ type: 'put', key, value, modRevision });
const delEvent = (key: string, modRevision: number): WatchEvent => ({ type: 'delete', key, modRevision });

function withWatch(operations: Operation[], events: [number, WatchEvent[]][]): History {
  const h = history(operations, exclusive);
  // The stream then breaks (a member restarted): no watch covers the whole run, so patch.ts cannot prove
  // the unknown put never happened.
  const responses = [...events.map(([time, evs]) => ({ time, events: evs })), { time: 200, events: [], canceled: true, error: 'member stopped' }];
  h.watches = [{ id: 0, request: { key: '/p/', end: '/p0', startRevision: 5 }, responses }];
  return h;
}

describe('unknown-outcome writes competing for one revision', () => {
  // /p/a is put at 5; two clients' deletes of /p/a and a third client's put of /p/b time out; the watch
  // delivers the delete of /p/a at 6 and the next put at 7. Either delete may have made it, so neither is
  // resolved; the search may equally place the put of /p/b at 6.
  const competing = (): History =>
    withWatch(
      [
        op(1, 0, 10, put('/p/a', 'v1'), rev(5)),
        op(2, 20, null, del('/p/a')),
        op(3, 21, null, del('/p/a')),
        op(4, 12, null, put('/p/b', 'x')),
        op(1, 100, 110, put('/p/c', 'w'), rev(7)),
      ],
      [
        [11, [putEvent('/p/a', 'v1', 5)]],
        [50, [delEvent('/p/a', 6)]],
        [111, [putEvent('/p/c', 'w', 7)]],
      ],
    );

  test('the watch is not blamed for the write the search placed at the revision', () => {
    const report = checkHistory(competing());
    assert.deepEqual(report.watch.violations.map((v) => v.message), []);
    assert.equal(report.verdict, 'linearizable');
  });

  test('a known write missing from the watch is still reported', () => {
    const h = competing();
    // The put of /p/b was acknowledged at 6: the watch owed it, and delivered a delete there instead.
    h.operations[3] = op(4, 22, 30, put('/p/b', 'x'), rev(6));
    const report = checkHistory(h);
    assert.equal(report.verdict, 'violation');
    assert.ok(
      report.watch.violations.some((v) => v.message.includes('put of "/p/b"') && v.message.includes('never delivered')),
      JSON.stringify(report.watch.violations.map((v) => v.message)),
    );
  });
});
