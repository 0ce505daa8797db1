/**
 * Failed authentications counted per client address in a fixed one-minute window, in this process:
 * past AUTH_FAILURES_PER_MINUTE a caller gets 429 before any key lookup, so guessing keys costs it
 * far more than it costs the api. The client address is what `trust proxy` (TRUST_PROXY) makes of
 * the connection: with no trusted proxy a caller cannot pick its own with X-Forwarded-For.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { startedAt: number; failures: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Seconds until the address may try again, or 0 when it may now. */
  retryAfterSeconds(address: string, now = Date.now()): number {
    const window = this.windows.get(address);
    if (!window || now - window.startedAt >= this.windowMs || window.failures < this.perMinute) return 0;
    return Math.max(1, Math.ceil((window.startedAt + this.windowMs - now) / 1000));
  }

  recordFailure(address: string, now = Date.now()): void {
    let window = this.windows.get(address);
    if (!window || now - window.startedAt >= this.windowMs) {
      if (this.windows.size >= 100_000) this.prune(now);
      window = { startedAt: now, failures: 0 };
      this.windows.set(address, window);
    }
    window.failures++;
  }

  private prune(now: number): void {
    for (const [address, window] of this.windows) if (now - window.startedAt >= this.windowMs) this.windows.delete(address);
    if (this.windows.size >= 100_000) this.windows.clear();
  }
}
