import { Redis, type RedisOptions } from 'ioredis';

/**
 * - producer: the api's connection. Fails fast (no offline queue, bounded retries per command) so a
 *   dead Redis becomes a 503 at once instead of a hung request.
 * - worker: BullMQ workers and their helpers. Waits and reconnects forever (BullMQ requires
 *   maxRetriesPerRequest: null for blocking connections).
 * - subscriber: pub/sub listeners; reconnect forever and resubscribe by themselves.
 */
export type RedisRole = 'producer' | 'worker' | 'subscriber';

export function redisOptions(role: RedisRole): RedisOptions {
  const reconnect = { retryStrategy: (times: number) => Math.min(200 * times, 2_000) };
  if (role === 'producer') {
    return { ...reconnect, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 5_000 };
  }
  return { ...reconnect, maxRetriesPerRequest: null, enableOfflineQueue: true };
}

export function createRedis(url: string, role: RedisRole, name?: string): Redis {
  const redis = new Redis(url, { ...redisOptions(role), connectionName: name, lazyConnect: false });
  // Connection errors are reported by readiness checks and by the commands that fail; an
  // unhandled 'error' event would otherwise crash the process.
  redis.on('error', () => {});
  return redis;
}

/**
 * Registers a Lua script as the command `name` on the connection (once; later calls reuse it) and
 * returns the connection typed with that command. ioredis runs it by EVALSHA and loads it into a
 * Redis that does not have it yet.
 */
export function withScript<Command>(redis: Redis, name: string, numberOfKeys: number, lua: string): Redis & Command {
  if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
  return redis as Redis & Command;
}

/**
 * Whether the connection can take a command now. A connection in the middle of connecting (a
 * process that just started, or a reconnect under way) gets up to `waitMs` to finish; one that is
 * down answers false at once, so callers can fail fast instead of hanging.
 */
export async function isRedisUsable(redis: Redis, waitMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  if (!['wait', 'connecting', 'connect'].includes(redis.status)) return false;
  return new Promise<boolean>((resolve) => {
    const settle = (usable: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('close', onDown);
      resolve(usable);
    };
    const onReady = () => settle(true);
    const onDown = () => settle(false);
    const timer = setTimeout(() => settle(redis.status === 'ready'), waitMs);
    redis.once('ready', onReady);
    redis.once('close', onDown);
  });
}

/** Closes a connection politely when it is up, and at once when it is not (quit would wait or fail). */
export async function closeRedis(redis: Redis): Promise<void> {
  // A connection still being set up ignores disconnect(): let it finish (briefly) first.
  if (await isRedisUsable(redis, 1_000)) {
    try {
      await redis.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  redis.disconnect();
}
