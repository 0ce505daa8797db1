import { loadConfigOrExit } from '../shared/infra/config.js';
import { createLogger } from '../shared/infra/logger.js';
import { startTracing } from '../shared/infra/tracing.js';
import { startFleetMember } from './fleet/fleetMember.js';
import { startMetricsServer } from './fleet/metricsServer.js';

const config = loadConfigOrExit();
// First: the SDK must be registered before anything makes a span.
const tracing = startTracing('runyard-worker', config);
const logger = createLogger('worker', config.LOG_LEVEL);
if (config.usingDevelopmentSecret) logger.warn('RUNYARD_SECRET is not set: using the development secret; set it in production');

const member = await startFleetMember(config, logger);
let stopping = false;
const metricsServer =
  config.WORKER_METRICS_PORT !== undefined
    ? startMetricsServer(config.WORKER_METRICS_PORT, config.WORKER_METRICS_HOST, member.deps.metrics.registry, () => !stopping)
    : undefined;
// Says where it listens: with WORKER_METRICS_PORT=0 the system picks the port.
metricsServer?.on('listening', () => {
  const address = metricsServer.address();
  if (address && typeof address === 'object') logger.info('metrics server listening', { host: address.address, port: address.port });
});

async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info('signal received', { signal });
  await member.close();
  await tracing.shutdown().catch(() => {});
  metricsServer?.close();
  process.exitCode = 0;
  // Let the event loop drain rather than exit() mid-write.
  setTimeout(() => process.exit(0), 2_000).unref();
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
