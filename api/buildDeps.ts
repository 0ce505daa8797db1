import { createBlobStore } from '../shared/blobs/createBlobStore.js';
import type { Config } from '../shared/infra/config.js';
import { createDatabase } from '../shared/infra/db.js';
import type { Logger } from '../shared/infra/logger.js';
import { closeRedis, createRedis } from '../shared/infra/redis.js';
import { openMaintenanceQueue, RunQueues } from '../shared/infra/runQueues.js';
import type { ApiDeps } from './deps.js';
import { IdempotencyStore } from './http/idempotency.js';
import { KeyResolver } from './http/keyResolver.js';
import { RunProvisioner } from '../shared/runs/provisioning.js';
import { RunAdmission } from '../shared/flow/runAdmission.js';
import { createApiMetrics } from './http/metrics.js';
import { StreamHub } from './streams/streamHub.js';
import { applyDefaultLimitsWhenReachable } from '../shared/accounts/usageLimits.js';
import { parseDefaultLimits } from '../shared/accounts/defaultLimits.js';
import { startCatalogueRefresh } from '../shared/agent/modelCatalogue.js';
import { StreamLeases } from './streams/streamLeases.js';
import { SchemaChecker } from '../shared/agent/toolSchemas/schemaChecker.js';

export type ApiRuntime = { deps: ApiDeps; close: () => Promise<void> };

/**
 * Connects the api to Postgres and Redis. Redis connections: one for commands, one for stream
 * notifications (on a cluster: one of each per master), however many streams it serves.
 */
export function buildApiDeps(config: Config, logger: Logger): ApiRuntime {
  const database = createDatabase(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
  const { db, sql } = database;
  const redis = createRedis(config, 'producer', 'runyard-api');
  const subscriber = createRedis(config, 'subscriber', 'runyard-api-sub');
  const prefix = config.QUEUE_PREFIX;
  const runQueues = new RunQueues(redis, prefix, config.QUEUE_SHARDS);
  const maintenanceQueue = openMaintenanceQueue(redis, prefix);
  const queues = [...runQueues.all, maintenanceQueue];
  for (const queue of queues) queue.on('error', (err) => logger.warn('queue error', { queue: queue.name, error: err.message }));
  const metrics = createApiMetrics(
    () => queues,
    async () => deps.admission.fair?.stats(),
  );
  const deps: ApiDeps = {
    config,
    db,
    sql,
    redis,
    runQueues,
    queues,
    logger,
    keys: new KeyResolver(db, config.API_KEY_CACHE_MS, logger),
    provisioner: new RunProvisioner(sql, config.ACCOUNT_MAX_ACTIVE_RUNS, (size) => metrics.statementBatchSize.observe({ statement: 'provision_runs' }, size)),
    admission: new RunAdmission({ redis, runQueues, config, db, logger, metrics }),
    idempotency: new IdempotencyStore(redis, prefix),
    streams: new StreamHub(redis, subscriber, { prefix, maxEvents: config.RUN_STREAM_MAX_EVENTS, ttlMs: config.RUN_STREAM_TTL_MS }, logger),
    streamLeases: new StreamLeases(redis, prefix, config.STREAMS_PER_KEY, config.SSE_KEEPALIVE_MS, logger),
    metrics,
    schemas: new SchemaChecker(config.TOOL_SCHEMA_TIMEOUT_MS),
    blobs: createBlobStore(config, db),
  };
  const stopCatalogue = startCatalogueRefresh(db, logger);
  // DEFAULT_LIMITS where the database's limit checks read them (workers write the same at their start).
  const stopDefaultLimits = applyDefaultLimitsWhenReachable(db, parseDefaultLimits(config.DEFAULT_LIMITS), logger);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const steps: (() => Promise<unknown>)[] = [
        async () => stopCatalogue(),
        async () => stopDefaultLimits(),
        () => runQueues.close(),
        () => maintenanceQueue.close(),
        () => closeRedis(redis),
        () => closeRedis(subscriber),
        () => database.close(),
        () => deps.schemas.close(),
      ];
      for (const step of steps) {
        await Promise.resolve()
          .then(step)
          .catch((err: Error) => logger.warn('api shutdown step failed', { error: err.message }));
      }
    })();
    return closing;
  };
  return { deps, close };
}
