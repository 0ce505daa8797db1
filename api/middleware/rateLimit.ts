import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.js';
import { withScript } from '../../shared/redis.js';
import type { Logger } from '../../shared/logger.js';
import type { RequestWithCaller } from '../http.js';

// Counts a request in its window; the window's key expires a little after the window ends.
const COUNT_REQUEST = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count`;

type CountRequest = { runyardCountRequest(key: string, ttlMs: number): Promise<number> };

/**
 * A fixed one-minute window per key, counted in Redis so every api instance shares it. When Redis
 * is unreachable the limiter lets requests through (reads still work from Postgres; writes fail
 * on their own with 503).
 */
export function rateLimit(redis: Redis, prefix: string, perMinute: number, logger: Logger): RequestHandler {
  const limiter = withScript<CountRequest>(redis, 'runyardCountRequest', 1, COUNT_REQUEST);
  return async (req, res, next) => {
    const caller = (req as RequestWithCaller).caller;
    const who = caller?.keyId ?? caller?.kind;
    if (!who) return next();
    const window = Math.floor(Date.now() / 60_000);
    const key = `${prefix}:ratelimit:${who}:${window}`;
    try {
      const count = await limiter.runyardCountRequest(key, 61_000);
      res.setHeader('RateLimit-Limit', String(perMinute));
      res.setHeader('RateLimit-Remaining', String(Math.max(0, perMinute - count)));
      if (count > perMinute) {
        const retryAfter = Math.max(1, 60 - Math.floor((Date.now() / 1000) % 60));
        return next(
          new AppError('rate_limited', 429, `More than ${perMinute} requests a minute with this key.`, 'Slow down and retry after the Retry-After interval.', {
            retryAfterSeconds: retryAfter,
          }),
        );
      }
    } catch (err) {
      logger.warn('rate limiter unavailable, letting the request through', { error: (err as Error).message });
    }
    next();
  };
}
