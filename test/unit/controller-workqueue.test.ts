// The controller kit's pure parts: the work queue, the controller's worker pool and outcomes, conditions.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import type { Condition } from '../../src/domain/index.ts';
import {
  Controller,
  ControllerMetrics,
  findCondition,
  isConditionTrue,
  setCondition,
  TerminalError,
  WorkQueue,
} from '../../src/controller/kit/index.ts';
import { logger } from '../../src/log.ts';

// The controller logs every failure it retries; these tests make hundreds on purpose.
logger.silent = process.env['LOG_LEVEL'] === undefined;

/** Polls until `check` holds; fails after a generous bound (never depends on the machine being fast). */
async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await sleep(2);
  }
}

/** Resolves with `promise`'s value, or 'pending' if it has not settled after the current macrotask. */
async function peek<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, sleep(5).then(() => 'pending' as const)]);
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric as { values?: { value: number; labels: Record<string, string | number> }[] } | undefined)?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))?.value;
}

describe('WorkQueue', () => {
  test('a key waiting is queued once, in first-add order', async () => {
    const queue = new WorkQueue({ name: 'dedup' });
    queue.add('a');
    queue.add('b');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.length, 2);
    assert.equal(await queue.get(), 'a');
    assert.equal(await queue.get(), 'b');
    assert.equal(queue.length, 0);
    assert.equal(await peek(queue.get()), 'pending');
    queue.shutDown();
  });

  test('get() waits for an add', async () => {
    const queue = new WorkQueue({ name: 'wait' });
    const next = queue.get();
    assert.equal(await peek(next), 'pending');
    queue.add('x');
    assert.equal(await next, 'x');
    queue.shutDown();
  });

  test('a key in flight is not handed out again; adds meanwhile re-queue it once after done()', async () => {
    const queue = new WorkQueue({ name: 'inflight' });
    queue.add('a');
    assert.equal(await queue.get(), 'a');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.length, 0, 'not queued while being processed');
    const waiting = queue.get();
    assert.equal(await peek(waiting), 'pending');
    queue.done('a');
    assert.equal(await waiting, 'a');
    queue.done('a');
    assert.equal(queue.length, 0, 'queued once, not twice');
    queue.done('a'); // done() of a key not in flight is harmless
    assert.equal(queue.length, 0);
    queue.shutDown();
  });

  test('a key in flight and not added again is not re-queued by done()', async () => {
    const queue = new WorkQueue({ name: 'clean' });
    queue.add('a');
    assert.equal(await queue.get(), 'a');
    queue.done('a');
    assert.equal(queue.length, 0);
    queue.shutDown();
  });

  test('addRateLimited backs off base * 2^failures up to the cap; forget resets', () => {
    const queue = new WorkQueue({ name: 'backoff', baseDelayMs: 5, maxDelayMs: 1000 });
    assert.deepEqual(
      Array.from({ length: 10 }, (_, i) => queue.backoffMs(i)),
      [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000],
    );
    assert.equal(queue.backoffMs(5000), 1000, 'huge failure counts stay capped');
    for (let i = 0; i < 4; i++) queue.addRateLimited('k');
    assert.equal(queue.numRequeues('k'), 4);
    assert.equal(queue.numRequeues('other'), 0);
    queue.forget('k');
    assert.equal(queue.numRequeues('k'), 0);
    queue.shutDown();
  });

  test('defaults are controller-runtime’s: 5 ms to 1000 s', () => {
    const queue = new WorkQueue({ name: 'defaults' });
    assert.equal(queue.backoffMs(0), 5);
    assert.equal(queue.backoffMs(100), 1_000_000);
    queue.shutDown();
  });

  test('rate-limited retries arrive no earlier than their backoff, and the backoff grows', async () => {
    const queue = new WorkQueue({ name: 'timing', baseDelayMs: 20, maxDelayMs: 80 });
    const waits: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const started = performance.now();
      queue.addRateLimited('k');
      assert.equal(await queue.get(), 'k');
      waits.push(performance.now() - started);
      queue.done('k');
    }
    // Timers never fire early (beyond a millisecond of rounding); a slow machine only makes waits longer.
    [20, 40, 80, 80].forEach((expected, i) => assert.ok(waits[i]! >= expected - 2, `wait ${i}: ${waits[i]} ms < ${expected} ms`));
    queue.shutDown();
  });

  test('addAfter delivers after the delay; the earliest pending time wins', async () => {
    const queue = new WorkQueue({ name: 'after' });
    queue.addAfter('a', 60_000);
    queue.addAfter('a', 10);
    queue.addAfter('a', 30_000); // later than the pending one: ignored
    const started = performance.now();
    assert.equal(await queue.get(), 'a');
    assert.ok(performance.now() - started >= 8);
    queue.done('a');
    queue.addAfter('b', 0); // no delay: an immediate add
    assert.equal(queue.length, 1);
    queue.shutDown(); // clears the 30 s / 60 s timers, or this test would keep the process alive
  });

  test('shutDown resolves waiting get()s with undefined, ignores later adds and clears timers', async () => {
    const queue = new WorkQueue({ name: 'shutdown' });
    const waiting = [queue.get(), queue.get()];
    queue.addAfter('late', 60_000);
    queue.shutDown();
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined]);
    queue.add('a');
    queue.addRateLimited('b');
    queue.addAfter('c', 1);
    assert.equal(queue.length, 0);
    assert.equal(await queue.get(), undefined);
  });

  test('updates workqueue metrics', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    const queue = new WorkQueue({ name: 'metered', metrics, baseDelayMs: 1, maxDelayMs: 1 });
    queue.add('a');
    queue.add('b');
    queue.add('a');
    assert.equal(await metricValue(registry, 'workqueue_depth', { name: 'metered' }), 2);
    assert.equal(await metricValue(registry, 'workqueue_adds_total', { name: 'metered' }), 2);
    await queue.get();
    assert.equal(await metricValue(registry, 'workqueue_depth', { name: 'metered' }), 1);
    queue.done('a');
    queue.addRateLimited('a');
    assert.equal(await metricValue(registry, 'workqueue_retries_total', { name: 'metered' }), 1);
    const text = await registry.metrics();
    assert.match(text, /workqueue_queue_duration_seconds_count\{name="metered"\} 1/);
    assert.match(text, /workqueue_work_duration_seconds_count\{name="metered"\} 1/);
    assert.match(text, /workqueue_unfinished_work_seconds\{name="metered"\} 0/);
    queue.shutDown();
    // A second ControllerMetrics on the same registry shares the metrics instead of failing.
    assert.doesNotThrow(() => new ControllerMetrics(registry));
  });
});

describe('Controller', () => {
  test('never reconciles one key in two workers at once, and reconciles every key after its last add', async () => {
    type Outcome = 'ok' | 'error' | 'terminal' | 'requeueAfter';
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c', 'ns/d'), pauseMs: fc.integer({ min: 0, max: 3 }) }), {
          minLength: 1,
          maxLength: 25,
        }),
        fc.array(
          fc.record({
            outcome: fc.constantFrom<Outcome>('ok', 'ok', 'error', 'terminal', 'requeueAfter'),
            durationMs: fc.integer({ min: 0, max: 3 }),
          }),
          { maxLength: 30 },
        ),
        async (concurrency, adds, outcomes) => {
          let seq = 0;
          const inFlight = new Set<string>();
          const lastAdd = new Map<string, number>();
          const lastStart = new Map<string, number>();
          let overlap: string | undefined;
          let running = 0;
          let maxRunning = 0;
          let calls = 0;
          const controller = new Controller({
            name: 'property',
            concurrency,
            baseDelayMs: 1,
            maxDelayMs: 4,
            reconcile: async (key) => {
              if (inFlight.has(key)) overlap = key;
              inFlight.add(key);
              lastStart.set(key, ++seq);
              running++;
              maxRunning = Math.max(maxRunning, running);
              const step = outcomes[calls++] ?? { outcome: 'ok', durationMs: 0 };
              try {
                await sleep(step.durationMs);
                if (step.outcome === 'error') throw new Error('retry me');
                if (step.outcome === 'terminal') throw new TerminalError('give up');
                if (step.outcome === 'requeueAfter') return { requeueAfterMs: 2 };
                return undefined;
              } finally {
                running--;
                inFlight.delete(key);
              }
            },
          });
          controller.start();
          for (const { key, pauseMs } of adds) {
            lastAdd.set(key, ++seq);
            controller.enqueue(key);
            if (pauseMs > 0) await sleep(pauseMs);
          }
          try {
            await eventually(
              () => [...lastAdd].every(([key, added]) => (lastStart.get(key) ?? 0) > added) && running === 0,
              'every key reconciled after its last add',
            );
          } finally {
            await controller.stop();
          }
          assert.equal(overlap, undefined, `key ${overlap} reconciled twice at once`);
          assert.ok(maxRunning <= concurrency, `${maxRunning} reconciles at once with concurrency ${concurrency}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('concurrency lets different keys run in parallel', async () => {
    const release = Promise.withResolvers<undefined>();
    let running = 0;
    let peak = 0;
    const controller = new Controller({
      name: 'parallel',
      concurrency: 3,
      reconcile: async () => {
        running++;
        peak = Math.max(peak, running);
        await release.promise;
        running--;
      },
    });
    controller.start();
    for (const key of ['a', 'b', 'c', 'd']) controller.enqueue(key);
    await eventually(() => running === 3, 'three reconciles running');
    assert.equal(controller.queue.length, 1);
    release.resolve(undefined);
    await eventually(() => controller.queue.length === 0 && running === 0, 'all done');
    assert.equal(peak, 3);
    await controller.stop();
  });

  test('a TerminalError is counted and not retried', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    let calls = 0;
    const controller = new Controller({
      name: 'terminal',
      metrics,
      baseDelayMs: 1,
      maxDelayMs: 1,
      reconcile: () => {
        calls++;
        return Promise.reject(new TerminalError('spec is invalid'));
      },
    });
    controller.start();
    controller.enqueue('a');
    await eventually(() => calls === 1, 'reconciled once');
    await sleep(50); // a retry with a 1 ms backoff would have happened many times by now
    assert.equal(calls, 1);
    assert.equal(controller.queue.numRequeues('a'), 0);
    assert.equal(await metricValue(registry, 'controller_runtime_terminal_reconcile_errors_total', { controller: 'terminal' }), 1);
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_errors_total', { controller: 'terminal' }), 1);
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'terminal', result: 'error' }), 1);
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'terminal', result: 'success' }), 0);
    // An event requeues it as usual.
    controller.enqueue('a');
    await eventually(() => calls === 2, 'reconciled again after an enqueue');
    await controller.stop();
  });

  test('other errors are retried with growing backoff until a success forgets the failures', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    const starts: number[] = [];
    const ends: number[] = [];
    const controller = new Controller({
      name: 'retry',
      metrics,
      baseDelayMs: 10,
      maxDelayMs: 1000,
      reconcile: async () => {
        starts.push(performance.now());
        await Promise.resolve();
        ends.push(performance.now());
        if (starts.length <= 3) throw new Error(`transient ${starts.length}`);
      },
    });
    controller.start();
    controller.enqueue('k');
    await eventually(() => starts.length === 4, 'four attempts');
    await eventually(() => controller.queue.numRequeues('k') === 0, 'failures forgotten after the success');
    [10, 20, 40].forEach((backoff, i) => {
      const gap = starts[i + 1]! - ends[i]!;
      assert.ok(gap >= backoff - 2, `retry ${i + 1} after ${gap} ms, backoff ${backoff} ms`);
    });
    await sleep(30);
    assert.equal(starts.length, 4, 'no retry after the success');
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_errors_total', { controller: 'retry' }), 3);
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'retry', result: 'error' }), 3);
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'retry', result: 'success' }), 1);
    assert.equal(await metricValue(registry, 'workqueue_retries_total', { name: 'retry' }), 3);
    assert.equal(await metricValue(registry, 'controller_runtime_max_concurrent_reconciles', { controller: 'retry' }), 1);
    const text = await registry.metrics();
    assert.match(text, /controller_runtime_reconcile_time_seconds_count\{controller="retry"\} 4/);
    await controller.stop();
  });

  test('requeueAfterMs reconciles the key again after that delay', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    const starts: number[] = [];
    let firstEnded = 0;
    const controller = new Controller({
      name: 'requeue-after',
      metrics,
      reconcile: () => {
        starts.push(performance.now());
        if (starts.length === 1) {
          firstEnded = performance.now();
          return Promise.resolve({ requeueAfterMs: 40 });
        }
        return Promise.resolve();
      },
    });
    controller.start();
    controller.enqueue('k');
    await eventually(() => starts.length === 2, 'requeued');
    assert.ok(starts[1]! - firstEnded >= 38, `requeued after ${starts[1]! - firstEnded} ms`);
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'requeue-after', result: 'requeue_after' }), 1);
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'requeue-after', result: 'success' }), 1);
    await controller.stop();
  });

  test('requeue: true requeues with backoff and counts result="requeue"', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    let calls = 0;
    const controller = new Controller({
      name: 'requeue',
      metrics,
      baseDelayMs: 1,
      maxDelayMs: 2,
      reconcile: () => Promise.resolve(++calls < 3 ? { requeue: true } : {}),
    });
    controller.start();
    controller.enqueue('k');
    await eventually(() => calls === 3, 'three reconciles');
    assert.equal(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'requeue', result: 'requeue' }), 2);
    await controller.stop();
  });

  test('stop() aborts the signal of running reconciles, waits for them, and shuts the queue down', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    let seenSignal: AbortSignal | undefined;
    let cleanedUp = false;
    let calls = 0;
    const controller = new Controller({
      name: 'stopping',
      metrics,
      reconcile: async (_key, signal) => {
        calls++;
        seenSignal = signal;
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        await sleep(20); // cleanup that takes a while
        cleanedUp = true;
        throw new Error('aborted');
      },
    });
    controller.start();
    controller.enqueue('k');
    await eventually(() => seenSignal !== undefined, 'reconcile running');
    assert.equal(await metricValue(registry, 'controller_runtime_active_workers', { controller: 'stopping' }), 1);
    assert.equal(seenSignal?.aborted, false);
    await controller.stop();
    assert.equal(seenSignal?.aborted, true);
    assert.equal(cleanedUp, true, 'stop() waited for the running reconcile');
    assert.equal(await metricValue(registry, 'controller_runtime_active_workers', { controller: 'stopping' }), 0);
    controller.enqueue('k');
    await sleep(10);
    assert.equal(calls, 1, 'nothing reconciled after stop');
    assert.equal(await controller.queue.get(), undefined);
  });
});

describe('conditions', () => {
  const t0 = new Date('2025-01-01T00:00:00.123Z');
  const t1 = new Date('2025-01-01T00:05:00.000Z');
  const available = (status: Condition['status'], generation: number, reason = 'MembersHealthy'): Omit<Condition, 'lastTransitionTime'> => ({
    type: 'Available',
    status,
    observedGeneration: generation,
    reason,
    message: `${reason} at generation ${generation}`,
  });

  test('a new condition gets lastTransitionTime now (RFC 3339, seconds)', () => {
    const conditions = setCondition(undefined, available('True', 1), t0);
    assert.deepEqual(conditions, [{ ...available('True', 1), lastTransitionTime: '2025-01-01T00:00:00Z' }]);
  });

  test('same status: lastTransitionTime kept; reason, message and observedGeneration updated', () => {
    const before = setCondition(undefined, available('True', 1), t0);
    const after = setCondition(before, available('True', 2, 'StillHealthy'), t1);
    assert.deepEqual(after, [{ ...available('True', 2, 'StillHealthy'), lastTransitionTime: '2025-01-01T00:00:00Z' }]);
    assert.equal(findCondition(after, 'Available')?.observedGeneration, 2);
  });

  test('status change: lastTransitionTime changes', () => {
    const before = setCondition(undefined, available('True', 1), t0);
    const after = setCondition(before, available('False', 1, 'MemberDown'), t1);
    assert.equal(findCondition(after, 'Available')?.lastTransitionTime, '2025-01-01T00:05:00Z');
    assert.equal(findCondition(after, 'Available')?.status, 'False');
  });

  test('other types are kept in order, the input is not modified, lookups work', () => {
    const progressing: Omit<Condition, 'lastTransitionTime'> = {
      type: 'Progressing',
      status: 'False',
      observedGeneration: 1,
      reason: 'Idle',
      message: '',
    };
    const start = setCondition(setCondition(undefined, available('True', 1), t0), progressing, t0);
    const frozen = structuredClone(start);
    const next = setCondition(start, available('False', 2, 'MemberDown'), t1);
    assert.deepEqual(start, frozen, 'input untouched');
    assert.deepEqual(
      next.map((c) => c.type),
      ['Available', 'Progressing'],
    );
    assert.equal(isConditionTrue(start, 'Available'), true);
    assert.equal(isConditionTrue(next, 'Available'), false);
    assert.equal(isConditionTrue(next, 'Degraded'), false);
    assert.equal(findCondition(next, 'Degraded'), undefined);
    assert.equal(findCondition(undefined, 'Available'), undefined);
  });

  test('property: lastTransitionTime changes exactly when the status changes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ status: fc.constantFrom<Condition['status']>('True', 'False', 'Unknown'), generation: fc.nat(100) }), {
          minLength: 1,
          maxLength: 20,
        }),
        (steps) => {
          let conditions: Condition[] | undefined;
          let previous: Condition | undefined;
          steps.forEach(({ status, generation }, i) => {
            const now = new Date(Date.UTC(2025, 0, 1, 0, 0, i));
            conditions = setCondition(conditions, available(status, generation), now);
            const current = findCondition(conditions, 'Available')!;
            assert.equal(conditions.length, 1);
            assert.equal(current.observedGeneration, generation);
            if (previous && previous.status === status) assert.equal(current.lastTransitionTime, previous.lastTransitionTime);
            else assert.equal(current.lastTransitionTime, now.toISOString().replace('.000Z', 'Z'));
            previous = current;
          });
        },
      ),
    );
  });
});
