import type { Queue } from 'bullmq';
import type { RedisClient } from '../shared/infra/redis.js';
import type { RunQueues } from '../shared/infra/runQueues.js';
import type { Config } from '../shared/infra/config.js';
import type { Db } from '../shared/infra/db.js';
import type { Sql } from '../shared/infra/sql.js';
import type { Logger } from '../shared/infra/logger.js';
import type { ApiMetrics } from './http/metrics.js';
import type { IdempotencyStore } from './http/idempotency.js';
import type { KeyResolver } from './http/keyResolver.js';
import type { RunProvisioner } from '../shared/runs/provisioning.js';
import type { RunAdmission } from '../shared/flow/runAdmission.js';
import type { StreamHub } from './streams/streamHub.js';
import type { StreamLeases } from './streams/streamLeases.js';
import type { BlobStore } from '../shared/blobs/blobStore.js';
import type { SchemaChecker } from '../shared/agent/toolSchemas/schemaChecker.js';

/** Everything the api's routes and use cases need, built once by api/main.ts (or by a test). */
export type ApiDeps = {
  config: Config;
  db: Db;
  /** The same pool as `db`, for the hot path's prepared statements. */
  sql: Sql;
  /** Fail-fast connection for commands (rate limits, idempotency, stream reads). */
  redis: RedisClient;
  runQueues: RunQueues;
  /** Every runyard queue, for Bull Board and queue-depth metrics. */
  queues: Queue[];
  logger: Logger;
  keys: KeyResolver;
  provisioner: RunProvisioner;
  /** Puts run jobs in line: the fair scheduler, or the queues directly (SPEC section 15). */
  admission: RunAdmission;
  idempotency: IdempotencyStore;
  streams: StreamHub;
  /** STREAMS_PER_KEY: the open streams of each key, fleet-wide. */
  streamLeases: StreamLeases;
  metrics: ApiMetrics;
  /** Compiles the tools' input schemas off the event loop, within bounds. */
  schemas: SchemaChecker;
  /** Where workspace content and uploaded files are kept (BLOB_STORE). */
  blobs: BlobStore;
};
