import { Queue } from 'bullmq';
import { maintenanceQueueName, runQueueName, shardOfRun } from './queue.js';
import { isCluster, type RedisClient } from './redis.js';

/** The run queues of a deployment: `QUEUE_SHARDS` BullMQ queues, a run always on the same one. */
export class RunQueues {
  readonly all: readonly Queue[];

  constructor(connection: RedisClient, prefix: string, shards: number) {
    this.all = Array.from({ length: shards }, (_, index) => new Queue(runQueueName(index, shards, isCluster(connection)), { connection, prefix }));
  }

  forRun(runId: string): Queue {
    return this.all[shardOfRun(runId, this.all.length)]!;
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((queue) => queue.close()));
  }
}

/** The queue of the fleet-wide sweep schedule, named for the connection (a hash tag on a cluster). */
export const openMaintenanceQueue = (connection: RedisClient, prefix: string): Queue =>
  new Queue(maintenanceQueueName(isCluster(connection)), { connection, prefix });
