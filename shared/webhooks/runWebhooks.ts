import { AppError } from '../infra/errors.js';
import { isToolUrlAllowed, urlNotAllowed } from '../agent/tools.js';

/** The run events a webhook can ask for (SPEC section 11); the outbox trigger writes the same names. */
export const WEBHOOK_EVENTS = ['run.started', 'run.requires_action', 'run.completed', 'run.failed', 'run.cancelled'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];
export const DEFAULT_WEBHOOK_EVENTS: WebhookEventType[] = ['run.requires_action', 'run.completed', 'run.failed', 'run.cancelled'];

/** A run's webhook as stored: its url and the events it gets (the default filled in). */
export type RunWebhook = { url: string; events: WebhookEventType[] };

/** Checks a webhook as POST does: the url on the operator's allowlist, the event names known. */
export function checkWebhook(webhook: { url: string; events?: string[] }, allowlist: readonly string[]): RunWebhook {
  if (!isToolUrlAllowed(webhook.url, allowlist)) {
    throw urlNotAllowed('webhook_url_not_allowed', `${webhook.url} is not on this server's outbound allowlist.`);
  }
  const unknown = (webhook.events ?? []).filter((event) => !(WEBHOOK_EVENTS as readonly string[]).includes(event));
  if (unknown.length) {
    throw new AppError(
      'validation_failed',
      400,
      `webhook.events: unknown event ${unknown.map((event) => `"${event}"`).join(', ')}.`,
      `Use some of ${WEBHOOK_EVENTS.join(', ')}.`,
    );
  }
  return { url: webhook.url, events: webhook.events ? ([...new Set(webhook.events)] as WebhookEventType[]) : DEFAULT_WEBHOOK_EVENTS };
}
