import {
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Config } from './config.js';

/**
 * OpenTelemetry tracing (SPEC section 16), with the official SDK: one trace per run, across the api
 * and the workers. It starts only when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set,
 * and then exports OTLP over HTTP; the SDK honours the other standard variables itself
 * (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*,
 * OTEL_EXPORTER_OTLP_HEADERS, ...). Unset, no SDK runs: the API's no-op tracer makes every span
 * below free, and no traceparent is sent anywhere.
 */

export type Tracing = { enabled: boolean; shutdown: () => Promise<void> };

let started = false;
/** Whether this process exports traces (startTracing found an endpoint). */
export const tracingEnabled = (): boolean => started;

export function startTracing(service: 'runyard-api' | 'runyard-worker', config: Config): Tracing {
  const endpoint = config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? config.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || config.OTEL_SDK_DISABLED) return { enabled: false, shutdown: async () => {} };
  started = true;
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: service }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  // The global tracer provider, an AsyncLocalStorage context manager and the W3C trace-context propagator.
  provider.register();
  return { enabled: true, shutdown: () => provider.shutdown() };
}

export const tracer = () => trace.getTracer('runyard');

/** The span code runs with when tracing is off: it records nothing. */
const UNTRACED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** The W3C `traceparent` of a context (the active one by default); undefined when nothing is traced. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  if (!started) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The headers that carry the active trace to another service (traceparent, tracestate); none when nothing is traced. */
export function traceHeaders(): Record<string, string> {
  if (!started) return {};
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** A context whose parent is the span a `traceparent` names (the root context without one). */
export const contextOf = (traceparent: string | null | undefined): Context => (traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT);

/** A link to the span a `traceparent` names, if any. */
export function linkTo(traceparent: string | null | undefined): Link[] {
  const spanContext = traceparent ? trace.getSpanContext(contextOf(traceparent)) : undefined;
  return spanContext ? [{ context: spanContext }] : [];
}

/** The trace id of the active span, for log lines; undefined outside a traced span. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/** The trace id in a `traceparent`. */
export const traceIdOf = (traceparent: string | null | undefined): string | null => traceparent?.split('-')[1] ?? null;

/**
 * Runs `fn` in a new active span: its error (if it throws) is recorded and the span marked failed;
 * the span ends when `fn` settles.
 */
export function inSpan<T>(
  name: string,
  opts: { kind?: SpanKind; attributes?: Attributes; links?: Link[]; parent?: Context; startTime?: Date },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  // Off: not even a no-op span is made.
  if (!started) return fn(UNTRACED);
  const { parent, ...options } = opts;
  return tracer().startActiveSpan(name, options, parent ?? context.active(), async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The producer span that queues a run's first job (a POST's run, or a chat message's). */
export const queueSpan = (runId: string | null, chatId?: string) => ({
  kind: SpanKind.PRODUCER,
  attributes: {
    'messaging.system': 'bullmq',
    'messaging.operation.type': 'send',
    ...(runId ? { 'runyard.run.id': runId } : {}),
    ...(chatId ? { 'runyard.chat.id': chatId } : {}),
  },
});

/** Marks a span failed with the error's message (and records it as an exception event). */
export function failSpan(span: Span, err: unknown, message?: string): void {
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message ?? (err instanceof Error ? err.message : String(err)) });
}

export { SpanKind, SpanStatusCode, type Span };
