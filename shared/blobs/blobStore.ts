import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import { S3BlobStore } from './s3BlobStore.js';

/**
 * Content the whole fleet reads, by key (SPEC section 18: workspace versions; section 20: uploaded files).
 * Keys name their owner (`workspaces/<sessionId>/…`) so that erasing the owner erases its content
 * with deletePrefix. BLOB_STORE picks the implementation: Postgres, the database runyard already
 * has, is the default and needs nothing more; `s3://bucket/prefix` is S3-compatible object storage
 * (shared/blobs/s3BlobStore.ts) for fleets that outgrow it.
 */
export interface BlobStore {
  put(key: string, data: Buffer): Promise<void>;
  /** The content, or null when there is none under the key. */
  get(key: string): Promise<Buffer | null>;
  delete(key: string): Promise<void>;
  /** Deletes every blob whose key starts with `prefix`; how many. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Whether the content lives outside the database: then erasing its owner's rows does not erase it,
   * and whoever erases the owner deletes its prefix too (the Postgres store's rows go in the same transaction).
   */
  readonly external: boolean;
}

/** LIKE's wildcards in a key prefix, escaped (keys are ids and slashes, but a prefix must never match more than itself). */
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** BLOB_STORE=postgres: the `blobs` table (bytea; workspaces are archived compressed, one row per version). */
export class PostgresBlobStore implements BlobStore {
  readonly external = false;

  constructor(private readonly db: Db) {}

  async put(key: string, data: Buffer): Promise<void> {
    await this.db.$executeRaw`
      INSERT INTO blobs (key, data, size_bytes) VALUES (${key}, ${data}, ${data.length})
      ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, size_bytes = EXCLUDED.size_bytes, created_at = now()`;
  }

  async get(key: string): Promise<Buffer | null> {
    const [row] = await this.db.$queryRaw<{ data: Uint8Array }[]>`SELECT data FROM blobs WHERE key = ${key}`;
    return row ? Buffer.from(row.data) : null;
  }

  async delete(key: string): Promise<void> {
    await this.db.$executeRaw`DELETE FROM blobs WHERE key = ${key}`;
  }

  async deletePrefix(prefix: string): Promise<number> {
    return this.db.$executeRaw`DELETE FROM blobs WHERE key LIKE ${likePrefix(prefix)}`;
  }
}

type BlobConfig = Pick<Config, 'BLOB_STORE' | 'S3_ENDPOINT' | 'S3_REGION' | 'S3_FORCE_PATH_STYLE' | 'S3_ACCESS_KEY_ID' | 'S3_SECRET_ACCESS_KEY'>;

/** One client per process and configuration (an S3 client keeps its connections). */
const s3Stores = new Map<string, S3BlobStore>();

export function createBlobStore(config: BlobConfig, db: Db): BlobStore {
  if (config.BLOB_STORE === 'postgres') return new PostgresBlobStore(db);
  const id = JSON.stringify([config.BLOB_STORE, config.S3_ENDPOINT, config.S3_REGION, config.S3_FORCE_PATH_STYLE, config.S3_ACCESS_KEY_ID]);
  let store = s3Stores.get(id);
  if (!store) {
    store = S3BlobStore.fromConfig(config);
    s3Stores.set(id, store);
  }
  return store;
}
