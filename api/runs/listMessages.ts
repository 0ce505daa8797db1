import { shownParts } from '../../shared/files/attachments.js';
import { AppError, notFound } from '../../shared/infra/errors.js';
import type { Usage } from '../../shared/agent/models.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';

const chatNotFound = () => notFound('chat_not_found', 'The chat');

async function lastSeqOfRun(deps: ApiDeps, chatId: string, runId: string): Promise<bigint> {
  const last = await deps.db.message.aggregate({ where: { chatId, runId }, _max: { seq: true } });
  return last._max.seq ?? 0n;
}

/**
 * GET /api/chats/{chatId}/messages: the newest `limit` messages before the cursor, oldest first;
 * `hasMore` says older ones exist (page back with ?before=<id of the first message>).
 */
export async function listMessages(deps: ApiDeps, caller: Caller, chatId: string, query: { before?: string; limit: number }) {
  const chat = await deps.db.chat.findFirst({ where: { id: chatId, accountId: caller.accountId! }, select: { id: true, runs: { select: { id: true } } } });
  if (!chat) throw chatNotFound();
  if (caller.runId && !chat.runs.some((run) => run.id === caller.runId)) throw chatNotFound();
  // A run key or stream token reads the chat up to and including its own run's messages, never later turns.
  const throughSeq = caller.runId ? await lastSeqOfRun(deps, chatId, caller.runId) : undefined;
  let beforeSeq: bigint | undefined;
  if (query.before) {
    const cursor = await deps.db.message.findFirst({ where: { id: query.before, chatId }, select: { seq: true } });
    if (!cursor) throw new AppError('invalid_cursor', 400, `"${query.before}" is not a message of this chat.`, 'Use the id of a message from a previous page.');
    beforeSeq = cursor.seq;
  }
  const rows = await deps.db.message.findMany({
    where: {
      chatId,
      // An edit's or a regenerate's discarded messages (and whatever their runs persist later) are never shown.
      discardedAt: null,
      OR: [{ runId: null }, { run: { discarded: false } }],
      ...(beforeSeq !== undefined || throughSeq !== undefined
        ? { seq: { ...(beforeSeq !== undefined ? { lt: beforeSeq } : {}), ...(throughSeq !== undefined ? { lte: throughSeq } : {}) } }
        : {}),
    },
    orderBy: { seq: 'desc' },
    take: query.limit + 1,
  });
  const hasMore = rows.length > query.limit;
  const page = rows.slice(0, query.limit).reverse();
  return {
    hasMore,
    messages: page.map((row) => ({
      id: row.id,
      role: row.role,
      parts: shownParts(row.parts as unknown[], deps.config.PUBLIC_BASE_URL) as { type: 'text'; text: string }[],
      createdAt: row.createdAt.toISOString(),
      metadata: {
        runId: row.runId,
        model: row.model,
        usage:
          row.role === 'assistant'
            ? ({
                inputTokens: row.inputTokens ?? 0,
                outputTokens: row.outputTokens ?? 0,
                cachedInputTokens: row.cachedInputTokens ?? 0,
                reasoningTokens: row.reasoningTokens ?? 0,
                totalTokens: (row.inputTokens ?? 0) + (row.outputTokens ?? 0),
              } satisfies Usage)
            : null,
        costMicros: row.costMicros === null ? null : Number(row.costMicros),
        runtimeMs: row.runtimeMs,
        providerResponseId: row.providerResponseId,
        interrupted: row.interrupted,
      },
    })),
  };
}
