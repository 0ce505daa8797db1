import { randomUUID } from 'node:crypto';
import { AppError, queueUnavailable, tooManyActiveRuns } from '../../shared/infra/errors.js';
import { assertPricedForAccount, assertWithinLimits } from '../../shared/accounts/usageLimits.js';
import { priceOf } from '../../shared/agent/modelCatalogue.js';
import { inSpan, queueSpan, traceparentOf } from '../../shared/infra/tracing.js';
import { modelLabel, resolveModelFor } from '../../shared/agent/models.js';
import type { RunJobData } from '../../shared/runs/runJob.js';
import { isRedisUsable } from '../../shared/infra/redis.js';
import { Prisma } from '../../shared/infra/db.js';
import { activeRunIdOf, lockedActiveRunCount } from '../../shared/runs/activeRun.js';
import { discardHistoryFrom } from '../../shared/runs/discardedRuns.js';
import { mintRunKey } from '../../shared/runs/runKey.js';
import { deleteProvisionedSession, provisionChatRun, type ChatRun } from '../../shared/runs/provisioning.js';
import { lockChat, saveChatSettings } from '../../shared/chats/chatStore.js';
import { addQueuedMessage, queueOf } from '../../shared/chats/queuedMessages.js';
import { BUSY_POLICY, DEFAULT_ON_BUSY, queuePosition } from '../../shared/chats/busyPolicy.js';
import { checkMcpServers, checkToolDefinitions, secretNamesOf } from '../../shared/agent/tools.js';
import { checkWebhook } from '../../shared/webhooks/runWebhooks.js';
import { assertSecretsExist } from '../../shared/accounts/accountSecrets.js';
import type { ApiDeps } from '../deps.js';
import { assertModelReads, attachFiles, resolveAttachments, type UsedFile } from '../../shared/files/attachments.js';
import { hasProviderKey } from '../../shared/accounts/providerKeys.js';
import { checkWorkspaceRequest, type WorkspaceSpec } from '../../shared/workspaces/workspaceRequest.js';
import { setChatWorkspace } from '../../shared/workspaces/workspaceRecords.js';
import { sentByKeyOf, type Caller } from '../http/http.js';
import { requestFingerprint } from '../http/idempotency.js';
import type { SendMessageBody } from './schemas.js';
import { currentSettings, withOverrides, type SettingsOverrides } from './chatSettings.js';
import { chatArchived, chatBusy, chatNotFound, chatQueueFull, messageNotFound } from './chatErrors.js';
import { interruptActiveRun } from './interruptChat.js';

export type MessageStartedRun = { runId: string; chatId: string; sessionId: string; status: 'queued'; messageId: string };
export type MessageQueued = { chatId: string; queued: true; queuedMessageId: string; position: number };
export type SentMessage = MessageStartedRun | MessageQueued;

const ENQUEUE_TIMEOUT_MS = 3_000;
const REDIS_CONNECT_WAIT_MS = 1_000;

/**
 * POST /api/chats/{chatId}/messages (SPEC section 12). Under the chat's row lock: the settings the
 * message names become the chat's; an idle chat starts a run at once (its session, run, user message
 * and run key, then its job); a busy one keeps the message queued (at the back, or at the front with
 * an interrupt of the active run), or refuses it. A queued message becomes a run in the transaction
 * that ends the active run (shared/runs/lifecycle.ts PROMOTION).
 */
/**
 * An edit or a regenerate (SPEC section 19): under the chat's lock, `messageId` (still in the
 * history) and every message from `fromSeq` on leave the history, with the runs that answered them
 * (an active one among them is interrupted), a compaction that covered them is dropped, and the new
 * message goes first.
 */
export type Rewrite = { fromSeq: bigint; messageId: string };

export async function sendMessage(
  deps: ApiDeps,
  caller: Caller,
  chatId: string,
  body: SendMessageBody,
  idempotencyKey?: string,
  rewrite?: Rewrite,
): Promise<SentMessage> {
  const accountId = caller.accountId!;
  const overrides: SettingsOverrides = {
    model:
      body.model === undefined ? undefined : (await resolveModelFor(body.model, deps.config, (provider) => hasProviderKey(deps.db, accountId, provider))).id,
    system: body.system,
    maxOutputTokens: body.maxOutputTokens,
    maxSteps: body.maxSteps,
    tools: body.tools,
    mcpServers: body.mcpServers,
    webhook: body.webhook ? checkWebhook(body.webhook, deps.config.TOOL_URL_ALLOWLIST) : undefined,
  };
  if (body.tools) await checkToolDefinitions(body.tools, deps.config.TOOL_URL_ALLOWLIST, deps.schemas);
  if (body.mcpServers) {
    checkMcpServers(body.mcpServers, deps.config.TOOL_URL_ALLOWLIST);
    await assertSecretsExist(deps.db, accountId, secretNamesOf(body.mcpServers));
  }
  const workspace = checkWorkspaceRequest(body.workspace, deps.config);
  const given = body.prompt !== undefined ? { role: 'user', parts: [{ type: 'text', text: body.prompt }] } : body.message!;
  const attachments = await resolveAttachments(deps, accountId, [given], () => (body.prompt !== undefined ? 'prompt' : 'message'));
  if (!(await isRedisUsable(deps.redis, REDIS_CONNECT_WAIT_MS))) throw queueUnavailable();

  const claim = idempotencyKey
    ? await deps.idempotency.claim<SentMessage>(accountId, `chat-message:${chatId}:${idempotencyKey}`, requestFingerprint(body))
    : undefined;
  if (claim?.kind === 'replay') return claim.response;
  try {
    // The enqueue: its span is the parent of the run the message starts (now, or once it is promoted).
    const accepted = await inSpan('enqueue run', queueSpan(null, chatId), async () => {
      const done = await accept(deps, caller, chatId, body, overrides, workspace, attachments, rewrite);
      if ('jobData' in done) await enqueueOrUndo(deps, done.jobData, done.sessionId);
      return done;
    });
    let result: SentMessage;
    if ('jobData' in accepted) {
      deps.metrics.runsStarted.inc({ model: modelLabel(accepted.model) });
      deps.metrics.chatMessages.inc({ outcome: 'started' });
      result = { runId: accepted.jobData.runId, chatId, sessionId: accepted.sessionId, status: 'queued', messageId: accepted.messageId };
    } else {
      result = accepted.queued;
      deps.metrics.chatMessages.inc({ outcome: accepted.interrupt ? 'interrupting' : 'queued' });
      if (accepted.interrupt)
        await interruptActiveRun(deps, caller, chatId, accepted.interrupt).catch((err: Error) =>
          deps.logger.warn('could not interrupt the active run', { chatId, error: err.message }),
        );
    }
    await claim?.complete(result).catch(() => {});
    deps.logger.info('queued' in result ? 'message queued' : 'message started a run', { chatId, ...('runId' in result ? { runId: result.runId } : {}) });
    return result;
  } catch (err) {
    await claim?.release().catch(() => {});
    if (err instanceof AppError && err.code === 'chat_busy') deps.metrics.chatMessages.inc({ outcome: 'rejected' });
    throw err;
  }
}

/** `interrupt`: the run that was active when the message was queued at the front with onBusy "interrupt" (and only that one). */
type Accepted = { jobData: RunJobData; sessionId: string; messageId: string; model: string } | { queued: MessageQueued; interrupt: string | null };

async function accept(
  deps: ApiDeps,
  caller: Caller,
  chatId: string,
  body: SendMessageBody,
  overrides: SettingsOverrides,
  workspace: WorkspaceSpec | false | null,
  attachments: { messages: { parts: unknown[] }[]; used: UsedFile[]; fileIds: string[] },
  rewrite?: Rewrite,
): Promise<Accepted> {
  const accountId = caller.accountId!;
  const sentByKeyId = sentByKeyOf(caller);
  const parts = attachments.messages[0]!.parts;
  // A rewrite goes before whatever is queued, and the run it replaces stops.
  const busy = BUSY_POLICY[rewrite ? 'interrupt' : (body.onBusy ?? DEFAULT_ON_BUSY)];
  return deps.db.$transaction(async (tx) => {
    const chat = await lockChat(tx, chatId, accountId);
    if (!chat) throw chatNotFound();
    if (chat.archivedAt) throw chatArchived();
    if (rewrite && !(await discardHistoryFrom(tx, chatId, rewrite))) throw messageNotFound();
    const [{ id: activeRunId }] = (await tx.$queryRaw<{ id: string | null }[]>`SELECT ${activeRunIdOf(Prisma.sql`${chatId}::uuid`)} AS id`) as [
      { id: string | null },
    ];
    if (activeRunId && busy.refused) throw chatBusy(activeRunId);
    if ((await lockedActiveRunCount(tx, accountId)) >= deps.config.ACCOUNT_MAX_ACTIVE_RUNS) throw tooManyActiveRuns(deps.config.ACCOUNT_MAX_ACTIVE_RUNS);
    await assertWithinLimits(tx, accountId, deps.metrics.usageLimitRefusals, 'message');
    const settings = withOverrides(await currentSettings(tx, chatId, chat.settings), overrides);
    await assertPricedForAccount(tx, accountId, settings.model, priceOf(settings.model) !== undefined);
    assertModelReads(settings.model, attachments.used);
    await attachFiles(tx, chatId, attachments.fileIds);
    await saveChatSettings(tx, chatId, settings);
    if (workspace !== null) await setChatWorkspace(tx, accountId, chatId, workspace);
    const traceparent = traceparentOf() ?? null;
    const run: ChatRun = { ...settings, metadata: body.metadata ?? null, priority: body.priority ?? 'normal', traceparent, sentByKeyId };

    if (activeRunId) {
      const queue = await queueOf(tx, chatId);
      if (queue.count >= deps.config.CHAT_MAX_QUEUED_MESSAGES) throw chatQueueFull(deps.config.CHAT_MAX_QUEUED_MESSAGES);
      const queuedMessageId = randomUUID();
      await addQueuedMessage(tx, { id: queuedMessageId, chatId, accountId, position: queuePosition(busy, queue), parts, run });
      return {
        queued: { chatId, queued: true as const, queuedMessageId, position: busy.queueAt === 'front' ? 1 : queue.count + 1 },
        interrupt: busy.interruptsActiveRun ? activeRunId : null,
      };
    }

    const sessionId = randomUUID();
    const runId = randomUUID();
    const messageId = await provisionChatRun(tx, { runId, sessionId, accountId, chatId }, run, parts);
    const jobData = await mintRunKey(tx, deps.config, accountId, runId);
    return { jobData, sessionId, messageId, model: settings.model };
  });
}

/** Queues the new run's job; if Redis fails, the run and its message are removed (its session with them) and the caller gets 503. */
async function enqueueOrUndo(deps: ApiDeps, jobData: RunJobData, sessionId: string): Promise<void> {
  try {
    await deps.admission.submitWithin(jobData, ENQUEUE_TIMEOUT_MS);
  } catch (err) {
    deps.logger.error('enqueue failed, undoing the message’s run', { runId: jobData.runId, error: (err as Error).message });
    await deps.admission.withdraw(jobData.runId).catch(() => {});
    await deleteProvisionedSession(deps.db, sessionId).catch((undoErr: Error) =>
      deps.logger.error('could not undo the message’s run', { error: undoErr.message }),
    );
    throw queueUnavailable();
  }
}
