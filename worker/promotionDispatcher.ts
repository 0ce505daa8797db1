import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../shared/infra/config.js';
import type { Db } from '../shared/infra/db.js';
import type { Logger } from '../shared/infra/logger.js';
import { RUN_JOB_NAME, runJobOptions } from '../shared/infra/queue.js';
import type { RunQueues } from '../shared/infra/runQueues.js';
import { takePromotedRuns } from '../shared/runs/promotedRuns.js';

const BATCH = 20;

/**
 * Queues the jobs of runs that queued messages became (SPEC section 12): every worker process polls
 * pending_run_jobs every CHAT_PROMOTION_POLL_MS (at once again while there is more), so the next run
 * of a chat starts within a poll of its previous run's end, whichever process ended it and even if
 * that process died right after. Exactly once: a row is taken by one process (SKIP LOCKED), and a
 * run has one job id.
 */
export class PromotionDispatcher {
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly deps: { db: Db; config: Config; runQueues: RunQueues; logger: Logger }) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { db, config, runQueues, logger } = this.deps;
    while (!this.stopping) {
      let taken = 0;
      try {
        const jobs = await takePromotedRuns(db, config, BATCH);
        taken = jobs.length;
        for (const job of jobs) {
          await runQueues
            .forRun(job.runId)
            .add(RUN_JOB_NAME, job, runJobOptions(config, job.runId))
            .then(() => logger.info('queued the run a queued message became', { runId: job.runId }))
            .catch((err: Error) => logger.error('could not queue a promoted run; the sweep will', { runId: job.runId, error: err.message }));
        }
      } catch (err) {
        if (!this.stopping) logger.warn('could not take promoted runs', { error: (err as Error).message });
      }
      if (taken < BATCH) await sleep(config.CHAT_PROMOTION_POLL_MS, undefined, { signal: this.abort.signal }).catch(() => {});
    }
  }
}
