import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import type { BlobStore } from './blobStore.js';
import { PostgresBlobStore } from './postgresBlobStore.js';
import { S3BlobStore } from './s3BlobStore.js';

type BlobConfig = Pick<Config, 'BLOB_STORE' | 'S3_ENDPOINT' | 'S3_REGION' | 'S3_FORCE_PATH_STYLE' | 'S3_ACCESS_KEY_ID' | 'S3_SECRET_ACCESS_KEY'>;

/** One client per process and configuration (an S3 client keeps its connections). */
const s3Stores = new Map<string, S3BlobStore>();

/** The store BLOB_STORE names: `postgres`, or `s3://bucket/prefix`. */
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
