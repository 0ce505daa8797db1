import type { Db } from '../infra/db.js';
import { statement, type Sql } from '../infra/sql.js';
import { pubsub, type RedisClient } from '../infra/redis.js';

/**
 * A chat's live events (SPEC section 19). Triggers write them to chat_event_outbox in the
 * transaction of the change that causes them, while someone watches (chat_event_watchers); a
 * worker moves them, in order, into Redis streams — one per chat, one per account for the chat
 * list — and wakes the api's readers on a channel. A reader resumes by the stream's entry id
 * (Last-Event-ID): nothing lost, nothing repeated across a reconnect, from any api instance.
 */
export const CHAT_EVENT_KINDS = [
  'chat.created',
  'chat.status',
  'chat.messages',
  'chat.queue',
  'chat.action_required',
  'chat.title',
  'chat.archived',
  'chat.deleted',
] as const;
export type ChatEventKind = (typeof CHAT_EVENT_KINDS)[number];

/** What the account's feed (GET /api/chats/events) carries; a chat's own stream carries every kind. */
export const ACCOUNT_EVENT_KINDS: readonly ChatEventKind[] = ['chat.created', 'chat.status', 'chat.title', 'chat.archived', 'chat.deleted'];

/** How many events a stream keeps (older ones are trimmed: a client that far behind reads the chat again). */
export const CHAT_EVENTS_MAX = 1_000;
/** How long a stream is kept after its last event. */
const CHAT_EVENTS_TTL_SECONDS = 86_400;
/** A watcher is kept this long after its subscription's last renewal: a client that reconnects within it misses nothing. */
export const WATCH_GRACE_MS = 10 * 60_000;

export type ChatEventSubject = { kind: 'chat'; id: string } | { kind: 'account'; id: string };

export const chatEventKeys = (prefix: string, subject: ChatEventSubject) => {
  const base = subject.kind === 'chat' ? `${prefix}:chat:{${subject.id}}` : `${prefix}:account:{${subject.id}}:chats`;
  return { stream: `${base}:events`, channel: `${base}:notify` };
};

export type ChatEvent = { type: ChatEventKind; chatId: string } & Record<string, unknown>;

/** Appends an event to the subject's stream and wakes its readers. */
export async function publishChatEvent(redis: RedisClient, prefix: string, subject: ChatEventSubject, event: ChatEvent): Promise<void> {
  const keys = chatEventKeys(prefix, subject);
  await redis.xadd(keys.stream, 'MAXLEN', '~', CHAT_EVENTS_MAX, '*', 'data', JSON.stringify(event));
  await redis.expire(keys.stream, CHAT_EVENTS_TTL_SECONDS);
  await pubsub.publish(redis, keys.channel, '1');
}

/** Someone follows the subject's events from now until WATCH_GRACE_MS past now (renewed while its subscription is open). */
export async function watchChatEvents(db: Pick<Db, '$executeRaw'>, subject: ChatEventSubject): Promise<void> {
  const name = `${subject.kind}:${subject.id}`;
  const until = new Date(Date.now() + WATCH_GRACE_MS);
  await db.$executeRaw`
    INSERT INTO chat_event_watchers (subject, until) VALUES (${name}, ${until})
    ON CONFLICT (subject) DO UPDATE SET until = GREATEST(chat_event_watchers.until, EXCLUDED.until)`;
}

/** Nobody follows these chats' events any more: their triggers stop writing them. */
export async function forgetLapsedWatches(db: Pick<Db, '$executeRaw'>): Promise<void> {
  await db.$executeRaw`DELETE FROM chat_event_watchers WHERE until < now()`;
}

const OUTBOX_LOCK = 'runyard:chat_event_outbox';

export type ChatEventOutboxRow = { id: bigint; chat_id: string; account_id: string; kind: ChatEventKind; payload: Record<string, unknown> };

// Whether the outbox holds any event: one read of a table that is empty almost always (nobody
// watches, or everything is published), so an idle worker's poll is one round trip, not a transaction.
const ANY_CHAT_EVENT = statement('any_chat_event', 'SELECT EXISTS (SELECT 1 FROM chat_event_outbox) AS any');

export async function anyChatEvent(sql: Sql): Promise<boolean> {
  const [row] = await sql.rows<{ any: boolean }>(ANY_CHAT_EVENT, []);
  return row?.any === true;
}

/**
 * The oldest `batch` rows of the chat event outbox, locked for the caller's transaction — under a
 * fleet-wide transaction lock, so one worker at a time publishes and the order holds; none when
 * another worker holds it.
 */
export async function takeChatEventOutbox(tx: Pick<Db, '$queryRaw'>, batch: number): Promise<ChatEventOutboxRow[]> {
  const [lock] = await tx.$queryRaw<{ taken: boolean }[]>`SELECT pg_try_advisory_xact_lock(hashtext(${OUTBOX_LOCK})) AS taken`;
  if (!lock?.taken) return [];
  return tx.$queryRaw<ChatEventOutboxRow[]>`
    SELECT id, chat_id::text, account_id::text, kind, payload FROM chat_event_outbox ORDER BY id LIMIT ${batch} FOR UPDATE`;
}

/** The rows published: out of the outbox, in the same transaction. */
export async function deleteChatEventOutbox(tx: Pick<Db, '$executeRaw'>, rows: ChatEventOutboxRow[]): Promise<void> {
  await tx.$executeRaw`DELETE FROM chat_event_outbox WHERE id = ANY(${rows.map((row) => row.id)}::bigint[])`;
}
