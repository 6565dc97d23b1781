import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { nextCronTime, scheduleDecision } from '../../src/controller/robustnessrun/schedule.ts';
import type { RobustnessRunStatus } from '../../src/domain/run-resource.ts';
import type { ScheduleSpec } from '../../src/domain/run-spec.ts';

const at = (iso: string): Date => new Date(iso);
const created = at('2025-03-01T10:02:30Z');

function schedule(overrides: Partial<ScheduleSpec> = {}): ScheduleSpec {
  return { kind: 'once', historyLimit: 10, suspend: false, ...overrides };
}

const cron5 = schedule({ kind: 'cron', cron: '*/5 * * * *' });

describe('nextCronTime', () => {
  test('is the next fire time strictly after the given time, in UTC', () => {
    assert.deepEqual(nextCronTime('*/5 * * * *', at('2025-03-01T10:02:30Z')), at('2025-03-01T10:05:00Z'));
    assert.deepEqual(nextCronTime('*/5 * * * *', at('2025-03-01T10:05:00Z')), at('2025-03-01T10:10:00Z'));
    assert.deepEqual(nextCronTime('30 2 * * *', at('2025-03-01T10:00:00Z')), at('2025-03-02T02:30:00Z'));
  });

  test('undefined for an expression that never fires again', () => {
    assert.equal(nextCronTime('0 0 30 2 *', at('2025-03-01T10:00:00Z')), undefined);
  });
});

describe('scheduleDecision: once', () => {
  test('due only before the first run', () => {
    assert.deepEqual(scheduleDecision(schedule(), undefined, created, created), { due: true });
    assert.deepEqual(scheduleDecision(schedule(), {}, created, created), { due: true });
    assert.deepEqual(scheduleDecision(schedule(), { runNumber: 0 }, created, created), { due: true });
    assert.deepEqual(scheduleDecision(schedule(), { runNumber: 1, phase: 'Passed' }, created, at('2030-01-01T00:00:00Z')), { due: false });
  });
});

describe('scheduleDecision: continuous', () => {
  test('always due', () => {
    const continuous = schedule({ kind: 'continuous', windowMs: 60_000 });
    assert.deepEqual(scheduleDecision(continuous, undefined, created, created), { due: true });
    assert.deepEqual(scheduleDecision(continuous, { runNumber: 42, startTime: '2025-03-01T10:03:00Z' }, created, at('2025-03-01T10:03:01Z')), { due: true });
  });
});

describe('scheduleDecision: cron', () => {
  test('not due before the first fire time after creation, which is next', () => {
    assert.deepEqual(scheduleDecision(cron5, undefined, created, created), { due: false, next: at('2025-03-01T10:05:00Z') });
    assert.deepEqual(scheduleDecision(cron5, undefined, created, at('2025-03-01T10:04:59.999Z')), { due: false, next: at('2025-03-01T10:05:00Z') });
  });

  test('due at and after the first fire time', () => {
    assert.deepEqual(scheduleDecision(cron5, undefined, created, at('2025-03-01T10:05:00Z')), { due: true });
    assert.deepEqual(scheduleDecision(cron5, undefined, created, at('2025-03-01T10:06:00Z')), { due: true });
  });

  test('a creation exactly at a fire time waits for the next one', () => {
    const onTime = at('2025-03-01T10:05:00Z');
    assert.deepEqual(scheduleDecision(cron5, undefined, onTime, onTime), { due: false, next: at('2025-03-01T10:10:00Z') });
  });

  test('after a run started at T the next run is the next fire time after T', () => {
    const status: RobustnessRunStatus = { runNumber: 1, startTime: '2025-03-01T10:05:00.200Z', endTime: '2025-03-01T10:06:00Z', phase: 'Passed' };
    assert.deepEqual(scheduleDecision(cron5, status, created, at('2025-03-01T10:06:00Z')), { due: false, next: at('2025-03-01T10:10:00Z') });
    assert.deepEqual(scheduleDecision(cron5, status, created, at('2025-03-01T10:10:00Z')), { due: true });
  });

  test('missed fire times are not caught up: one run is due, then the next time after it', () => {
    const status: RobustnessRunStatus = { runNumber: 3, startTime: '2025-03-01T10:05:00Z', phase: 'Passed' };
    const late = at('2025-03-01T12:33:00Z');
    assert.deepEqual(scheduleDecision(cron5, status, created, late), { due: true });
    // The run started late; the hours of missed times are not due any more.
    const started: RobustnessRunStatus = { ...status, runNumber: 4, startTime: late.toISOString() };
    assert.deepEqual(scheduleDecision(cron5, started, created, at('2025-03-01T12:34:00Z')), { due: false, next: at('2025-03-01T12:35:00Z') });
  });

  test('a status with runs but no start time counts from creation', () => {
    assert.deepEqual(scheduleDecision(cron5, { runNumber: 1 }, created, at('2025-03-01T10:03:00Z')), { due: false, next: at('2025-03-01T10:05:00Z') });
  });

  test('the first run counts from creation even when a start time is recorded', () => {
    assert.deepEqual(scheduleDecision(cron5, { runNumber: 0, startTime: '2025-03-01T10:07:00Z' }, created, at('2025-03-01T10:06:00Z')), { due: true });
  });

  test('an expression that never fires again is never due', () => {
    assert.deepEqual(scheduleDecision(schedule({ kind: 'cron', cron: '0 0 30 2 *' }), undefined, created, at('2040-01-01T00:00:00Z')), { due: false });
  });
});

describe('scheduleDecision: suspend', () => {
  test('a suspended schedule is never due and has no next time', () => {
    for (const kind of ['once', 'continuous', 'cron'] as const) {
      const suspended = schedule({ kind, suspend: true, cron: '*/5 * * * *' });
      assert.deepEqual(scheduleDecision(suspended, undefined, created, at('2030-01-01T00:00:00Z')), { due: false }, kind);
    }
  });
});

describe('scheduleDecision properties', () => {
  const base = Date.parse('2025-01-01T00:00:00Z');
  const day = 24 * 3600_000;
  const cronArb = fc.oneof(
    fc.integer({ min: 1, max: 59 }).map((step) => `*/${step} * * * *`),
    fc.tuple(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 1, max: 23 })).map(([minute, step]) => `${minute} */${step} * * *`),
  );
  const caseArb = fc.record({
    cron: cronArb,
    createdAt: fc.integer({ min: base, max: base + 30 * day }),
    lastStartOffset: fc.option(fc.integer({ min: 0, max: 3 * day }), { nil: undefined }),
    nowOffset: fc.integer({ min: -day, max: 3 * day }),
    runs: fc.integer({ min: 0, max: 5 }),
  });

  test('not due: next is a fire time strictly after now; due: a fire time at or before now was not run yet', () => {
    fc.assert(
      fc.property(caseArb, ({ cron, createdAt, lastStartOffset, nowOffset, runs }) => {
        const lastStart = lastStartOffset === undefined ? undefined : createdAt + lastStartOffset;
        const status: RobustnessRunStatus = { runNumber: runs, ...(lastStart === undefined ? {} : { startTime: new Date(lastStart).toISOString() }) };
        const from = runs > 0 && lastStart !== undefined ? lastStart : createdAt;
        const now = new Date(from + nowOffset);
        const decision = scheduleDecision(schedule({ kind: 'cron', cron }), status, new Date(createdAt), now);
        const fire = nextCronTime(cron, new Date(from))!;
        assert.ok(fire.getTime() > from);
        if (decision.due) {
          assert.equal(decision.next, undefined);
          assert.ok(fire.getTime() <= now.getTime());
        } else {
          assert.ok(decision.next !== undefined);
          assert.ok(decision.next.getTime() > now.getTime());
          assert.deepEqual(decision.next, fire);
          // Fire times are whole minutes in UTC.
          assert.equal(decision.next.getTime() % 60_000, 0);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('due is monotonic in time: once due, due at every later time (until a run starts)', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: day }), ({ cron, createdAt, nowOffset }, later) => {
        const now = createdAt + nowOffset;
        const first = scheduleDecision(schedule({ kind: 'cron', cron }), undefined, new Date(createdAt), new Date(now));
        const then = scheduleDecision(schedule({ kind: 'cron', cron }), undefined, new Date(createdAt), new Date(now + later));
        if (first.due) assert.ok(then.due);
        if (!then.due) assert.deepEqual(then.next, first.next);
      }),
      { numRuns: 300 },
    );
  });

  test('suspend wins over every kind and status', () => {
    fc.assert(
      fc.property(fc.constantFrom('once', 'continuous', 'cron' as const), cronArb, fc.integer({ min: 0, max: 5 }), fc.integer({ min: -day, max: day }), (kind, cron, runs, offset) => {
        const decision = scheduleDecision(schedule({ kind, cron, suspend: true }), { runNumber: runs }, new Date(base), new Date(base + offset));
        assert.deepEqual(decision, { due: false });
      }),
      { numRuns: 200 },
    );
  });
});
