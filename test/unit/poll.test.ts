// pollUntil and retryWhile (src/poll.ts): the one wait loop of the runtime, the executor and the node.
// Small real intervals; the only timing assertion is a lower bound (a look never comes before the pause).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { onTimeout, pollUntil, PollTimeoutError, retryWhile } from '../../src/poll.ts';

class NotReadyError extends Error {
  override name = 'NotReadyError';
}

describe('pollUntil', () => {
  test('returns the first value other than undefined, after as many looks as it took', async () => {
    let looks = 0;
    const found = await pollUntil(() => (++looks === 3 ? 'ready' : undefined), { timeoutMs: 60_000, intervalMs: 1, timeout: 'the third look' });
    assert.equal(found, 'ready');
    assert.equal(looks, 3);
  });

  test('false and 0 are values: they end the wait', async () => {
    assert.equal(await pollUntil(() => false, { timeoutMs: 60_000, intervalMs: 1, timeout: 'x' }), false);
    assert.equal(await pollUntil(() => Promise.resolve(0), { timeoutMs: 60_000, intervalMs: 1, timeout: 'x' }), 0);
  });

  test('times out with a PollTimeoutError naming what was awaited; it looks at least once', async () => {
    let looks = 0;
    const waiting = pollUntil(
      () => {
        looks++;
        return undefined;
      },
      { timeoutMs: 20, intervalMs: 2, timeout: 'member m1 healthy' },
    );
    await assert.rejects(waiting, (error: unknown) => {
      assert.ok(error instanceof PollTimeoutError);
      assert.equal(error.description, 'member m1 healthy');
      assert.equal(error.timeoutMs, 20);
      assert.match(error.message, /timed out after 20 ms waiting for member m1 healthy/);
      return true;
    });
    assert.ok(looks >= 1);
  });

  test('a zero timeout looks exactly once', async () => {
    let looks = 0;
    const never = (): undefined => {
      looks++;
      return undefined;
    };
    await assert.rejects(pollUntil(never, { timeoutMs: 0, intervalMs: 1, timeout: 'nothing' }), PollTimeoutError);
    assert.equal(looks, 1);
  });

  test("a timeout function builds the caller's error, quoting the last reason the look kept", async () => {
    let last = 'no answer yet';
    let looks = 0;
    const look = (): undefined => {
      last = `HTTP 503 (look ${++looks})`;
      return undefined;
    };
    await assert.rejects(pollUntil(look, { timeoutMs: 10, intervalMs: 1, timeout: () => new NotReadyError(`not ready (${last})`) }), (error: unknown) => {
      assert.ok(error instanceof NotReadyError);
      assert.equal(error.message, `not ready (HTTP 503 (look ${looks}))`);
      return true;
    });
  });

  test('an error thrown by the look ends the wait at once, as it is', async () => {
    let looks = 0;
    const failing = new Error('the process exited');
    const look = (): Promise<undefined> => {
      looks++;
      return Promise.reject(failing);
    };
    await assert.rejects(pollUntil(look, { timeoutMs: 60_000, intervalMs: 1, timeout: 'x' }), (error: unknown) => error === failing);
    assert.equal(looks, 1);
  });

  test('pauses intervalMs between two looks', async () => {
    const times: number[] = [];
    await pollUntil(
      () => {
        times.push(performance.now());
        return times.length === 3 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 40, timeout: 'x' },
    );
    assert.equal(times.length, 3);
    // A lower bound only. Timers count from the event loop's cached clock, which can lag performance.now()
    // by a few ms: allow 10 ms of it (without the pause, the looks would be well under 1 ms apart).
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 30, `gap ${times[i]! - times[i - 1]!} ms`);
  });

  test('onTimeout turns a timeout into a value and rethrows any other error', async () => {
    assert.equal(await pollUntil(() => undefined, { timeoutMs: 0, intervalMs: 1, timeout: 'x' }).catch(onTimeout(false)), false);
    const other = new Error('boom');
    await assert.rejects(
      pollUntil(() => Promise.reject(other), { timeoutMs: 0, intervalMs: 1, timeout: 'x' }).catch(onTimeout(false)),
      (error: unknown) => error === other,
    );
  });
});

describe('retryWhile', () => {
  test('retries the errors it accepts until the attempt succeeds', async () => {
    let attempts = 0;
    const attempt = (): Promise<string> => (++attempts < 3 ? Promise.reject(new NotReadyError('down')) : Promise.resolve('up'));
    assert.equal(await retryWhile(attempt, (e) => e instanceof NotReadyError, { timeoutMs: 60_000, intervalMs: 1 }), 'up');
    assert.equal(attempts, 3);
  });

  test('an attempt resolving to undefined is a success', async () => {
    let attempts = 0;
    const attempt = (): Promise<undefined> => {
      attempts++;
      return Promise.resolve(undefined);
    };
    assert.equal(await retryWhile(attempt, () => true, { timeoutMs: 60_000, intervalMs: 1 }), undefined);
    assert.equal(attempts, 1);
  });

  test('an error it does not accept is thrown at once', async () => {
    let attempts = 0;
    const fatal = new Error('permission denied');
    const attempt = (): Promise<never> => {
      attempts++;
      return Promise.reject(fatal);
    };
    await assert.rejects(retryWhile(attempt, (e) => e instanceof NotReadyError, { timeoutMs: 60_000, intervalMs: 1 }), (error: unknown) => error === fatal);
    assert.equal(attempts, 1);
  });

  test('past the timeout, the last accepted error is thrown', async () => {
    const thrown: Error[] = [];
    const attempt = (): Promise<never> => {
      const error = new NotReadyError(`down (${thrown.length + 1})`);
      thrown.push(error);
      return Promise.reject(error);
    };
    await assert.rejects(retryWhile(attempt, (e) => e instanceof NotReadyError, { timeoutMs: 10, intervalMs: 1 }), (error: unknown) => error === thrown.at(-1));
    assert.ok(thrown.length >= 1);
  });
});
