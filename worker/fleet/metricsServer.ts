import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** The worker's own small HTTP port: /metrics (Prometheus) and /healthz. */
export function startMetricsServer(port: number, host: string, registry: Registry, isHealthy: () => boolean): Server {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
        .catch(() => res.writeHead(500).end());
      return;
    }
    if (req.url === '/healthz') {
      const ok = isHealthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'closing' }));
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(port, host);
  return server;
}
