import type { Db } from '../infra/db.js';
import { notFound } from '../infra/errors.js';

/**
 * The webhook delivery log and its repair: what the api's routes and the operator CLI share. Reads
 * and writes the outbox (webhook_events) that a trigger on runs fills and the worker's dispatcher drains.
 */
export type WebhookEventView = {
  eventId: string;
  webhookId: string;
  type: string;
  status: string;
  attempts: number;
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveries: { at: string; statusCode: number | null; latencyMs: number; error: string | null }[];
};

/** Every event of a run with each delivery attempt, oldest first. */
export async function webhookEventsOfRun(db: Db, runId: string): Promise<WebhookEventView[]> {
  const events = await db.webhookEvent.findMany({
    where: { runId },
    orderBy: { seq: 'asc' },
    include: { deliveries: { orderBy: { attemptedAt: 'asc' } } },
  });
  return events.map((event) => ({
    eventId: event.id,
    webhookId: `msg_${event.id}`,
    type: event.type,
    status: event.status,
    attempts: event.attempts,
    createdAt: event.createdAt.toISOString(),
    deliveredAt: event.deliveredAt?.toISOString() ?? null,
    nextAttemptAt: event.status === 'pending' ? event.nextAttemptAt.toISOString() : null,
    lastError: event.lastError,
    deliveries: event.deliveries.map((d) => ({ at: d.attemptedAt.toISOString(), statusCode: d.statusCode, latencyMs: d.latencyMs, error: d.error })),
  }));
}

/**
 * Sends an event again (same webhook-id), now, with a fresh WEBHOOK_RETRY_FOR_MS window; the run's
 * later events wait behind it again. `accountId` scopes it to one account (null: an operator).
 */
export async function redeliverWebhookEvent(db: Db, eventId: string, accountId: string | null = null): Promise<{ eventId: string; status: 'pending' }> {
  const updated = await db.$executeRaw`
    UPDATE webhook_events e SET status = 'pending', next_attempt_at = now(), retry_from = now(), locked_until = NULL
    FROM runs r
    WHERE e.id = ${eventId}::uuid AND r.id = e.run_id AND (${accountId}::uuid IS NULL OR r.account_id = ${accountId}::uuid)`;
  if (updated === 0) throw notFound('webhook_event_not_found', 'The webhook event');
  return { eventId, status: 'pending' };
}

/** Redelivers every failed event created since `since` (oldest first, at most `limit`); their ids. */
export async function redeliverFailedWebhookEvents(db: Db, filter: { since?: Date; limit: number }): Promise<string[]> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    UPDATE webhook_events SET status = 'pending', next_attempt_at = now(), retry_from = now(), locked_until = NULL
    WHERE id IN (
      SELECT id FROM webhook_events WHERE status = 'failed' AND (${filter.since ?? null}::timestamptz IS NULL OR created_at >= ${filter.since ?? null}::timestamptz)
      ORDER BY created_at LIMIT ${filter.limit})
    RETURNING id::text`;
  return rows.map((row) => row.id);
}
