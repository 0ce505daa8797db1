import type { RequestHandler } from 'express';

/** The routes a web page may read across origins: a run, its stream, its chat's messages. */
const READ_ROUTES = [/^\/api\/chat\/runs\/[^/]+$/, /^\/api\/chat\/runs\/[^/]+\/stream$/, /^\/api\/chats\/[^/]+\/messages$/];
const ALLOWED_HEADERS = 'authorization, last-event-id, x-request-id';

/**
 * CORS for the read routes only, for the origins in STREAM_CORS_ORIGINS (none by default): a
 * frontend on another origin can read a run's stream (EventSource with ?token=) and its messages.
 * Preflights of those routes are answered here; every other route and method stays same-origin.
 */
export function readCors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    const path = req.originalUrl.split('?')[0]!;
    if (!origin || !allowed.has(origin) || !READ_ROUTES.some((route) => route.test(path))) return next();
    res.vary('Origin');
    res.set('access-control-allow-origin', origin);
    res.set('cross-origin-resource-policy', 'cross-origin');
    if (req.method === 'OPTIONS') {
      if (req.get('access-control-request-method') !== 'GET') return next();
      res.set({ 'access-control-allow-methods': 'GET', 'access-control-allow-headers': ALLOWED_HEADERS, 'access-control-max-age': '600' });
      return void res.status(204).end();
    }
    if (req.method !== 'GET') return next();
    res.set('access-control-expose-headers', 'x-request-id');
    // helmet's default would keep a cross-origin page from embedding what it is allowed to read.
    res.removeHeader('cross-origin-embedder-policy');
    next();
  };
}
