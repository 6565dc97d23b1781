/**
 * Waiting for a condition by looking again and again: one loop for every "until healthy, until the
 * process exits, until the object is gone" wait, so each caller states only what it looks at, how often
 * and what a timeout means.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** Give up once this long has passed since the first look (ms); the look that crosses it is the last. */
  timeoutMs: number;
  /** Pause between two looks (ms). */
  intervalMs: number;
  /**
   * What a timeout throws: a description of what was awaited (thrown as a PollTimeoutError), or a function
   * building the caller's own error (it may quote the last reason the caller kept).
   */
  timeout: string | (() => Error);
}

/** The wait ran out: `description` says what was awaited. */
export class PollTimeoutError extends Error {
  override name = 'PollTimeoutError';
  readonly description: string;
  readonly timeoutMs: number;

  constructor(description: string, timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms waiting for ${description}`);
    this.description = description;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Calls `look` until it returns something other than undefined, and returns that. Looks at least once;
 * after a look that finds nothing past the deadline, throws options.timeout. Whatever `look` throws ends
 * the wait with that error (a look that should retry on errors catches them itself).
 */
export async function pollUntil<T>(look: () => Promise<T | undefined> | T | undefined, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const found = await look();
    if (found !== undefined) return found;
    if (Date.now() >= deadline) {
      throw typeof options.timeout === 'string' ? new PollTimeoutError(options.timeout, options.timeoutMs) : options.timeout();
    }
    await sleep(options.intervalMs);
  }
}

/** For `pollUntil(...).catch(onTimeout(false))`: a timeout gives `value`; any other error is rethrown. */
export function onTimeout<T>(value: T): (error: unknown) => T {
  return (error) => {
    if (error instanceof PollTimeoutError) return value;
    throw error;
  };
}

/**
 * Calls `attempt` until it resolves, again after each error `retryable` accepts; an error it does not
 * accept, or the last one once timeoutMs has passed, is thrown as it is.
 */
export async function retryWhile<T>(attempt: () => Promise<T>, retryable: (error: unknown) => boolean, options: Omit<PollOptions, 'timeout'>): Promise<T> {
  let last: unknown;
  const once = async (): Promise<{ value: T } | undefined> => {
    try {
      return { value: await attempt() };
    } catch (error) {
      if (!retryable(error)) throw error;
      last = error;
      return undefined;
    }
  };
  const done = await pollUntil(once, { ...options, timeout: () => (last instanceof Error ? last : new Error(String(last))) });
  return done.value;
}
