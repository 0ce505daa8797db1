import { findKeyByRaw, type ApiKeyRow } from '../../shared/accounts/apiKeys.js';
import { recordKeyUse } from '../../shared/accounts/apiKeys.js';
import type { Db } from '../../shared/infra/db.js';
import { hashesEqual, hashKey, looksLikeKey } from '../../shared/accounts/keys.js';
import type { Logger } from '../../shared/infra/logger.js';

const MAX_CACHED = 10_000;
const MAX_UNKNOWN_CACHED = 1_000;
const LAST_USED_EVERY_MS = 60_000;

/**
 * Looks API keys up by their SHA-256 hash, with a short in-process cache: a revoked key stops
 * working within `cacheMs` on every api instance. `lastUsedAt` is written at most once a minute
 * per key, off the request path.
 */
export class KeyResolver {
  private readonly cache = new Map<string, { row: ApiKeyRow | null; at: number }>();
  /** Unknown keys apart, and fewer: a flood of made-up keys cannot evict the known ones. */
  private readonly unknown = new Map<string, number>();
  private readonly lastUsedWritten = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly cacheMs: number,
    private readonly logger: Logger,
  ) {}

  async resolve(raw: string): Promise<ApiKeyRow | null> {
    if (!looksLikeKey(raw)) return null;
    const hash = hashKey(raw);
    const now = Date.now();
    const unknownAt = this.unknown.get(hash);
    if (unknownAt !== undefined && now - unknownAt < this.cacheMs) return null;
    const cached = this.cache.get(hash);
    let row = cached && now - cached.at < this.cacheMs ? cached.row : undefined;
    if (row === undefined) {
      row = await findKeyByRaw(this.db, raw);
      if (!row) {
        if (this.unknown.size >= MAX_UNKNOWN_CACHED) this.unknown.delete(this.unknown.keys().next().value as string);
        this.unknown.set(hash, now);
        return null;
      }
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(hash, { row, at: now });
    }
    if (!row || row.revokedAt || row.mintedBy?.revokedAt || (row.expiresAt && row.expiresAt.getTime() <= now)) return null;
    // The lookup was by hash; compare once more in constant time as a guard against index surprises.
    if (!hashesEqual(row.hash, hash)) return null;
    this.touch(row.id, now);
    return row;
  }

  private touch(id: string, now: number) {
    const last = this.lastUsedWritten.get(id) ?? 0;
    if (now - last < LAST_USED_EVERY_MS) return;
    this.lastUsedWritten.set(id, now);
    if (this.lastUsedWritten.size > MAX_CACHED) this.lastUsedWritten.clear();
    recordKeyUse(this.db, id, new Date(now)).catch((err: Error) => this.logger.warn('could not record key use', { keyId: id, error: err.message }));
  }
}
