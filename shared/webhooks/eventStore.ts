import { statement } from '../infra/sql.js';
import type { Db } from '../infra/db.js';

/**
 * The webhook outbox's statements for its dispatcher (worker/outbox/webhookDispatcher.ts): the events
 * themselves are written by the run's transitions (a trigger on runs, in the transaction of the
 * change; prisma/current-state.sql, runyard_webhook_event builds the payload), read and redelivered
 * by deliveryLog.ts. A run's events go out one at a time, in order: only the oldest pending event
 * of each run is claimable.
 */
export const CLAIM_EVENTS = statement(
  'claim_webhook_events',
  `WITH heads AS (
     SELECT DISTINCT ON (e.run_id) e.id FROM webhook_events e WHERE e.status = 'pending' ORDER BY e.run_id, e.seq
   ), due AS (
     SELECT e.id FROM webhook_events e JOIN heads h ON h.id = e.id
     WHERE e.next_attempt_at <= now() AND (e.locked_until IS NULL OR e.locked_until < now())
     ORDER BY e.next_attempt_at
     LIMIT $1
     FOR UPDATE OF e SKIP LOCKED
   )
   UPDATE webhook_events w SET locked_until = now() + make_interval(secs => $2::float8 / 1000), attempts = w.attempts + 1
   FROM due, runs r
   WHERE w.id = due.id AND r.id = w.run_id
   RETURNING w.id::text, w.type, w.payload, w.attempts, w.retry_from, r.account_id::text, r.webhook->>'url' AS url, w.run_id::text, r.traceparent`,
);

// One statement: the attempt's record and the event's new state.
export const RECORD_DELIVERY = statement(
  'record_webhook_delivery',
  `WITH attempt AS (
     INSERT INTO webhook_deliveries (id, event_id, status_code, latency_ms, error) VALUES (gen_random_uuid(), $1::uuid, $2::int, $3::int, $4)
   )
   UPDATE webhook_events SET status = $5, next_attempt_at = $6::timestamptz, locked_until = NULL,
     delivered_at = CASE WHEN $5 = 'delivered' THEN now() END, last_error = $4
   WHERE id = $1::uuid`,
);

// A delivery cut short by this process's own shutdown: the claim is handed back at once (and the
// attempt not counted), so another process delivers it now rather than when the lease runs out.
export const RELEASE_CLAIM = statement(
  'release_webhook_claim',
  `UPDATE webhook_events SET locked_until = NULL, attempts = attempts - 1 WHERE id = $1::uuid AND status = 'pending'`,
);

/** Delivered events past their retention go, with their attempts (the sweep; the delivery log keeps the rest). */
export async function deleteDeliveredEvents(db: Db, before: Date): Promise<void> {
  await db.webhookEvent.deleteMany({ where: { status: 'delivered', createdAt: { lt: before }, deliveredAt: { lt: before } } });
}
