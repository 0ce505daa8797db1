import express from 'express';
import helmet from 'helmet';
import type { ApiDeps } from './deps.js';
import { authenticate, requireScope } from './http/middleware/authenticate.js';
import { refuseUnstorableBody } from './http/middleware/storableBody.js';
import { errorHandler, methodNotAllowedHandler, notFoundHandler } from './http/middleware/errorHandler.js';
import { buildOpenApiDocument } from './http/openapi.js';
import { rateLimit } from './http/middleware/rateLimit.js';
import { AuthFailureLimiter } from './http/middleware/authFailures.js';
import { readCors } from './http/middleware/readCors.js';
import { requestContext } from './http/middleware/requestContext.js';
import { adminApiRoutes, BULL_BOARD_PATH, bullBoardRouter, refuseCrossSiteWrites, requireAdmin, timelinePageRoutes } from './routes/admin.js';
import { chatRoutes } from './routes/chats.js';
import { usageRoutes } from './routes/usage.js';
import { sessionRoutes } from './routes/sessions.js';
import { fileRoutes } from './routes/files.js';
import { modelRoutes } from './routes/models.js';
import { traceRequests } from './http/middleware/traceRequests.js';
import { docsRoutes } from './routes/docs.js';
import { runRoutes } from './routes/runs.js';
import { healthRoutes, whoamiRoute } from './routes/system.js';

/** Builds the api's express app (no listen: tests mount it with supertest, api/main.ts serves it). */
export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.TRUST_PROXY);
  app.use(requestContext);
  app.use(traceRequests);
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // Bull Board's UI sets styles inline; its scripts and ours are same-origin files.
          'style-src': ["'self'", "'unsafe-inline'"],
          'img-src': ["'self'", 'data:'],
          // The pages are served over plain http too (a private network, localhost): upgrading their
          // asset requests to https would break them there. TLS is the proxy's job (HSTS stays on).
          'upgrade-insecure-requests': null,
        },
      },
    }),
  );
  // Bodies are parsed only once the caller is authenticated: the header alone decides, and an
  // unauthenticated request costs no JSON parsing.
  const json = [express.json({ limit: '1mb', strict: true }), refuseUnstorableBody];

  app.use(healthRoutes(deps));
  app.use(docsRoutes(deps.config.PUBLIC_BASE_URL));

  app.use(readCors(deps.config.STREAM_CORS_ORIGINS));
  // A browser's EventSource cannot send headers: the stream routes (a run's, a chat's, a chat's events) also take a stream token as ?token=.
  const failures = new AuthFailureLimiter(
    deps.redis,
    deps.config.QUEUE_PREFIX,
    { perAddress: deps.config.AUTH_FAILURES_PER_MINUTE, fleet: deps.config.AUTH_FAILURES_FLEET_PER_MINUTE },
    deps.logger,
  );
  const apiAuth = authenticate(deps.keys, { queryTokenPath: /^\/[^/]+\/(stream|events)$/, failures });
  const limit = rateLimit(deps.redis, deps.config.QUEUE_PREFIX, deps.config.RATE_LIMIT_PER_MINUTE, deps.logger);
  app.use('/api/chat/runs', apiAuth, limit, json, runRoutes(deps));
  app.use('/api/chats', apiAuth, limit, json, chatRoutes(deps));
  app.use('/api/usage', apiAuth, limit, usageRoutes(deps));
  app.use('/api/sessions', apiAuth, limit, sessionRoutes(deps));
  app.use('/api/models', apiAuth, limit, modelRoutes(deps));
  // An <img> cannot send headers either: a file's content also takes a stream token as ?token=.
  app.use('/api/files', authenticate(deps.keys, { queryTokenPath: /^\/[^/]+\/content$/, failures }), limit, fileRoutes(deps));
  app.use('/api/auth', authenticate(deps.keys, { adminToken: deps.config.ADMIN_TOKEN, failures }), limit, whoamiRoute(deps));

  const adminAuth = [
    authenticate(deps.keys, { adminToken: deps.config.ADMIN_TOKEN, optional: true, basic: true, failures }),
    requireAdmin(deps.config.ADMIN_TOKEN),
    refuseCrossSiteWrites,
  ];
  app.use('/api/admin', ...adminAuth, requireScope('admin'), json, adminApiRoutes(deps));
  app.use(BULL_BOARD_PATH, ...adminAuth, bullBoardRouter(deps));
  app.use('/admin', ...adminAuth, timelinePageRoutes(deps));

  app.use(methodNotAllowedHandler(buildOpenApiDocument().paths ?? {}));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
