import client from 'prom-client';
import type { Queue } from 'bullmq';
import { createMetrics } from '../shared/infra/metrics.js';

export type ApiMetrics = ReturnType<typeof createMetrics>;

/** The api's metrics, plus queue depth by state read from BullMQ at scrape time. */
export function createApiMetrics(queues: () => Queue[]): ApiMetrics {
  const metrics = createMetrics('api');
  new client.Gauge({
    name: 'runyard_queue_jobs',
    help: 'Jobs in each runyard queue, by state',
    labelNames: ['queue', 'state'],
    registers: [metrics.registry],
    async collect() {
      this.reset();
      for (const queue of queues()) {
        try {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
          for (const [state, count] of Object.entries(counts)) this.set({ queue: queue.name, state }, count);
        } catch {
          // Redis down: the gauge is empty for this scrape rather than failing /metrics.
        }
      }
    },
  });
  return metrics;
}
