import type { Server } from 'node:http';
import { loadConfigOrExit } from '../shared/infra/config.js';
import { createLogger } from '../shared/infra/logger.js';
import { startTracing } from '../shared/infra/tracing.js';
import { createApp } from './app.js';
import { buildApiDeps } from './buildDeps.js';

const config = loadConfigOrExit();
// First: the SDK must be registered before anything makes a span.
const tracing = startTracing('runyard-api', config);
const logger = createLogger('api', config.LOG_LEVEL);
if (config.usingDevelopmentSecret) logger.warn('RUNYARD_SECRET is not set: using the development secret; set it in production');

const runtime = buildApiDeps(config, logger);
const server: Server = createApp(runtime.deps).listen(config.PORT, () => {
  // The port it got (PORT=0: one the system picked).
  const address = server.address();
  logger.info('api listening', { port: address && typeof address === 'object' ? address.port : config.PORT });
});
// SSE clients hold connections open; keep-alive comments keep proxies from closing them.
server.keepAliveTimeout = 65_000;

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info('signal received', { signal });
  server.close();
  server.closeIdleConnections();
  // Open SSE streams end; clients resume with Last-Event-ID on another instance.
  setTimeout(() => server.closeAllConnections(), Math.min(config.SHUTDOWN_GRACE_MS, 5_000)).unref();
  await runtime.close();
  await tracing.shutdown().catch(() => {});
  setTimeout(() => process.exit(0), 1_000).unref();
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
