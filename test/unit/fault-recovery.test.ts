// Time from a fault to writable again (src/run/recovery.ts): the pure definition, its properties, the
// live tracker giving the same figures, the summary, and how the run report and metrics show them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { EtcdRequest, EtcdResponse, Operation } from '../../src/domain/index.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';
import { faultRecoveries, isSuccessfulWrite, RecoveryTracker, summarizeRecoveries, type FaultInjection, type FaultRecovery } from '../../src/run/recovery.ts';
import { describeRecovery, renderRecoveryPanel } from '../../src/run/report.ts';

const ms = 1e6;

function op(call: number, ret: number | null, kind: 'put' | 'range' | 'txnWrite' | 'txnRead' = 'put', ok = true): Operation {
  const request: EtcdRequest =
    kind === 'put'
      ? { type: 'put', key: 'k', value: 'v' }
      : kind === 'range'
        ? { type: 'range', key: 'k' }
        : { type: 'txn', compare: [], success: [kind === 'txnWrite' ? { type: 'put', key: 'k', value: 'v' } : { type: 'range', key: 'k' }], failure: [] };
  const operation: Operation = { client: 0, call, return: ret, request };
  if (ret !== null) {
    const response: EtcdResponse = ok ? { revision: 2 } : { error: 'etcdserver: request timed out' };
    operation.response = response;
  }
  return operation;
}

const fault = (id: number, injectedAt: number): FaultInjection => ({ id, fault: 'crash', targets: ['m1'], injectedAt });

const operationArbitrary: fc.Arbitrary<Operation> = fc
  .record({
    call: fc.integer({ min: 0, max: 10_000 }),
    duration: fc.option(fc.integer({ min: 0, max: 3000 }), { nil: null }),
    kind: fc.constantFrom('put' as const, 'range' as const, 'txnWrite' as const, 'txnRead' as const),
    ok: fc.boolean(),
  })
  .map(({ call, duration, kind, ok }) => op(call * ms, duration === null ? null : (call + duration) * ms, kind, ok));

const historyArbitrary = fc.record({
  operations: fc.array(operationArbitrary, { maxLength: 60 }),
  faults: fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 8 }).map((times) => times.map((t, i) => fault(i + 1, t * ms))),
});

/** The definition, spelled out: the earliest return among successful writes invoked at or after the injection. */
function reference(operations: readonly Operation[], injectedAt: number): number | undefined {
  let first: number | undefined;
  for (const o of operations) {
    if (!isSuccessfulWrite(o) || o.call < injectedAt) continue;
    if (first === undefined || o.return < first) first = o.return;
  }
  return first === undefined ? undefined : (first - injectedAt) / ms;
}

describe('faultRecoveries', () => {
  test('the first successful write invoked at or after the fault, by return time', () => {
    const operations = [
      op(0, 9 * ms), // invoked before the fault: does not count although it returns after it
      op(2 * ms, 3 * ms, 'range'), // a read
      op(2 * ms, 4 * ms, 'put', false), // a failed write
      op(2 * ms, null), // a write with an unknown outcome
      op(2 * ms, 5 * ms, 'txnRead'), // a read-only txn
      op(3 * ms, 8 * ms), // the second to return
      op(4 * ms, 7 * ms, 'txnWrite'), // the first to return: invoked later, returned earlier
    ];
    const [r] = faultRecoveries(operations, [fault(1, 1 * ms)], 0);
    assert.deepEqual(r, { id: 1, fault: 'crash', targets: ['m1'], injectedAt: 1 * ms, atMs: 1, writableAfterMs: 6 });
    // A write invoked at the very injection time counts.
    assert.equal(faultRecoveries([op(5 * ms, 6 * ms)], [fault(1, 5 * ms)])[0]?.writableAfterMs, 1);
    // None after it: unrecovered (no writableAfterMs at all, so JSON omits it).
    const [none] = faultRecoveries([op(0, 20 * ms)], [fault(1, 1 * ms)], 0);
    assert.equal(none?.writableAfterMs, undefined);
    assert.equal('writableAfterMs' in none!, false);
    // atMs counts from the origin given.
    assert.equal(faultRecoveries([], [fault(1, 3500 * ms)], 1000 * ms)[0]?.atMs, 2500);
  });

  test('property: it agrees with the definition, fault by fault, in the order given', () => {
    fc.assert(
      fc.property(historyArbitrary, ({ operations, faults }) => {
        const got = faultRecoveries(operations, faults);
        assert.deepEqual(got.map((r) => r.id), faults.map((f) => f.id));
        for (const [i, f] of faults.entries()) assert.equal(got[i]!.writableAfterMs, reference(operations, f.injectedAt));
      }),
      { numRuns: 300 },
    );
  });

  test('property (monotonic): adding a success that returns later never lowers the figure; adding any operation never raises it', () => {
    fc.assert(
      fc.property(historyArbitrary, operationArbitrary, fc.integer({ min: 0, max: 5000 }), ({ operations, faults }, extra, laterBy) => {
        const before = faultRecoveries(operations, faults);
        const withAny = faultRecoveries([...operations, extra], faults);
        for (const [i, f] of faults.entries()) {
          const was = before[i]!.writableAfterMs;
          const now = withAny[i]!.writableAfterMs;
          if (was !== undefined) assert.ok(now !== undefined && now <= was, `fault at ${f.injectedAt}: ${was} -> ${now}`);
          if (was === undefined) continue;
          // A successful write invoked after the fault, returning no earlier than the current first one.
          const firstReturn = f.injectedAt + was * ms;
          const later = op(f.injectedAt, firstReturn + laterBy * ms);
          assert.equal(faultRecoveries([...operations, later], [f])[0]!.writableAfterMs, was);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('property: a fault with no successful write invoked after it is unrecovered, whatever else happened', () => {
    fc.assert(
      fc.property(historyArbitrary, fc.integer({ min: 0, max: 10_000 }), ({ operations }, at) => {
        const injectedAt = at * ms;
        const without = operations.filter((o) => !(isSuccessfulWrite(o) && o.call >= injectedAt));
        assert.equal(faultRecoveries(without, [fault(1, injectedAt)])[0]!.writableAfterMs, undefined);
      }),
      { numRuns: 300 },
    );
  });
});

describe('RecoveryTracker', () => {
  test('property: fed as the engine feeds it (faults as they are put in place, operations in return order), it gives faultRecoveries', () => {
    fc.assert(
      fc.property(historyArbitrary, ({ operations, faults }) => {
        // Operations that returned, in return order; unknown outcomes come whenever (they never count).
        const timeOf = (o: Operation): number => o.return ?? o.call;
        const events = [
          ...faults.map((f) => ({ at: f.injectedAt, rank: 0, f })),
          ...operations.map((o) => ({ at: timeOf(o), rank: 1, o })),
        ].sort((a, b) => a.at - b.at || a.rank - b.rank);
        const tracker = new RecoveryTracker(0);
        const live = new Map<number, FaultRecovery>();
        for (const e of events) {
          if ('f' in e) {
            tracker.fault(e.f);
            // Confirmed at once for half of them, at the end for the others.
            if (e.f.id % 2 === 0) for (const r of [tracker.confirm(e.f.id)].filter((x) => x !== undefined)) live.set(r.id, r);
          } else for (const r of tracker.operation(e.o)) live.set(r.id, r);
        }
        for (const f of faults) {
          if (f.id % 2 === 1) {
            const r = tracker.confirm(f.id);
            if (r) live.set(r.id, r);
          }
        }
        const expected = faultRecoveries(operations, faults);
        const byId = new Map(expected.map((r) => [r.id, r]));
        assert.deepEqual(
          tracker.results(),
          [...expected].sort((a, b) => a.injectedAt - b.injectedAt || a.id - b.id),
        );
        // Every recovered fault was reported live exactly with its final figure; unrecovered ones never.
        assert.deepEqual(
          [...live.values()].sort((a, b) => a.id - b.id),
          expected.filter((r) => r.writableAfterMs !== undefined).sort((a, b) => a.id - b.id),
        );
        for (const [id, r] of live) assert.deepEqual(r, byId.get(id));
      }),
      { numRuns: 300 },
    );
  });

  test('a fault counts once confirmed; an abandoned one (its injection failed) is forgotten; a confirmed one stays', () => {
    const tracker = new RecoveryTracker(0);
    tracker.fault(fault(1, 10 * ms));
    tracker.fault(fault(2, 10 * ms));
    tracker.fault(fault(3, 10 * ms));
    assert.deepEqual(tracker.operation(op(11 * ms, 12 * ms)), [], 'not confirmed yet: nothing reported');
    assert.equal(tracker.confirm(1)?.writableAfterMs, 2, 'reported on confirmation, with the write that came first');
    assert.equal(tracker.confirm(1), undefined, 'once');
    tracker.abandon(2);
    assert.equal(tracker.confirm(2), undefined);
    tracker.abandon(1); // a heal that failed later: the fault was in place, it stays
    assert.deepEqual(tracker.results().map((r) => r.id), [1]);
    tracker.confirm(3);
    assert.deepEqual(tracker.results().map((r) => [r.id, r.writableAfterMs]), [[1, 2], [3, 2]]);
  });
});

describe('summarizeRecoveries', () => {
  const r = (id: number, writableAfterMs?: number): FaultRecovery => ({ ...fault(id, 0), atMs: 0, ...(writableAfterMs === undefined ? {} : { writableAfterMs }) });

  test('count, recovered, median (the middle two averaged) and max of the recovered ones', () => {
    assert.deepEqual(summarizeRecoveries([]), { faults: 0, recovered: 0 });
    assert.deepEqual(summarizeRecoveries([r(1)]), { faults: 1, recovered: 0 });
    assert.deepEqual(summarizeRecoveries([r(1, 300), r(2), r(3, 100), r(4, 200)]), { faults: 4, recovered: 3, medianMs: 200, maxMs: 300 });
    assert.deepEqual(summarizeRecoveries([r(1, 400), r(2, 100), r(3, 200), r(4, 3000)]), { faults: 4, recovered: 4, medianMs: 300, maxMs: 3000 });
  });

  test('property: the median lies between the smallest and the largest figure, max is the largest', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.double({ min: 0, max: 1e6, noNaN: true }), { nil: undefined })), (figures) => {
        const summary = summarizeRecoveries(figures.map((f, i) => r(i, f)));
        const known = figures.filter((f) => f !== undefined);
        assert.equal(summary.faults, figures.length);
        assert.equal(summary.recovered, known.length);
        if (known.length === 0) {
          assert.equal(summary.medianMs, undefined);
          return;
        }
        assert.equal(summary.maxMs, Math.max(...known));
        assert.ok(summary.medianMs! >= Math.min(...known) && summary.medianMs! <= summary.maxMs);
      }),
    );
  });
});

describe('fault to writable in the report and the metrics', () => {
  const recoveries: FaultRecovery[] = [
    { id: 1, fault: 'crash', targets: ['m1'], injectedAt: 2e9, atMs: 1500, writableAfterMs: 3104.2 },
    { id: 2, fault: 'kill', targets: ['m<2>'], injectedAt: 5e9, atMs: 4500 },
  ];

  test('one line for the CLI, a panel for the HTML report (escaped)', () => {
    const summary = summarizeRecoveries(recoveries);
    assert.equal(describeRecovery(summary), '2 faults, 1 writable again: median 3104 ms, max 3104 ms; 1 not before the run ended');
    assert.equal(describeRecovery({ faults: 0, recovered: 0 }), 'no verified fault to measure');
    const html = renderRecoveryPanel({ summary, faults: recoveries });
    assert.match(html, /<section class="panel" id="fault-recovery">/);
    assert.match(html, /<td>1\.5 s<\/td><td>3104 ms<\/td>/);
    assert.match(html, /m&lt;2&gt;/);
    assert.match(html, /not before the run ended/);
  });

  test('etcd_robustness_fault_to_writable_seconds: a histogram by fault, with the run labels', async () => {
    const registry = new Registry();
    const metrics = new RunMetrics(registry, { run: 'r1', cluster: 'c1' });
    metrics.faultWritable('crash', 3.1);
    metrics.faultWritable('crash', 0.2);
    const text = await registry.metrics();
    assert.match(text, /# TYPE etcd_robustness_fault_to_writable_seconds histogram/);
    assert.match(text, /etcd_robustness_fault_to_writable_seconds_count\{run="r1",cluster="c1",fault="crash"\} 2/);
    assert.match(text, /etcd_robustness_fault_to_writable_seconds_bucket\{le="5",run="r1",cluster="c1",fault="crash"\} 2/);
    assert.match(text, /etcd_robustness_fault_to_writable_seconds_bucket\{le="3",run="r1",cluster="c1",fault="crash"\} 1/);
  });
});
