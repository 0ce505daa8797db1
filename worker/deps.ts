import type { RedisClient } from '../shared/redis.js';
import type { RunQueues } from '../shared/runQueues.js';
import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import type { Sql } from '../shared/sql.js';
import type { Logger } from '../shared/logger.js';
import type { Metrics } from '../shared/metrics.js';
import type { ActiveRuns } from './activeRuns.js';
import type { ProviderRegistry } from './providers/index.js';
import type { RunStore } from './runStore.js';
import type { StepStore } from './stepStore.js';
import type { SchemaChecker } from '../shared/toolSchemas/schemaChecker.js';

export type WorkerDeps = {
  config: Config;
  db: Db;
  /** The same pool as `db`, for prepared statements outside the store (ending a run no attempt holds). */
  sql: Sql;
  /** Run state reads and writes, batched across this worker's concurrent runs. */
  store: RunStore;
  /** The agent loop's durable steps. */
  steps: StepStore;
  /** Commands: event appends, fences. Reconnects forever. */
  redis: RedisClient;
  runQueues: RunQueues;
  logger: Logger;
  metrics: Metrics;
  providers: ProviderRegistry;
  active: ActiveRuns;
  workerId: string;
  /** The base URL a run's tools use to call back into runyard with the run's key. */
  apiBaseUrl: string;
  /** Checks tool inputs against their schemas off the event loop, within bounds. */
  schemas: SchemaChecker;
};
