import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real webhook receiver for the tests: it records every delivery, answers with the status the
 * test's `answer` gives (default 200; a promise that never settles holds the request open), and can
 * go down and come back on the same port.
 */
export type Delivery = {
  headers: IncomingHttpHeaders;
  rawBody: string;
  body: { type: string; runId: string; [key: string]: unknown };
  at: number;
  status: number;
};

export type WebhookReceiver = {
  url: string;
  origin: string;
  deliveries: Delivery[];
  /** Deliveries deduplicated by webhook-id, as a careful receiver processes them. */
  processed: () => Delivery[];
  answer: (fn: (delivery: Delivery, nthForThisId: number) => number | Promise<number>) => void;
  down: () => Promise<void>;
  up: () => Promise<void>;
  close: () => Promise<void>;
};

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  let answer: (delivery: Delivery, nth: number) => number | Promise<number> = () => 200;
  const open = new Set<ServerResponse>();
  const make = () =>
    createServer(async (req, res) => {
      open.add(res);
      res.on('close', () => open.delete(res));
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const delivery: Delivery = { headers: req.headers, rawBody, body: JSON.parse(rawBody), at: Date.now(), status: 0 };
      const nth = deliveries.filter((d) => d.headers['webhook-id'] === req.headers['webhook-id']).length + 1;
      delivery.status = await answer(delivery, nth);
      deliveries.push(delivery);
      res.writeHead(delivery.status).end();
    });
  let server: Server = make();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    origin: `http://127.0.0.1:${port}`,
    deliveries,
    processed: () => {
      const seen = new Set<string>();
      return deliveries.filter((d) => {
        const id = String(d.headers['webhook-id']);
        if (seen.has(id) || d.status < 200 || d.status >= 300) return false;
        seen.add(id);
        return true;
      });
    },
    answer: (fn) => (answer = fn),
    down: stop,
    up: async () => {
      server = make();
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    close: stop,
  };
}
