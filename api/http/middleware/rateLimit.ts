import type { RequestHandler } from 'express';
import type { RedisClient } from '../../../shared/infra/redis.js';
import { AppError } from '../../../shared/infra/errors.js';
import { Batcher } from '../../../shared/infra/batcher.js';
import { withScript, luaScript } from '../../../shared/infra/redis.js';
import type { Logger } from '../../../shared/infra/logger.js';
import type { RequestWithCaller } from '../http.js';

// Counts ARGV[2] requests in their window; the window's key expires a little after the window ends.
const COUNT_REQUESTS = luaScript('countRequests');

type CountRequests = { runyardCountRequests(key: string, ttlMs: number, requests: number): Promise<number> };

/**
 * A fixed one-minute window per key, counted in Redis so every api instance shares it. When Redis
 * is unreachable the limiter lets requests through (reads still work from Postgres; writes fail
 * on their own with 503).
 */
export function rateLimit(redis: RedisClient, prefix: string, perMinute: number, logger: Logger): RequestHandler {
  const scripted = withScript<CountRequests>(redis, 'runyardCountRequests', 1, COUNT_REQUESTS);
  // Concurrent requests of one key in one window are counted with one INCRBY; each gets the count
  // it would have got alone (its place in the batch), so the limit is exactly as strict.
  const counter = new Batcher<string, number>(
    async (keys) => {
      const total = await scripted.runyardCountRequests(keys[0]!, 61_000, keys.length);
      return keys.map((_, i) => total - keys.length + i + 1);
    },
    { maxBatch: 100, concurrency: 1, group: (key) => key },
  );
  return async (req, res, next) => {
    const caller = (req as RequestWithCaller).caller;
    const who = caller?.keyId ?? caller?.kind;
    if (!who) return next();
    const window = Math.floor(Date.now() / 60_000);
    const key = `${prefix}:ratelimit:{${who}}:${window}`;
    try {
      const count = await counter.submit(key);
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
