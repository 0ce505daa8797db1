import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';

/** A connection to one Redis node or to a Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisClient = Redis | Cluster;
export type RedisTarget = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>;

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

/**
 * The cluster client's options for a role. Subscribers use one connection per master for sharded
 * pub/sub (SSUBSCRIBE); the producer fails fast like its single-node twin, and retries a command
 * briefly across a failover (MOVED, CLUSTERDOWN, a refused master) within its command timeout.
 */
export function clusterOptions(role: RedisRole, name?: string): ClusterOptions {
  const { retryStrategy, enableOfflineQueue, ...perNode } = redisOptions(role);
  return {
    redisOptions: { ...perNode, connectionName: name },
    clusterRetryStrategy: retryStrategy,
    enableOfflineQueue,
    shardedSubscribers: role === 'subscriber',
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    slotsRefreshTimeout: 2_000,
  };
}

export function createRedis(target: RedisTarget, role: RedisRole, name?: string): RedisClient {
  const redis: RedisClient =
    target.REDIS_CLUSTER_NODES.length > 0
      ? new Cluster(target.REDIS_CLUSTER_NODES.map(parseNode), clusterOptions(role, name))
      : new Redis(target.REDIS_URL, { ...redisOptions(role), connectionName: name, lazyConnect: false });
  // Connection errors are reported by readiness checks and by the commands that fail; an
  // unhandled 'error' event would otherwise crash the process.
  redis.on('error', () => {});
  return redis;
}

function parseNode(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
}

export const isCluster = (redis: RedisClient): redis is Cluster => redis instanceof Cluster;

/**
 * Pub/sub that scales with the cluster: sharded channels (SPUBLISH/SSUBSCRIBE, delivered only by
 * the shard that owns the channel's slot) on a cluster, classic channels on a single node (which
 * may be older than Redis 7).
 */
export const pubsub = {
  publishCommand: (redis: RedisClient): 'SPUBLISH' | 'PUBLISH' => (isCluster(redis) ? 'SPUBLISH' : 'PUBLISH'),
  publish: (redis: RedisClient, channel: string, message: string): Promise<number> =>
    isCluster(redis) ? (redis.spublish(channel, message) as Promise<number>) : redis.publish(channel, message),
  subscribe: (redis: RedisClient, channel: string): Promise<unknown> => (isCluster(redis) ? redis.ssubscribe(channel) : redis.subscribe(channel)),
  unsubscribe: (redis: RedisClient, channel: string): Promise<unknown> => (isCluster(redis) ? redis.sunsubscribe(channel) : redis.unsubscribe(channel)),
  onMessage: (redis: RedisClient, handler: (channel: string, message: string) => void): void => {
    redis.on(isCluster(redis) ? 'smessage' : 'message', handler);
  },
};

const scripts = new Map<string, string>();

const readLua = (relative: string) => readFileSync(new URL(`../lua/${relative}.lua`, import.meta.url), 'utf8');

/**
 * A Lua script of shared/lua/ by its file's name: one file per move, read once per process, each
 * `--@include <name>` line replaced by shared/lua/includes/<name>.lua (what several moves share).
 * Every script is registered with withScript.
 */
export function luaScript(name: string): string {
  let lua = scripts.get(name);
  if (lua === undefined) {
    lua = readLua(name).replace(/^--@include (\w+)$/gm, (_line, include: string) => readLua(`includes/${include}`));
    scripts.set(name, lua);
  }
  return lua;
}

/**
 * Registers a Lua script as the command `name` on the connection (once; later calls reuse it) and
 * returns the connection typed with that command. ioredis runs it by EVALSHA and loads it into a
 * Redis that does not have it yet.
 */
export function withScript<Command>(redis: RedisClient, name: string, numberOfKeys: number, lua: string): RedisClient & Command {
  if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
  return redis as RedisClient & Command;
}

/**
 * Whether the connection can take a command now. A connection in the middle of connecting (a
 * process that just started, or a reconnect under way) gets up to `waitMs` to finish; one that is
 * down answers false at once, so callers can fail fast instead of hanging.
 */
export async function isRedisUsable(redis: RedisClient, waitMs: number): Promise<boolean> {
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
export async function closeRedis(redis: RedisClient): Promise<void> {
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

/** Deletes every key matching `pattern` (SCAN, then UNLINK in slices), on each master of a cluster; how many. */
export async function deleteMatching(redis: RedisClient, pattern: string): Promise<number> {
  const nodes: Redis[] = isCluster(redis) ? redis.nodes('master') : [redis];
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      // One key at a time: on a cluster the keys of one SCAN page may lie in different slots.
      for (const key of keys) deleted += await node.unlink(key);
    } while (cursor !== '0');
  }
  return deleted;
}
