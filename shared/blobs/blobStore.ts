/**
 * Content the whole fleet reads, by key (SPEC section 18: workspace versions; section 20: uploaded files).
 * Keys name their owner (`workspaces/<sessionId>/…`) so that erasing the owner erases its content
 * with deletePrefix. BLOB_STORE picks the implementation (createBlobStore.ts): Postgres, the database runyard already
 * has, is the default and needs nothing more (postgresBlobStore.ts); `s3://bucket/prefix` is S3-compatible object storage
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
