import type { Config } from '../../shared/infra/config.js';
import type { Db } from '../../shared/infra/db.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { Sql } from '../../shared/infra/sql.js';
import type { RunAdmission } from '../../shared/flow/runAdmission.js';
import { anyPromotedRun, takePromotedRuns } from '../../shared/runs/promotedRuns.js';
import { OutboxDispatcher } from './outboxPoller.js';

const BATCH = 20;

/**
 * Queues the jobs of runs that queued messages became (SPEC section 12): every worker process polls
 * pending_run_jobs every CHAT_PROMOTION_POLL_MS (at once again while there is more), so the next run
 * of a chat starts within a poll of its previous run's end, whichever process ended it and even if
 * that process died right after. Exactly once: a row is taken by one process (SKIP LOCKED), and a
 * run has one job id.
 */
export class PromotionDispatcher extends OutboxDispatcher {
  constructor(private readonly deps: { db: Db; sql: Sql; config: Config; admission: RunAdmission; logger: Logger }) {
    super({ what: 'taking promoted runs', batch: BATCH, intervalMs: deps.config.CHAT_PROMOTION_POLL_MS, logger: deps.logger });
  }

  protected takeBatch(): Promise<number> {
    return this.queuePromotedRuns();
  }

  /** Takes a batch of promoted runs and queues their jobs; how many it took (none taken when none wait: the idle poll's case). */
  async queuePromotedRuns(): Promise<number> {
    const { db, sql, config, admission, logger } = this.deps;
    if (!(await anyPromotedRun(sql))) return 0;
    const jobs = await takePromotedRuns(db, config, BATCH);
    for (const job of jobs) {
      await admission
        .submit(job)
        .then(() => logger.info('queued the run a queued message became', { runId: job.runId }))
        .catch((err: Error) => logger.error('could not queue a promoted run; the sweep will', { runId: job.runId, error: err.message }));
    }
    return jobs.length;
  }
}
