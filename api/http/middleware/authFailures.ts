import type { RedisClient } from '../../../shared/infra/redis.js';
import { isRedisUsable, withScript, luaScript } from '../../../shared/infra/redis.js';
import type { Logger } from '../../../shared/infra/logger.js';

/**
 * Counts one failure in a window that starts with the first failure and ends when the key expires —
 * unless the window is already full: then nothing is counted and the caller is told to wait.
 * Returns { count, ttlMs, full }.
 */
const COUNT_FAILURE = luaScript('countAuthFailure');

type FailureCommands = {
  runyardCountAuthFailure(key: string, ttlMs: number, limit: number): Promise<[number, number, number]>;
};

const BLOCKED_CACHE_MAX = 100_000;
const REDIS_WAIT_MS = 1_000;
const FLEET = '\u0000fleet';

/**
 * The failed-authentication limiter (SPEC section 3). Only failures count: a request that sends a
 * valid key is never refused by it, and one that sends no credential at all (a page's `<img src>`,
 * a CORS preflight) is a plain 401 that counts as nothing. Failures are counted in Redis, per client
 * address (AUTH_FAILURES_PER_MINUTE) and for the whole fleet (AUTH_FAILURES_FLEET_PER_MINUTE), each
 * in a one-minute window from its first failure, so N api processes allow what one does and rotating
 * addresses (a spoofed X-Forwarded-For where TRUST_PROXY trusts too much) cannot guess without
 * bound. Past either allowance, a failing attempt gets 429 with Retry-After instead of 401, and
 * the full window is remembered in this process until it ends, so a flood costs no Redis round trip.
 * The client address is what `trust proxy` (TRUST_PROXY) makes of the connection. When Redis is
 * unreachable failures are not counted (keys are still checked), as for the key rate limit.
 */
export class AuthFailureLimiter {
  private readonly blockedUntil = new Map<string, number>();
  private readonly redis: RedisClient & FailureCommands;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly limits: { perAddress: number; fleet: number },
    private readonly logger: Logger,
    private readonly windowMs = 60_000,
  ) {
    this.redis = withScript<FailureCommands>(redis, 'runyardCountAuthFailure', 1, COUNT_FAILURE);
  }

  /**
   * A failed authentication from `address`: 0 when it is counted (answer 401), else the seconds
   * until this address (or the fleet) may fail again (answer 429; it was not counted).
   */
  async failed(address: string, now = Date.now()): Promise<number> {
    const cached = Math.max(this.cachedBlock(address, now), this.cachedBlock(FLEET, now));
    if (cached > 0) return cached;
    try {
      // A process that just started may still be connecting: its first failures count too.
      if (!(await isRedisUsable(this.redis, REDIS_WAIT_MS))) throw new Error('Redis is not reachable');
      const byAddress = await this.count(address, this.limits.perAddress, now);
      if (byAddress > 0) return byAddress;
      return await this.count(FLEET, this.limits.fleet, now);
    } catch (err) {
      this.logger.warn('could not count a failed authentication', { error: (err as Error).message });
      return 0;
    }
  }

  private async count(who: string, limit: number, now: number): Promise<number> {
    const key = who === FLEET ? `${this.prefix}:authfail:{fleet}` : `${this.prefix}:authfail:{${who}}`;
    const [, ttlMs, full] = await this.redis.runyardCountAuthFailure(key, this.windowMs, limit);
    if (!full || ttlMs <= 0) return 0;
    if (who === FLEET) this.logger.warn('the fleet-wide failed-authentication allowance is used up', { limit, retryInMs: ttlMs });
    if (this.blockedUntil.size >= BLOCKED_CACHE_MAX) this.blockedUntil.clear();
    this.blockedUntil.set(who, now + ttlMs);
    return Math.max(1, Math.ceil(ttlMs / 1000));
  }

  private cachedBlock(who: string, now: number): number {
    const until = this.blockedUntil.get(who);
    if (until === undefined) return 0;
    if (until <= now) {
      this.blockedUntil.delete(who);
      return 0;
    }
    return Math.max(1, Math.ceil((until - now) / 1000));
  }
}
