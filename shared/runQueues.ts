import { Queue } from 'bullmq';
import { runQueueName, shardOfRun } from './queue.js';
import type { RedisClient } from './redis.js';

/** The run queues of a deployment: `QUEUE_SHARDS` BullMQ queues, a run always on the same one. */
export class RunQueues {
  readonly all: readonly Queue[];

  constructor(connection: RedisClient, prefix: string, shards: number, cluster: boolean) {
    this.all = Array.from({ length: shards }, (_, index) => new Queue(runQueueName(index, shards, cluster), { connection, prefix }));
  }

  forRun(runId: string): Queue {
    return this.all[shardOfRun(runId, this.all.length)]!;
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((queue) => queue.close()));
  }
}
