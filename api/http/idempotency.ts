import { createHash } from 'node:crypto';
import type { RedisClient } from '../../shared/infra/redis.js';
import { AppError } from '../../shared/infra/errors.js';

const TTL_SECONDS = 24 * 3600;
const WAIT_FOR_FIRST_MS = 15_000;
const POLL_MS = 25;

type Stored<T> = { hash: string; response?: T };

export type IdempotencyClaim<T> = { kind: 'claimed'; complete: (response: T) => Promise<void>; release: () => Promise<void> } | { kind: 'replay'; response: T };

export const requestFingerprint = (body: unknown) => createHash('sha256').update(JSON.stringify(body)).digest('hex');

const keyReused = () =>
  new AppError(
    'idempotency_key_reused',
    422,
    'This Idempotency-Key was already used with a different request body.',
    'Use a new Idempotency-Key for a different request.',
  );

/**
 * Idempotency-Key handling backed by Redis: the first request claims the key with SET NX; a
 * concurrent duplicate waits for the first to finish and gets its response. A first request that
 * fails releases the key so that a retry can succeed.
 */
export class IdempotencyStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async claim<T>(accountId: string, key: string, fingerprint: string): Promise<IdempotencyClaim<T>> {
    // Tagged by account: on a cluster, accounts' records spread over the masters.
    const redisKey = `${this.prefix}:idempotency:{${accountId}}:${createHash('sha256').update(key).digest('hex')}`;
    const deadline = Date.now() + WAIT_FOR_FIRST_MS;
    for (;;) {
      const won = await this.redis.set(redisKey, JSON.stringify({ hash: fingerprint } satisfies Stored<T>), 'EX', TTL_SECONDS, 'NX');
      if (won) {
        return {
          kind: 'claimed',
          complete: async (response) => {
            await this.redis.set(redisKey, JSON.stringify({ hash: fingerprint, response } satisfies Stored<T>), 'EX', TTL_SECONDS);
          },
          release: async () => {
            await this.redis.del(redisKey);
          },
        };
      }
      const raw = await this.redis.get(redisKey);
      if (raw) {
        const stored = JSON.parse(raw) as Stored<T>;
        if (stored.hash !== fingerprint) throw keyReused();
        if (stored.response !== undefined) return { kind: 'replay', response: stored.response };
      }
      if (Date.now() > deadline) {
        throw new AppError(
          'idempotency_in_progress',
          409,
          'A request with this Idempotency-Key is still being processed.',
          'Retry shortly with the same key to get its result.',
          { retryAfterSeconds: 1 },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}
