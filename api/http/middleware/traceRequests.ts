import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import type { Request, RequestHandler } from 'express';
import { SpanKind, SpanStatusCode, tracer, tracingEnabled } from '../../../shared/infra/tracing.js';

/** The route a request matched, as a template (`/api/chat/runs/:runId`), or its path when none matched. */
function routeOf(req: Request): string {
  if (req.route?.path === undefined) return req.baseUrl || req.path;
  const path = String(req.route.path);
  return path === '/' && req.baseUrl ? req.baseUrl : `${req.baseUrl}${path}`;
}

/**
 * A server span for each API request (SPEC section 16), active while the request is handled; a
 * caller's `traceparent` is continued. Nothing at all when tracing is off.
 */
export const traceRequests: RequestHandler = (req, res, next) => {
  if (!tracingEnabled()) return next();
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = tracer().startSpan(
    req.method,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path, 'url.scheme': req.protocol } },
    parent,
  );
  res.once('close', () => {
    const route = routeOf(req);
    span.updateName(`${req.method} ${route}`);
    span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), next);
};
