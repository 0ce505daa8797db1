import type { RedisClient } from '../../shared/infra/redis.js';
import { isRedisUsable, withScript } from '../../shared/infra/redis.js';
import type { Logger } from '../../shared/infra/logger.js';

// Counts a failure; the address's window starts with its first failure and ends when the key expires.
const COUNT_FAILURE = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { count, redis.call('PTTL', KEYS[1]) }`;

const READ_FAILURES = `return { tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1]) }`;

type FailureCommands = {
  runyardCountAuthFailure(key: string, ttlMs: number): Promise<[number, number]>;
  runyardReadAuthFailures(key: string): Promise<[number, number]>;
};

const BLOCKED_CACHE_MAX = 100_000;
const REDIS_WAIT_MS = 1_000;

/**
 * Failed authentications counted per client address in a one-minute window (from its first failure), in Redis, so N
 * api processes together allow what one does: past AUTH_FAILURES_PER_MINUTE a caller gets 429
 * before any key lookup, so guessing keys costs it far more than it costs the api. An address found
 * over its allowance is also remembered in this process until its window ends, so a flood from it
 * is refused without a Redis round trip. The client address is what `trust proxy` (TRUST_PROXY)
 * makes of the connection: with no trusted proxy a caller cannot pick its own with X-Forwarded-For.
 * When Redis is unreachable failures are not counted (keys are still checked), as for the key rate
 * limit.
 */
export class AuthFailureLimiter {
  private readonly blockedUntil = new Map<string, number>();
  private readonly redis: RedisClient & FailureCommands;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly perMinute: number,
    private readonly logger: Logger,
    private readonly windowMs = 60_000,
  ) {
    withScript(redis, 'runyardCountAuthFailure', 1, COUNT_FAILURE);
    this.redis = withScript<FailureCommands>(redis, 'runyardReadAuthFailures', 1, READ_FAILURES);
  }

  /** Seconds until the address may try again, or 0 when it may now. */
  async retryAfterSeconds(address: string, now = Date.now()): Promise<number> {
    const until = this.blockedUntil.get(address) ?? (await this.blockedInRedis(address, now));
    if (until <= now) {
      this.blockedUntil.delete(address);
      return 0;
    }
    return Math.max(1, Math.ceil((until - now) / 1000));
  }

  async recordFailure(address: string, now = Date.now()): Promise<void> {
    try {
      // A process that just started may still be connecting: its first failures count too.
      if (!(await isRedisUsable(this.redis, REDIS_WAIT_MS))) throw new Error('Redis is not reachable');
      const [count, ttlMs] = await this.redis.runyardCountAuthFailure(this.key(address), this.windowMs);
      if (count >= this.perMinute) this.block(address, now + ttlMs);
    } catch (err) {
      this.logger.warn('could not count a failed authentication', { error: (err as Error).message });
    }
  }

  private async blockedInRedis(address: string, now: number): Promise<number> {
    try {
      if (!(await isRedisUsable(this.redis, REDIS_WAIT_MS))) return 0;
      const [count, ttlMs] = await this.redis.runyardReadAuthFailures(this.key(address));
      if (count < this.perMinute || ttlMs <= 0) return 0;
      this.block(address, now + ttlMs);
      return now + ttlMs;
    } catch {
      return 0;
    }
  }

  private block(address: string, until: number): void {
    if (this.blockedUntil.size >= BLOCKED_CACHE_MAX) this.blockedUntil.clear();
    this.blockedUntil.set(address, until);
  }

  private key(address: string): string {
    return `${this.prefix}:authfail:{${address}}`;
  }
}
