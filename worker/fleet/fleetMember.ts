import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Config } from '../../shared/infra/config.js';
import { createDatabase } from '../../shared/infra/db.js';
import type { Logger } from '../../shared/infra/logger.js';
import { createMetrics } from '../../shared/infra/metrics.js';
import { RETENTION_JOB_NAME, RETENTION_SCHEDULER_ID, SWEEP_JOB_NAME, SWEEP_SCHEDULER_ID } from '../../shared/infra/queue.js';
import { RUN_BACKOFF_TYPE, runBackoffDelay } from '../../shared/runs/runJob.js';
import { SchemaChecker } from '../../shared/agent/toolSchemas/schemaChecker.js';
import { closeRedis, createRedis } from '../../shared/infra/redis.js';
import { openMaintenanceQueue, RunQueues } from '../../shared/infra/runQueues.js';
import { RunError } from '../../shared/infra/errors.js';
import { ActiveRuns } from './activeRuns.js';
import { ModelCallLedger } from '../attempt/modelCallLedger.js';
import { applyDefaultLimitsWhenReachable } from '../../shared/accounts/usageLimits.js';
import { parseDefaultLimits } from '../../shared/accounts/defaultLimits.js';
import { startCatalogueRefresh } from '../../shared/agent/modelCatalogue.js';
import type { Db } from '../../shared/infra/db.js';
import type { Sql } from '../../shared/infra/sql.js';
import os from 'node:os';
import path from 'node:path';
import { AttachmentLoader } from '../agent/attachments.js';
import { createBlobStore } from '../../shared/blobs/createBlobStore.js';
import { findExecutable } from '../../shared/workspaces/workspaceRequest.js';
import { BwrapDriver } from '../workspaces/sandbox.js';
import { WorkspaceManager } from '../workspaces/workspaceManager.js';
import type { WorkerDeps } from '../deps.js';
import { createRunProcessor, streamOptions } from '../attempt/processRun.js';
import { StepStore } from '../attempt/stepStore.js';
import { WebhookDispatcher } from '../outbox/webhookDispatcher.js';
import { RunStore } from '../attempt/runStore.js';
import { createProviderRegistry } from '../providers/index.js';
import { contextWindows } from '../../shared/agent/contextWindows.js';
import { sweepStaleRuns } from './sweep.js';
import { PromotionDispatcher } from '../outbox/promotionDispatcher.js';
import { OutboxNotifications } from '../outbox/outboxNotifications.js';
import { TitleDispatcher } from '../outbox/titleDispatcher.js';
import { chatEventDispatcher } from '../outbox/chatEventDispatcher.js';
import { pruneExpiredChats } from '../../shared/runs/retention.js';
import { createRunWorkers } from './shardWorkers.js';
import { RunAdmission } from '../../shared/flow/runAdmission.js';
import { AdmissionReports } from './admissionReports.js';
import { ModelRateLimiter, parseModelRateLimits } from '../../shared/flow/modelRateLimits.js';

export type FleetMember = {
  deps: WorkerDeps;
  /** One worker per run queue shard, all within one WORKER_CONCURRENCY budget. */
  runWorkers: Worker[];
  /** Stops taking jobs, lets running ones finish for up to `graceMs`, then hands the rest back. Safe to call twice. */
  close: (graceMs?: number) => Promise<void>;
};

// Claims and completions of concurrent runs share statements: up to 50 runs in one, one statement of
// each kind in flight at a time, per account for completions (the calls that arrive meanwhile make
// the next one).
const STATEMENT_BATCHING = { maxBatch: 50, concurrency: 1 };

/**
 * Workspaces on this worker (SPEC section 18), or undefined when the machine has no sandbox: with
 * WORKSPACE_DRIVER=auto and no bubblewrap, one log line says how to turn them on.
 */
function startWorkspaces(config: Config, deps: { db: Db; sql: Sql; logger: Logger }, workerId: string): WorkerDeps['workspaces'] {
  if (config.WORKSPACE_DRIVER === 'off') return undefined;
  const bwrap = findExecutable('bwrap');
  if (!bwrap) {
    if (config.WORKSPACE_DRIVER === 'bwrap') throw new Error('WORKSPACE_DRIVER=bwrap but bubblewrap (bwrap) is not installed: apt-get install bubblewrap');
    deps.logger.info('workspaces are off: bubblewrap (bwrap) is not installed; install it (Debian: apt-get install bubblewrap) to turn them on');
    return undefined;
  }
  const blobs = createBlobStore(config, deps.db);
  const base = config.WORKSPACE_DIR ?? path.join(os.tmpdir(), 'runyard-workspaces');
  const driver = new BwrapDriver(bwrap, path.join(base, `.sockets-${process.pid}`), deps.logger);
  return { manager: new WorkspaceManager({ ...deps, blobs, config }, driver, workerId) };
}

/** One worker process's share of the fleet: the run worker, the sweep worker, heartbeats, cancel listener. */
export async function startFleetMember(config: Config, logger: Logger): Promise<FleetMember> {
  const workerId = config.WORKER_ID ?? `${hostname()}:${process.pid}`;
  const database = createDatabase(config.DATABASE_URL, Math.max(config.DATABASE_POOL_SIZE, Math.min(config.WORKER_CONCURRENCY + 2, 50)));
  const { db, sql } = database;
  const redis = createRedis(config, 'worker', `runyard-worker-${workerId}`);
  const subscriber = createRedis(config, 'subscriber', `runyard-worker-sub-${workerId}`);
  const prefix = config.QUEUE_PREFIX;
  const runQueues = new RunQueues(redis, prefix, config.QUEUE_SHARDS);
  const maintenanceQueue = openMaintenanceQueue(redis, prefix);
  const metrics = createMetrics('worker');
  const store = new RunStore(sql, workerId, STATEMENT_BATCHING, (statement, size) => metrics.statementBatchSize.observe({ statement }, size));
  const active = new ActiveRuns(store, logger);
  const admission = new RunAdmission({ redis, runQueues, config, db, logger, metrics });
  const reports = new AdmissionReports(admission, workerId, config.WORKER_CONCURRENCY);
  const deps: WorkerDeps = {
    config,
    db,
    sql,
    store,
    steps: new StepStore(sql),
    redis,
    runQueues,
    admission,
    rateLimits: new ModelRateLimiter(redis, prefix, parseModelRateLimits(config.MODEL_RATE_LIMITS), config.MODEL_RATE_LIMIT_WINDOW_MS),
    logger,
    metrics,
    providers: createProviderRegistry(config),
    active,
    workerId,
    apiBaseUrl: config.PUBLIC_BASE_URL ?? `http://127.0.0.1:${config.PORT}`,
    schemas: new SchemaChecker(config.TOOL_SCHEMA_TIMEOUT_MS),
    contextWindows: contextWindows(config),
    calls: new ModelCallLedger(redis, sql, prefix, logger),
    attachments: new AttachmentLoader({ db, blobs: createBlobStore(config, db), metrics }, config.ATTACHMENT_BYTES_IN_FLIGHT_MB * 1_048_576),
    workspaces: startWorkspaces(config, { db, sql, logger }, workerId),
  };

  const stopCatalogue = startCatalogueRefresh(db, logger);
  // DEFAULT_LIMITS where the database's limit checks read them (SPEC section 21); a worker starts while Postgres is away.
  const stopDefaultLimits = applyDefaultLimitsWhenReachable(db, parseDefaultLimits(config.DEFAULT_LIMITS), logger);
  const runWorkers = createRunWorkers(
    runQueues.all.map((queue) => queue.name),
    reports.wrap(createRunProcessor(deps)),
    {
      connection: redis,
      prefix,
      lockDuration: config.RUN_LOCK_MS,
      maxStalledCount: config.RUN_MAX_STALLS,
      stalledInterval: Math.max(1_000, Math.floor(config.RUN_LOCK_MS / 2)),
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string, err?: Error) =>
          type === RUN_BACKOFF_TYPE
            ? runBackoffDelay(attemptsMade, config.RUN_RETRY_BASE_MS, err instanceof RunError ? err.retryAfterMs : undefined)
            : config.RUN_RETRY_BASE_MS,
      },
    },
    config.WORKER_CONCURRENCY,
  );
  for (const runWorker of runWorkers) {
    runWorker.on('stalled', (jobId) => {
      metrics.stalls.inc();
      logger.warn('job stalled; it will be picked up again', { runId: jobId, jobId });
    });
    runWorker.on('lockRenewalFailed', (jobIds: string[]) => {
      for (const jobId of jobIds) active.stop(jobId, 'lost');
    });
    runWorker.on('failed', (job: Job | undefined, err: Error) => {
      if (job && /stalled more than allowable limit/i.test(err.message)) {
        logger.error('job stalled too often; the sweep will fail the run and clean up', { runId: job.id });
      }
    });
    runWorker.on('error', (err) => logger.error('run worker error', { error: err.message }));
    runWorker.on('active', () => metrics.activeRuns.set(active.size + 1));
    runWorker.on('completed', () => metrics.activeRuns.set(active.size));
  }

  const sweepWorker = new Worker(
    maintenanceQueue.name,
    // The fleet-wide maintenance jobs, one at a time on one worker: the sweep, and retention.
    async (job) => {
      if (job.name === RETENTION_JOB_NAME) {
        const report = await pruneExpiredChats({ db, redis, admission, config, metrics });
        if (report.chatsDeleted || report.filesDeleted) logger.info('retention erased expired chats and unattached files', report);
        return report;
      }
      return sweepStaleRuns({ config, db, sql, runQueues, admission, logger, metrics, redis, streamOptions: streamOptions(deps) });
    },
    {
      connection: redis,
      prefix,
      concurrency: 1,
    },
  );
  sweepWorker.on('error', (err) => logger.error('sweep worker error', { error: err.message }));
  // Every worker keeps the one fleet-wide schedule in place (upsert is idempotent), so the sweep
  // comes back by itself after Redis lost its data — which is exactly when it is needed most.
  const ensureSweepScheduled = () =>
    Promise.all([
      maintenanceQueue.upsertJobScheduler(
        SWEEP_SCHEDULER_ID,
        { every: config.RUN_SWEEP_EVERY_MS },
        { name: SWEEP_JOB_NAME, opts: { removeOnComplete: 50, removeOnFail: 50 } },
      ),
      maintenanceQueue.upsertJobScheduler(
        RETENTION_SCHEDULER_ID,
        { every: config.RETENTION_EVERY_MS },
        { name: RETENTION_JOB_NAME, opts: { removeOnComplete: 50, removeOnFail: 50 } },
      ),
    ]);
  await ensureSweepScheduled();
  const scheduleKeeper = setInterval(() => {
    ensureSweepScheduled().catch((err: Error) => logger.warn('could not ensure the sweep schedule', { error: err.message }));
  }, config.RUN_SWEEP_EVERY_MS);
  scheduleKeeper.unref();

  active.start(Math.max(500, Math.floor(config.RUN_LOCK_MS / 2)), subscriber, prefix);
  deps.rateLimits.listen(subscriber, (err) => logger.error('cannot listen for model pauses', { error: err.message }));
  const webhooks = new WebhookDispatcher({ sql, db, config, logger, metrics });
  webhooks.start();
  const promotions = new PromotionDispatcher({ db, sql, config, admission, logger });
  promotions.start();
  const titles = new TitleDispatcher({ sql, config, logger, providers: deps.providers });
  titles.start();
  const chatEvents = chatEventDispatcher({ db, sql, redis, config, logger });
  chatEvents.start();
  const notifications = new OutboxNotifications(config.DATABASE_URL, logger)
    .on('chat_event_outbox', () => chatEvents.wake())
    .on('webhook_events', () => webhooks.wake())
    .on('pending_run_jobs', () => promotions.wake())
    .on('chat_title_jobs', () => titles.wake());
  notifications.start();
  reports.start();
  logger.info('worker started', { workerId, concurrency: config.WORKER_CONCURRENCY, shards: runWorkers.length, lockMs: config.RUN_LOCK_MS });

  let closing: Promise<void> | undefined;
  const close = (graceMs = config.SHUTDOWN_GRACE_MS) => {
    closing ??= (async () => {
      logger.info('worker shutting down', { graceMs, running: active.size });
      clearInterval(scheduleKeeper);
      reports.stop();
      const grace = setTimeout(() => active.stopAll('shutdown'), graceMs);
      const steps: [string, () => Promise<unknown>][] = [
        ['sweep worker', () => sweepWorker.close()],
        ['webhook dispatcher', () => webhooks.stop()],
        ['promotion dispatcher', () => promotions.stop()],
        ['outbox notifications', () => notifications.stop()],
        ['title dispatcher', () => titles.stop()],
        ['chat event dispatcher', () => chatEvents.stop()],
        ['run worker', () => Promise.all(runWorkers.map((runWorker) => runWorker.close()))],
        ['heartbeats', async () => active.close()],
        ['queues', () => Promise.all([runQueues.close(), maintenanceQueue.close()])],
        ['redis', () => Promise.all([closeRedis(redis), closeRedis(subscriber)])],
        ['default limits', async () => stopDefaultLimits()],
        ['database', () => database.close()],
        ['schema thread', () => deps.schemas.close()],
        ['model catalogue', async () => stopCatalogue()],
        ['workspaces', async () => deps.workspaces?.manager.close()],
      ];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (err) {
          logger.error('shutdown step failed', { step: name, error: (err as Error).message });
        }
        if (name === 'run worker') clearTimeout(grace);
      }
      logger.info('worker stopped');
    })();
    return closing;
  };
  return { deps, runWorkers, close };
}
