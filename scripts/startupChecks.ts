import { migrateDatabase, type MigrateResult } from '../shared/infra/migrate.js';
import { closeRedis, createRedis, isRedisUsable, type RedisTarget } from '../shared/infra/redis.js';

/** A dependency that could not be reached at start-up, said so a newcomer knows what to check. */
export class UnreachableDependency extends Error {
  override name = 'UnreachableDependency';
}

const hostOf = (url: string) => {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || (parsed.protocol.startsWith('postgres') ? 5432 : 6379)}`;
  } catch {
    return url;
  }
};

const causeOf = (err: unknown): string => {
  const code = (err as { code?: string })?.code;
  const message = (err instanceof Error ? err.message.split('\n')[0] : String(err)) || 'unknown error';
  return code && !message.includes(code) ? `${code}: ${message}` : message;
};

/** Creates and migrates the database; a connection failure names the server, the variable and what to check. */
export async function migrateOrExplain(databaseUrl: string): Promise<MigrateResult> {
  try {
    return await migrateDatabase(databaseUrl);
  } catch (err) {
    const code = (err as { code?: string })?.code;
    if (code === undefined || !/^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|28P01|28000|3D000)$/.test(code)) throw err;
    throw new UnreachableDependency(
      `cannot reach Postgres at ${hostOf(databaseUrl)} (DATABASE_URL) — ${causeOf(err)}. ` +
        'Check that Postgres is running and listening there, and that DATABASE_URL names the right host, port, user and password.',
      { cause: err },
    );
  }
}

/** Pings Redis (one node or a cluster) within `waitMs`; otherwise says which and what to check. */
export async function checkRedisOrExplain(target: RedisTarget, waitMs = 5_000): Promise<void> {
  const redis = createRedis(target, 'producer', 'runyard-startup-check');
  try {
    if (await isRedisUsable(redis, waitMs)) return;
    const where =
      target.REDIS_CLUSTER_NODES.length > 0
        ? `the Redis Cluster at ${target.REDIS_CLUSTER_NODES.join(',')} (REDIS_CLUSTER_NODES)`
        : `Redis at ${hostOf(target.REDIS_URL)} (REDIS_URL)`;
    throw new UnreachableDependency(
      `cannot reach ${where} within ${waitMs} ms. Check that Redis is running and listening there, and that the variable names the right host and port.`,
    );
  } finally {
    await closeRedis(redis).catch(() => {});
  }
}

/** The Node.js major this release is built and tested on (package.json `engines`). */
export const SUPPORTED_NODE_MAJOR = 22;

/** A warning when the running Node.js is older than `engines` says (it may work, but nothing here tests it), else undefined. */
export function oldNodeWarning(version = process.versions.node): string | undefined {
  const major = Number(version.split('.')[0]);
  if (major >= SUPPORTED_NODE_MAJOR) return undefined;
  return `runyard: Node.js ${version} is older than this release supports (>= ${SUPPORTED_NODE_MAJOR}; CI runs 24). It may work, but it is not tested: install Node.js 24 (the README's "Requirements" says how).`;
}
