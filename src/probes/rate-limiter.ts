/**
 * One token bucket shared by every client of a run: `target` tokens per second, at most `burst` saved
 * up. Waiters are served in arrival order so no client starves. Clients issue one request at a time, so
 * the bucket bounds the run's total rate while a slow cluster simply gets fewer requests.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(options: { target: number; burst: number; now?: () => number }) {
    if (!(options.target > 0)) throw new RangeError(`rate limiter: target QPS must be positive, got ${options.target}`);
    if (!(options.burst >= 1)) throw new RangeError(`rate limiter: burst must be at least 1, got ${options.burst}`);
    this.ratePerMs = options.target / 1000;
    this.burst = options.burst;
    this.now = options.now ?? (() => performance.now());
    this.last = this.now();
    // Start with one token, not a full bucket: a run must not open with a burst at a production cluster.
    this.tokens = 1;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.ratePerMs);
    this.last = now;
  }

  /** Resolves when a request may be sent (immediately after close(), so loops can end). */
  acquire(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer !== undefined || this.waiters.length === 0) return;
    const wait = Math.max(1, Math.ceil((1 - this.tokens) / this.ratePerMs));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()!();
      }
      this.schedule();
    }, wait);
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Releases every waiter and admits everything from now on. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
