import client from 'prom-client';
import type { Queue } from 'bullmq';
import { createMetrics } from '../../shared/infra/metrics.js';
import type { FlowStats } from '../../shared/flow/fairQueue.js';

export type ApiMetrics = ReturnType<typeof createMetrics>;

/** The api's metrics, plus queue depth by state read from BullMQ, and the fair scheduler's, at scrape time. */
export function createApiMetrics(queues: () => Queue[], flow: () => Promise<FlowStats | undefined>): ApiMetrics {
  const metrics = createMetrics('api');
  new client.Gauge({
    name: 'runyard_flow_runs',
    help: 'The fair scheduler: runs waiting for their account’s turn, released and not yet started; accounts waiting, and at their maxRunning',
    labelNames: ['state'],
    registers: [metrics.registry],
    async collect() {
      this.reset();
      try {
        const stats = await flow();
        if (!stats) return;
        this.set({ state: 'waiting' }, stats.waiting);
        this.set({ state: 'released' }, stats.releasedNotStarted);
        this.set({ state: 'accounts_waiting' }, stats.accountsWaiting);
        this.set({ state: 'accounts_at_cap' }, stats.accountsAtCap);
      } catch {
        // Redis down: empty for this scrape.
      }
    },
  });
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
