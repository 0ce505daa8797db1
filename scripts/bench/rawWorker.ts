import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

/** A bare BullMQ worker with a no-op processor: the baseline runyard is measured against. */
const [queueName, prefix, concurrency, redisUrl] = process.argv.slice(2) as [string, string, string, string];
const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const worker = new Worker(queueName, async () => {}, { connection, prefix, concurrency: Number(concurrency) });
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await worker.close();
  connection.disconnect();
  process.exit(0);
});
