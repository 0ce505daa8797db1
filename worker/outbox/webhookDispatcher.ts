import { setMaxListeners } from 'node:events';
import { contextOf, failSpan, inSpan, SpanKind, traceHeaders, type Span } from '../../shared/infra/tracing.js';
import { OutboxDispatcher } from './outboxPoller.js';
import type { Config } from '../../shared/infra/config.js';
import type { Db } from '../../shared/infra/db.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { Metrics } from '../../shared/infra/metrics.js';
import type { Sql } from '../../shared/infra/sql.js';
import { CLAIM_EVENTS, RECORD_DELIVERY, RELEASE_CLAIM } from '../../shared/webhooks/eventStore.js';
import { accountToolSecrets, signedHeaders, type ToolSecrets } from '../../shared/accounts/toolSecrets.js';
import { postJson, PostTimeout } from '../tools/httpPost.js';

/**
 * Delivers the webhook outbox (SPEC section 11). Every worker process runs one dispatcher; they
 * share the work through Postgres: each claims the oldest pending event of runs that have no
 * delivery in flight (FOR UPDATE SKIP LOCKED, and a lease so a dead process lets go), so a run's
 * events go out one at a time, in order. A delivery is a signed POST (Standard Webhooks, the
 * account's signing secret, `webhook-id` = msg_<event id> on every try); 2xx delivers, a 4xx other
 * than 408/429 is final, anything else is retried with exponential backoff until
 * WEBHOOK_RETRY_FOR_MS has passed since the event was written (or redelivered).
 */
type ClaimedEvent = {
  id: string;
  type: string;
  payload: unknown;
  attempts: number;
  retry_from: Date;
  account_id: string;
  url: string;
  run_id: string;
  /** The run's trace: each delivery is a span of it, and carries its traceparent. */
  traceparent: string | null;
};

export type DeliveryOutcome = 'delivered' | 'retry' | 'failed';

const BATCH = 32;
const MAX_BACKOFF_MS = 3_600_000;
const SECRETS_CACHE_MS = 30_000;

export class WebhookDispatcher extends OutboxDispatcher {
  private readonly secrets = new Map<string, { secrets: ToolSecrets; at: number }>();

  constructor(private readonly deps: { sql: Sql; db: Db; config: Config; logger: Logger; metrics: Metrics }) {
    super({ what: 'webhook dispatch', batch: BATCH, intervalMs: deps.config.WEBHOOK_POLL_MS, logger: deps.logger });
    // Every delivery in flight listens on it: a batch is BATCH of them.
    setMaxListeners(BATCH * 2, this.poller.signal);
  }

  protected takeBatch(): Promise<number> {
    return this.deliverDue();
  }

  /** Claims and delivers the events that are due; how many it claimed. */
  async deliverDue(): Promise<number> {
    const leaseMs = this.deps.config.WEBHOOK_TIMEOUT_MS + 30_000;
    const events = await this.deps.sql.rows<ClaimedEvent>(CLAIM_EVENTS, [BATCH, leaseMs]);
    await Promise.all(
      events.map((event) =>
        inSpan(
          `webhook ${event.type}`,
          {
            kind: SpanKind.CLIENT,
            parent: contextOf(event.traceparent),
            attributes: { 'runyard.run.id': event.run_id, 'runyard.webhook.event_id': event.id, 'runyard.webhook.attempt': event.attempts },
          },
          (span) => this.deliver(event, span),
        ),
      ),
    );
    return events.length;
  }

  private async deliver(event: ClaimedEvent, span: Span): Promise<void> {
    const { config, metrics, logger } = this.deps;
    const payload = JSON.stringify(event.payload);
    const messageId = `msg_${event.id}`;
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    let outcome: DeliveryOutcome;
    try {
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'runyard-webhooks/1',
        ...traceHeaders(),
        ...signedHeaders(await this.secretsOf(event.account_id), messageId, payload),
      };
      const answer = await postJson(new URL(event.url), headers, payload, this.poller.signal, config.WEBHOOK_TIMEOUT_MS, 65_536);
      statusCode = answer.status;
      if (statusCode >= 200 && statusCode < 300) outcome = 'delivered';
      else {
        error = `the receiver answered ${statusCode}`;
        outcome = statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429 ? 'failed' : 'retry';
      }
    } catch (err) {
      if (this.poller.signal.aborted) {
        await this.deps.sql.rows(RELEASE_CLAIM, [event.id]);
        return;
      }
      error = err instanceof PostTimeout ? `no answer within ${config.WEBHOOK_TIMEOUT_MS} ms` : `the receiver could not be reached: ${(err as Error).message}`;
      outcome = 'retry';
    }
    const latencyMs = Math.round(performance.now() - started);
    const nextAt = new Date(Date.now() + Math.min(MAX_BACKOFF_MS, config.WEBHOOK_RETRY_BASE_MS * 2 ** (event.attempts - 1)));
    if (outcome === 'retry' && nextAt.getTime() > event.retry_from.getTime() + config.WEBHOOK_RETRY_FOR_MS) outcome = 'failed';
    const status = outcome === 'retry' ? 'pending' : outcome;
    span.setAttributes({ 'runyard.webhook.outcome': outcome, ...(statusCode !== null ? { 'http.response.status_code': statusCode } : {}) });
    if (error) failSpan(span, undefined, error);
    await this.deps.sql.rows(RECORD_DELIVERY, [event.id, statusCode, latencyMs, error, status, outcome === 'retry' ? nextAt : new Date()]);
    metrics.webhookDeliveries.inc({ outcome });
    metrics.webhookLatency.observe(latencyMs / 1000);
    if (outcome !== 'delivered') logger.warn('webhook delivery failed', { eventId: event.id, type: event.type, attempt: event.attempts, outcome, error });
  }

  private async secretsOf(accountId: string): Promise<ToolSecrets> {
    const cached = this.secrets.get(accountId);
    if (cached && Date.now() - cached.at < SECRETS_CACHE_MS) return cached.secrets;
    const secrets = await accountToolSecrets(this.deps.db, accountId, this.deps.config.RUNYARD_SECRET);
    if (this.secrets.size > 10_000) this.secrets.clear();
    this.secrets.set(accountId, { secrets, at: Date.now() });
    return secrets;
  }
}
