import type { Db } from '../infra/db.js';
import type { BlobStore } from './blobStore.js';

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
