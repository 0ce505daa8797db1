import type { RunQueues } from '../shared/infra/runQueues.js';
import { Batcher } from '../shared/infra/batcher.js';
import type { Config } from '../shared/infra/config.js';
import { RUN_JOB_NAME, runJobOptions, type RunJobData } from '../shared/infra/queue.js';

/**
 * Puts run jobs on the queue. The POSTs that were provisioned together (one provisioning statement)
 * reach this point together and are added in one MULTI (BullMQ's addBulk): one round trip to Redis
 * instead of one each (per queue shard: a MULTI touches one shard's slot). An idle api adds each job
 * at once. A job's id is its runId, so adding one
 * again (the batch's items are retried one by one if the batch fails) never makes a second job.
 */
export class RunEnqueuer {
  private readonly batcher: Batcher<RunJobData, undefined>;

  constructor(queues: RunQueues, config: Config, onBatch: (size: number) => void = () => {}) {
    this.batcher = new Batcher(
      async (jobs) => {
        const queue = queues.forRun(jobs[0]!.runId);
        if (jobs.length === 1) await queue.add(RUN_JOB_NAME, jobs[0]!, runJobOptions(config, jobs[0]!.runId));
        else await queue.addBulk(jobs.map((data) => ({ name: RUN_JOB_NAME, data, opts: runJobOptions(config, data.runId) })));
        return jobs.map(() => undefined);
      },
      { maxBatch: 50, concurrency: 1, key: (job) => job.runId, group: (job) => queues.forRun(job.runId).name, onBatch },
    );
  }

  enqueue(job: RunJobData): Promise<undefined> {
    return this.batcher.submit(job);
  }

  /** Enqueues within `timeoutMs`, or rejects (the caller undoes what it provisioned: the add may still land, and a worker then finds no run). */
  async enqueueWithin(job: RunJobData, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.enqueue(job),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('enqueue timed out')), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
