import type { Config } from '../infra/config.js';
import { RUN_JOB_NAME, runJobOptions, type RunJobData } from '../infra/queue.js';
import type { RunQueues } from '../infra/runQueues.js';

/**
 * Queues a run's job again under its one job id (the run id), on the run's shard: the job of its
 * previous attempt or episode, finished, is removed first (BullMQ keeps a finished job's id). Used
 * by a continuation after requires_action, a replay and the sweep's re-queue of a lost job.
 */
export async function requeueRunJob(runQueues: RunQueues, config: Config, jobData: RunJobData): Promise<void> {
  const queue = runQueues.forRun(jobData.runId);
  await (await queue.getJob(jobData.runId))?.remove();
  await queue.add(RUN_JOB_NAME, jobData, runJobOptions(config, jobData.runId));
}
