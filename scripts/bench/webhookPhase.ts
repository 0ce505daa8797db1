import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { round, summary } from './stats.js';

/**
 * The webhook phase: runs that name a webhook, delivered to a receiver in this process that
 * answers 200 at once and deduplicates by webhook-id. Delivery latency is from the event's
 * `occurredAt` (the transition's time in Postgres) to its arrival here, on the same machine's clock.
 */
export type WebhookReceiver = { url: string; origin: string; arrivals: Map<string, { at: number; latencyMs: number }>; close: () => Promise<void> };

export async function startBenchWebhookReceiver(): Promise<WebhookReceiver> {
  const arrivals = new Map<string, { at: number; latencyMs: number }>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      const event = JSON.parse(raw) as { occurredAt: string };
      if (!arrivals.has(id)) arrivals.set(id, { at: Date.now(), latencyMs: Date.now() - Date.parse(event.occurredAt) });
      res.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: `${origin}/hooks`, origin, arrivals, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export const webhookRunBody = (url: string) => JSON.stringify({ prompt: 'hook', webhook: { url, events: ['run.completed'] } });

/** Posts `runs` runs with a webhook as fast as they go, waits for every event, and reports deliveries/s and latency. */
export async function measureWebhooks(post: () => Promise<string>, receiver: WebhookReceiver, runs: number, concurrency = 64) {
  receiver.arrivals.clear();
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < runs) {
        next++;
        await post();
      }
    }),
  );
  const deadline = Date.now() + 300_000;
  while (receiver.arrivals.size < runs && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  const arrivals = [...receiver.arrivals.values()];
  const last = Math.max(...arrivals.map((a) => a.at));
  return {
    runs,
    delivered: arrivals.length,
    deliveriesPerSecond: round(arrivals.length / ((last - started) / 1000), 1),
    latencyMs: summary(arrivals.map((a) => a.latencyMs)),
  };
}
