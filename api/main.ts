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
// A port already taken (another runyard still running) must not look like success: say which and stop.
server.on('error', (err: NodeJS.ErrnoException) => {
  const reason =
    err.code === 'EADDRINUSE'
      ? `port ${config.PORT} is already in use (another api still running?); stop it or set PORT`
      : err.code === 'EACCES'
        ? `port ${config.PORT} needs privileges this process does not have; set PORT to one above 1023`
        : `could not listen on port ${config.PORT}: ${err.message}`;
  logger.error('api could not start', { port: config.PORT, code: err.code, reason });
  console.error(`runyard: ${reason}`);
  void runtime.close().finally(() => process.exit(1));
  setTimeout(() => process.exit(1), 3_000).unref();
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
