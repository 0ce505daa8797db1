import type { RedisClient } from '../shared/infra/redis.js';
import type { RunQueues } from '../shared/infra/runQueues.js';
import type { RunAdmission } from '../shared/flow/runAdmission.js';
import type { ModelRateLimiter } from '../shared/flow/modelRateLimits.js';
import type { Config } from '../shared/infra/config.js';
import type { Db } from '../shared/infra/db.js';
import type { Sql } from '../shared/infra/sql.js';
import type { Logger } from '../shared/infra/logger.js';
import type { Metrics } from '../shared/infra/metrics.js';
import type { ActiveRuns } from './fleet/activeRuns.js';
import type { ProviderRegistry } from './providers/index.js';
import type { RunStore } from './attempt/runStore.js';
import type { StepStore } from './attempt/stepStore.js';
import type { SchemaChecker } from '../shared/agent/toolSchemas/schemaChecker.js';
import type { ModelCallLedger } from './attempt/modelCallLedger.js';
import type { WorkspaceManager } from './workspaces/workspaceManager.js';
import type { AttachmentLoader } from './agent/attachments.js';
import type { ContextWindows } from '../shared/agent/contextWindows.js';

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
  /** Puts run jobs in line (the fair scheduler) and hears what this worker does with them. */
  admission: RunAdmission;
  /** Fleet-wide model capacity (MODEL_RATE_LIMITS) and provider 429 pauses. */
  rateLimits: ModelRateLimiter;
  logger: Logger;
  metrics: Metrics;
  providers: ProviderRegistry;
  active: ActiveRuns;
  workerId: string;
  /** The base URL a run's tools use to call back into runyard with the run's key. */
  apiBaseUrl: string;
  /** Checks tool inputs against their schemas off the event loop, within bounds. */
  schemas: SchemaChecker;
  /** Each model's context window (null: unknown), for compaction. */
  contextWindows: ContextWindows;
  /** The model call each run has in flight, so a worker killed mid-call does not escape accounting. */
  calls: ModelCallLedger;
  /** Attachment bytes for model requests, within ATTACHMENT_BYTES_IN_FLIGHT_MB (SPEC section 20). */
  attachments: AttachmentLoader;
  /** Workspaces (SPEC section 18); undefined when this machine has no sandbox (WORKSPACE_DRIVER). */
  workspaces?: { manager: WorkspaceManager };
};
