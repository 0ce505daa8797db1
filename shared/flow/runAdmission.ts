import { Batcher } from '../infra/batcher.js';
import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import type { Logger } from '../infra/logger.js';
import type { Metrics } from '../infra/metrics.js';
import { RUN_JOB_NAME } from '../infra/queue.js';
import { runJobOptions, runJobSchema, type RunJobData } from '../runs/runJob.js';
import type { RedisClient } from '../infra/redis.js';
import type { RunQueues } from '../infra/runQueues.js';
import { FairQueue, queuePriority, type FlowOp, type Released } from './fairQueue.js';
import { priorityBand } from './priorities.js';

const SETTINGS_CACHE_MS = 5_000;

/**
 * The one way a run's job gets onto the run queues (SPEC section 15): a POST's run, a chat
 * message's, a continuation after requires_action, a replay, the sweep's re-queue of a lost job, a
 * queued message's promotion. With FAIR_SCHEDULING on (the default) the job waits in the fair
 * scheduler (FairQueue) and is released to its shard's BullMQ queue when its account's turn comes;
 * off, it is added at once, first in first out.
 *
 * Workers report each run job they start and end (`started`, `released`) and renew the runs they
 * hold (`beat`): that is what maxRunning counts. A process's operations go to Redis in batches (one
 * script call for many), and every call also releases whatever may start now, so a run ending on
 * any worker lets the next one through.
 */
export class RunAdmission {
  readonly fair: FairQueue | undefined;
  private readonly ops: Batcher<FlowOp, undefined>;
  private readonly direct: Batcher<RunJobData, undefined>;
  private readonly settings = new Map<string, { weight: number; maxRunning: number | null; at: number }>();

  constructor(private readonly deps: { redis: RedisClient; runQueues: RunQueues; config: Config; db: Db; logger: Logger; metrics?: Metrics }) {
    const { config, runQueues } = deps;
    this.fair = config.FAIR_SCHEDULING
      ? new FairQueue(deps.redis, config.QUEUE_PREFIX, { ahead: config.FLOW_RELEASE_AHEAD, leaseMs: flowLeaseMs(config) })
      : undefined;
    this.ops = new Batcher((ops) => this.apply(ops), { maxBatch: 500, concurrency: 1 });
    // Without the scheduler: the jobs of one shard that arrive together are added in one MULTI (BullMQ's addBulk).
    this.direct = new Batcher(
      async (jobs) => {
        await this.addJobs(jobs);
        return jobs.map(() => undefined);
      },
      {
        maxBatch: 50,
        concurrency: 1,
        key: (job) => job.runId,
        group: (job) => runQueues.forRun(job.runId).name,
        onBatch: (size) => deps.metrics?.statementBatchSize.observe({ statement: 'add_run_jobs' }, size),
      },
    );
  }

  /** Puts the run's job in line: resolves once Redis holds it (the scheduler's wait, or its queue). */
  async submit(job: RunJobData): Promise<void> {
    if (!this.fair) return this.direct.submit(job);
    const { weight, maxRunning } = await this.settingsOf(job.accountId);
    await this.ops.submit({
      op: 'submit',
      runId: job.runId,
      accountId: job.accountId,
      band: priorityBand(job.priority),
      weight,
      maxRunning,
      job: JSON.stringify(job),
    });
  }

  /** Submits within `timeoutMs`, or rejects (the caller undoes what it provisioned). */
  async submitWithin(job: RunJobData, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.submit(job),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('enqueue timed out')), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Queues a run's job again under its one job id (the run id): the finished job of its previous
   * attempt or episode is removed first (BullMQ keeps a finished job's id, and would not add it).
   */
  async requeue(job: RunJobData): Promise<void> {
    await (await this.deps.runQueues.forRun(job.runId).getJob(job.runId))?.remove();
    await this.submit(job);
  }

  /** A worker took the run's job. */
  started(job: RunJobData): void {
    this.report({ op: 'started', runId: job.runId, accountId: job.accountId });
  }

  /** The run's job is over for now (it ended, parked, or failed for good): its account's place is free. */
  released(job: RunJobData): void {
    this.report({ op: 'released', runId: job.runId, accountId: job.accountId });
  }

  /** A worker has `slots` job slots (0: it is leaving): runs are released to fill the fleet's free ones. */
  workerSlots(workerId: string, slots: number): void {
    this.report({ op: 'worker', workerId, slots });
  }

  /** The runs a worker holds are still running (their places stay counted). */
  beat(jobs: Iterable<RunJobData>): void {
    for (const job of jobs) this.report({ op: 'beat', runId: job.runId, accountId: job.accountId });
  }

  /** A run that will never need to start (cancelled while queued, erased, not provisioned after all): its job out of line and off the queue. */
  async withdraw(runId: string): Promise<void> {
    if (this.fair) await this.ops.submit({ op: 'withdraw', runId });
    await this.deps.runQueues.forRun(runId).remove(runId);
  }

  /** An account's weight or maxRunning changed: the scheduler uses the new values at once. */
  async settingsChanged(accountId: string, settings: { weight: number; maxRunning: number | null }): Promise<void> {
    this.settings.set(accountId, { ...settings, at: Date.now() });
    if (this.fair) await this.ops.submit({ op: 'settings', accountId, ...settings });
  }

  /** An erased account: the scheduler forgets it (its place, settings and anything of it still in line). */
  async forgetAccount(accountId: string): Promise<void> {
    this.settings.delete(accountId);
    if (this.fair) await this.ops.submit({ op: 'forget', accountId });
  }

  /** Whether the run's job is in the scheduler's hands (waiting, or released a moment ago and perhaps not yet on its queue): not lost. */
  async holds(runId: string): Promise<boolean> {
    return this.fair ? this.fair.holds(runId) : false;
  }

  private report(op: FlowOp): void {
    if (!this.fair) return;
    this.ops.submit(op).catch((err: Error) => this.deps.logger.warn('could not tell the fair scheduler', { op: op.op, error: err.message }));
  }

  private async apply(ops: FlowOp[]): Promise<undefined[]> {
    const released = await this.fair!.apply(ops);
    if (released.length > 0) await this.queueReleased(released);
    return ops.map(() => undefined);
  }

  /** Adds the released jobs to their shards' queues. Any the add misses stay runs without a job, which the sweep re-queues. */
  private async queueReleased(released: Released[]): Promise<void> {
    const now = Date.now();
    const jobs: RunJobData[] = [];
    const priorities = new Map<string, number>();
    for (const { job, submittedAt, virtualTime } of released) {
      const parsed = runJobSchema.safeParse(JSON.parse(job));
      if (!parsed.success) {
        this.deps.logger.error('dropped an unreadable job the fair scheduler released');
        continue;
      }
      jobs.push(parsed.data);
      priorities.set(parsed.data.runId, queuePriority(virtualTime));
      this.deps.metrics?.flowWait.observe(Math.max(0, now - submittedAt) / 1000);
    }
    await this.addJobs(jobs, priorities).catch((err: Error) =>
      this.deps.logger.error('could not queue released runs; the sweep will', { runs: jobs.length, error: err.message }),
    );
  }

  private async addJobs(jobs: RunJobData[], priorities?: Map<string, number>): Promise<void> {
    const byQueue = new Map<string, RunJobData[]>();
    for (const job of jobs) {
      const name = this.deps.runQueues.forRun(job.runId).name;
      byQueue.set(name, [...(byQueue.get(name) ?? []), job]);
    }
    await Promise.all(
      [...byQueue.values()].map((group) => {
        const queue = this.deps.runQueues.forRun(group[0]!.runId);
        const opts = (data: RunJobData) => ({ ...runJobOptions(this.deps.config, data.runId), priority: priorities?.get(data.runId) });
        if (group.length === 1) return queue.add(RUN_JOB_NAME, group[0]!, opts(group[0]!));
        return queue.addBulk(group.map((data) => ({ name: RUN_JOB_NAME, data, opts: opts(data) })));
      }),
    );
  }

  private async settingsOf(accountId: string): Promise<{ weight: number; maxRunning: number | null }> {
    const cached = this.settings.get(accountId);
    if (cached && Date.now() - cached.at < SETTINGS_CACHE_MS) return cached;
    const row = await this.deps.db.account.findUnique({ where: { id: accountId }, select: { weight: true, maxRunning: true } });
    const settings = { weight: row?.weight ?? 1, maxRunning: row?.maxRunning ?? null, at: Date.now() };
    if (this.settings.size > 10_000) this.settings.clear();
    this.settings.set(accountId, settings);
    return settings;
  }
}

/** How long a run counts for its account without news from its worker: several heartbeats. */
export const flowLeaseMs = (config: Pick<Config, 'RUN_LOCK_MS'>): number => Math.max(30_000, config.RUN_LOCK_MS * 3);
