import type { Request, Response } from 'express';
import { chatEventKeys, watchChatEvents, type ChatEventSubject } from '../../shared/chats/chatEvents.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { ClientGone, openSseSession, resumePoint, SAFETY_POLL_MS } from '../streams/sseSession.js';
import { chatNotFound } from './chatErrors.js';
import { requireAccountCaller } from './readChats.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** How often an open subscription renews its watch (well within WATCH_GRACE_MS). */
const RENEW_WATCH_MS = 60_000;

/**
 * Who may follow a chat's events: its account's keys, and a run key or stream token of one of its
 * runs (a page that shows a run can follow its chat). 404 for anything else, as for a foreign chat.
 */
export async function chatSubjectFor(deps: ApiDeps, caller: Caller, chatId: string): Promise<ChatEventSubject> {
  const [chat] = await deps.db.$queryRaw<{ id: string }[]>`
    SELECT c.id::text FROM chats c WHERE c.id = ${chatId}::uuid AND (${caller.accountId}::uuid IS NULL OR c.account_id = ${caller.accountId}::uuid)
      AND (${caller.runId}::uuid IS NULL OR EXISTS (SELECT 1 FROM runs r WHERE r.id = ${caller.runId}::uuid AND r.chat_id = c.id))`;
  if (!chat) throw chatNotFound();
  return { kind: 'chat', id: chat.id };
}

export function accountSubjectFor(caller: Caller): ChatEventSubject {
  requireAccountCaller(caller);
  return { kind: 'account', id: caller.accountId! };
}

/**
 * GET /api/chats/{chatId}/events and GET /api/chats/events (SPEC section 19): one long-lived SSE
 * subscription, from after Last-Event-ID (or from now), on any api instance: the events are in Redis
 * (shared/chats/chatEvents.ts), and a notification wakes the reader. Open while nothing happens
 * (keep-alive comments); a chat's subscription ends with chat.deleted.
 */
export async function streamChatEvents(deps: ApiDeps, req: Request, res: Response, caller: Caller, subject: ChatEventSubject): Promise<void> {
  const keys = chatEventKeys(deps.config.QUEUE_PREFIX, subject);
  const resuming = Boolean(req.get('last-event-id') || req.query.after);
  const from = resumePoint(req, typeof req.query.after === 'string' ? req.query.after : undefined);
  // A new subscriber starts from now: after the last event so far (read before the watch begins, so
  // every event its changes cause comes after it).
  let lastId = resuming ? from : ((await deps.redis.xrevrange(keys.stream, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0');
  await watchChatEvents(deps.db, subject);
  let renewedAt = Date.now();
  const session = await openSseSession(deps, res, caller, {
    channel: keys.channel,
    headers: SSE_HEADERS,
    onKeepAlive: () => {
      if (Date.now() - renewedAt < RENEW_WATCH_MS) return;
      renewedAt = Date.now();
      watchChatEvents(deps.db, subject).catch((err: Error) => deps.logger.warn('could not renew a chat events watch', { error: err.message }));
    },
  });
  try {
    while (!session.closed()) {
      session.wakeup.clear();
      if (await session.keyEnded()) return;
      const entries = await deps.streams.readStream(keys.stream, lastId);
      for (const entry of entries) {
        await session.write(entry.id, entry.data);
        lastId = entry.id;
        if (subject.kind === 'chat' && (JSON.parse(entry.data) as { type: string }).type === 'chat.deleted') return;
      }
      if (entries.length > 0) continue;
      await session.wakeup.wait(SAFETY_POLL_MS);
    }
  } catch (err) {
    if (!(err instanceof ClientGone)) deps.logger.warn('chat events stream ended with an error', { subject: subject.kind, error: (err as Error).message });
  } finally {
    session.close();
  }
}
