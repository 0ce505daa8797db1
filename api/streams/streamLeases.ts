import { randomUUID } from 'node:crypto';
import { AppError } from '../../shared/infra/errors.js';
import { isRedisUsable, withScript, type RedisClient, luaScript } from '../../shared/infra/redis.js';
import type { Logger } from '../../shared/infra/logger.js';

/**
 * Takes a lease for one open stream when the key holds fewer than ARGV[3] live ones: expired leases
 * (an api process that died with streams open) are dropped first. 1 when taken, else 0.
 */
const ACQUIRE = luaScript('acquireStreamLease');

const RENEW = luaScript('renewStreamLease');

type LeaseCommands = {
  runyardAcquireStreamLease(key: string, now: number, until: number, limit: number, member: string, ttlMs: number): Promise<number>;
  runyardRenewStreamLease(key: string, until: number, member: string, ttlMs: number): Promise<number>;
};

const REDIS_WAIT_MS = 500;

export type StreamLease = { renew(): void; release(): void };

const NO_LEASE: StreamLease = { renew: () => {}, release: () => {} };

export const tooManyStreams = (limit: number) =>
  new AppError(
    'too_many_streams',
    429,
    `This key already holds ${limit} open streams (STREAMS_PER_KEY).`,
    'Close streams you no longer read (each EventSource holds one), or mint a stream token per page; retry after the Retry-After delay.',
    { retryAfterSeconds: 5 },
  );

/**
 * STREAMS_PER_KEY (SPEC section 3): the open streams of one key, counted across the api fleet in
 * Redis as leases (a sorted set of stream → lease end per key), renewed with each keep-alive and
 * dropped when the stream closes; a lease whose api process died runs out on its own. When Redis
 * is unreachable streams are not counted (they cannot be read then either).
 */
export class StreamLeases {
  private readonly redis: RedisClient & LeaseCommands;
  private readonly leaseMs: number;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly limit: number,
    keepAliveMs: number,
    private readonly logger: Logger,
  ) {
    withScript(redis, 'runyardAcquireStreamLease', 1, ACQUIRE);
    this.redis = withScript<LeaseCommands>(redis, 'runyardRenewStreamLease', 1, RENEW);
    this.leaseMs = Math.max(60_000, keepAliveMs * 4);
  }

  /** A lease for a stream the key `holder` opens, or throws 429 too_many_streams. */
  async acquire(holder: string): Promise<StreamLease> {
    if (!(await isRedisUsable(this.redis, REDIS_WAIT_MS))) return NO_LEASE;
    const key = `${this.prefix}:streams:{${holder}}`;
    const member = randomUUID();
    const now = Date.now();
    let taken: number;
    try {
      taken = await this.redis.runyardAcquireStreamLease(key, now, now + this.leaseMs, this.limit, member, this.leaseMs);
    } catch (err) {
      this.logger.warn('could not count an open stream', { error: (err as Error).message });
      return NO_LEASE;
    }
    if (!taken) throw tooManyStreams(this.limit);
    const quietly = (work: Promise<unknown>) => void work.catch((err: Error) => this.logger.warn('stream lease', { error: err.message }));
    return {
      renew: () => quietly(this.redis.runyardRenewStreamLease(key, Date.now() + this.leaseMs, member, this.leaseMs)),
      release: () => quietly(this.redis.zrem(key, member)),
    };
  }
}
