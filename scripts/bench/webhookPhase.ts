import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { round, summary } from './stats.js';
import { onAClock, waitUntil } from './support.js';

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

/**
 * Posts `runs` runs with a webhook as fast as they go (deliveries/s, and the latency under that
 * burst), then `idleRuns` more at `idleRate`/s on an otherwise idle fleet: the latency SPEC section
 * 22 sets its target for (the transition's notification waking a dispatcher, not a queue of them).
 */
export async function measureWebhooks(post: () => Promise<string>, receiver: WebhookReceiver, runs: number, idleRuns = Math.min(200, runs), idleRate = 20) {
  receiver.arrivals.clear();
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < runs) {
        next++;
        await post();
      }
    }),
  );
  await waitForArrivals(receiver, runs);
  const burst = [...receiver.arrivals.values()];
  const last = Math.max(...burst.map((a) => a.at));

  receiver.arrivals.clear();
  await onAClock(idleRuns, idleRate, post);
  await waitForArrivals(receiver, idleRuns);
  const idle = [...receiver.arrivals.values()];
  return {
    runs,
    delivered: burst.length,
    deliveriesPerSecond: round(burst.length / ((last - started) / 1000), 1),
    burstLatencyMs: summary(burst.map((a) => a.latencyMs)),
    idle: { runs: idleRuns, ratePerSecond: idleRate, delivered: idle.length },
    latencyMs: summary(idle.map((a) => a.latencyMs)),
  };
}

/** Waits up to 5 minutes for `n` events; what did not arrive by then is reported as not delivered. */
const waitForArrivals = (receiver: WebhookReceiver, n: number) =>
  waitUntil(async () => receiver.arrivals.size >= n, 'the webhook events', 300_000).catch(() => {});
