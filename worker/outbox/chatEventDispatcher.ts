import { pendingCalls } from '../../shared/agent/steps.js';
import {
  ACCOUNT_EVENT_KINDS,
  anyChatEvent,
  publishChatEvent,
  type ChatEvent,
  deleteChatEventOutbox,
  takeChatEventOutbox,
  type ChatEventOutboxRow,
} from '../../shared/chats/chatEvents.js';
import { chatStatuses } from '../../shared/chats/chatStatus.js';
import { chatHeads } from '../../shared/chats/chatStore.js';
import { queuedMessagesOf } from '../../shared/chats/queuedMessages.js';
import type { Config } from '../../shared/infra/config.js';
import type { Db, SqlTx } from '../../shared/infra/db.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { RedisClient } from '../../shared/infra/redis.js';
import type { Sql } from '../../shared/infra/sql.js';
import { episodeSteps } from '../../shared/runs/waitingRuns.js';
import { OutboxPoller } from './outboxPoller.js';

const BATCH = 200;
/** One dispatcher at a time, fleet-wide, keeps each chat's events in the order they were written. */
type Row = ChatEventOutboxRow;

/**
 * Moves chat events (SPEC section 19) from chat_event_outbox into the chats' and accounts' Redis
 * streams (shared/chats/chatEvents.ts), oldest first, each with what it is about as it is now (a
 * chat's status, its queue, the calls its parked run waits for, its title). Woken by the outbox
 * notification, polled as a backstop; one worker of the fleet at a time (a transaction lock).
 */
export function chatEventDispatcher(deps: { db: Db; sql: Sql; redis: RedisClient; config: Config; logger: Logger }): OutboxPoller {
  return new OutboxPoller({ what: 'publishing chat events', batch: BATCH, intervalMs: 1_000, logger: deps.logger, takeBatch: () => dispatch(deps) });
}

/** One batch, oldest first, under the fleet-wide lock (another worker holding it, or no event: nothing to do here). */
async function dispatch(deps: { db: Db; sql: Sql; redis: RedisClient; config: Config }): Promise<number> {
  const { db, sql, redis, config } = deps;
  if (!(await anyChatEvent(sql))) return 0;
  return db.$transaction(async (tx) => {
    const rows = await takeChatEventOutbox(tx, BATCH);
    if (rows.length === 0) return 0;
    const events = await eventsOf(tx, rows);
    for (const [i, row] of rows.entries()) {
      const event = events[i]!;
      await publishChatEvent(redis, config.QUEUE_PREFIX, { kind: 'chat', id: row.chat_id }, event);
      if (ACCOUNT_EVENT_KINDS.includes(row.kind)) await publishChatEvent(redis, config.QUEUE_PREFIX, { kind: 'account', id: row.account_id }, event);
    }
    await deleteChatEventOutbox(tx, rows);
    return rows.length;
  });
}

/** Each row as the event readers get: its kind, its chat, and what it is about now. */
async function eventsOf(tx: SqlTx, rows: Row[]): Promise<ChatEvent[]> {
  const chatIds = [...new Set(rows.map((row) => row.chat_id))];
  const statuses = await chatStatuses(tx, chatIds);
  const chats = await chatHeads(tx, chatIds);
  const queueOf = async (chatId: string) =>
    (await queuedMessagesOf(tx, chatId)).map((queued, index) => ({ queuedMessageId: queued.id, position: index + 1, parts: queued.parts }));
  return Promise.all(
    rows.map(async (row): Promise<ChatEvent> => {
      const base = { type: row.kind, chatId: row.chat_id };
      switch (row.kind) {
        case 'chat.status':
          return { ...base, ...(statuses.get(row.chat_id) ?? { status: 'idle', activeRunId: null, lastError: null }) };
        case 'chat.messages':
          return { ...base, added: row.payload.added ?? [], edited: [], discarded: row.payload.discarded ?? [] };
        case 'chat.queue':
          return { ...base, queued: await queueOf(row.chat_id) };
        case 'chat.action_required': {
          const runId = String(row.payload.runId);
          const [run] = await tx.$queryRaw<{ status: string }[]>`SELECT status::text FROM runs WHERE id = ${runId}::uuid`;
          const last = run?.status === 'requires_action' ? (await episodeSteps(tx, runId)).at(-1) : undefined;
          return { ...base, runId, pendingToolCalls: last ? pendingCalls(last) : [] };
        }
        case 'chat.title':
        case 'chat.created': {
          const chat = chats.get(row.chat_id);
          return { ...base, title: chat?.title ?? null, ...(row.kind === 'chat.created' && chat ? { createdAt: chat.created_at.toISOString() } : {}) };
        }
        case 'chat.archived':
        case 'chat.deleted':
          return base;
      }
    }),
  );
}
