import { DEFAULT_PRIORITY, type Priority } from '../../shared/flow/priorities.js';
import { DEFAULT_MAX_STEPS } from '../../shared/runs/lifecycle.js';
import { randomUUID } from 'node:crypto';
import type { Caller } from '../http/http.js';
import { assertSecretsExist } from '../../shared/accounts/accountSecrets.js';
import type { ApiDeps } from '../deps.js';
import { hasProviderKey } from '../../shared/accounts/providerKeys.js';
import { catalogueDefault, priceOf } from '../../shared/agent/modelCatalogue.js';
import { assertPricedForAccount } from '../../shared/accounts/usageLimits.js';
import { checkWorkspaceRequest, type WorkspaceSpec } from '../../shared/workspaces/workspaceRequest.js';
import { setChatWorkspace } from '../../shared/workspaces/workspaceRecords.js';
import type { StartRunBody } from './schemas.js';
import { mintEphemeralKeyData, revokeRunKey } from '../../shared/accounts/apiKeys.js';
import { endRun } from '../../shared/runs/transitions/endUnheld.js';
import { deleteProvisionedSession } from '../../shared/runs/provisioning.js';
import { AppError, databaseUnavailable, isForeignKeyViolation, queueUnavailable, tooManyActiveRuns, unauthorized } from '../../shared/infra/errors.js';
import { assertWithinLimits } from '../../shared/accounts/usageLimits.js';
import { inSpan, queueSpan, traceparentOf } from '../../shared/infra/tracing.js';
import { jobContext } from '../../shared/runs/runJob.js';
import { modelLabel, resolveModelFor } from '../../shared/agent/models.js';
import { checkMcpServers, checkToolDefinitions, secretNamesOf } from '../../shared/agent/tools.js';
import { checkWebhook, type RunWebhook } from '../../shared/webhooks/runWebhooks.js';
import type { RunJobData } from '../../shared/runs/runJob.js';
import { sealSecret } from '../../shared/accounts/secrets.js';
import { withLogContext } from '../../shared/infra/context.js';
import { isRedisUsable } from '../../shared/infra/redis.js';
import { requestFingerprint } from '../http/idempotency.js';
import { assertModelReads, attachFiles, resolveAttachments } from '../../shared/files/attachments.js';
import { sentByKeyOf } from '../http/http.js';

export type StartRunResult = { runId: string; chatId: string; sessionId: string; status: 'queued' };

const ENQUEUE_TIMEOUT_MS = 3_000;
/** How long a request waits for a Redis connection that is still connecting (a just-started api). */
const REDIS_CONNECT_WAIT_MS = 1_000;

type StoredMessage = { role: string; parts: unknown[] };

function toStoredMessages(body: StartRunBody): StoredMessage[] {
  if (body.prompt !== undefined) return [{ role: 'user', parts: [{ type: 'text', text: body.prompt }] }];
  return body.messages!.map((message) => ({ role: message.role, parts: message.parts }));
}

const isRedisFailure = (err: unknown) =>
  err instanceof Error && !(err instanceof AppError) && /connection|stream isn't writeable|ECONNREFUSED|timed? ?out|ENOTFOUND|closed|Redis/i.test(err.message);

/**
 * authenticate → validate → check limits → provision → mint key → enqueue → answer.
 * Provisioning and the key are one SQL transaction; if the enqueue fails, the rows are removed,
 * so a caller never gets a 202 for a run that will not run.
 */
export async function startRun(deps: ApiDeps, caller: Caller, body: StartRunBody, idempotencyKey?: string): Promise<StartRunResult> {
  const accountId = caller.accountId!;
  const model = await resolveModelFor(body.model ?? catalogueDefault() ?? deps.config.DEFAULT_MODEL, deps.config, (provider) =>
    hasProviderKey(deps.db, accountId, provider),
  );
  await assertPricedForAccount(deps.db, accountId, model.id, priceOf(model.id) !== undefined);
  if (body.tools) await checkToolDefinitions(body.tools, deps.config.TOOL_URL_ALLOWLIST, deps.schemas);
  if (body.mcpServers) {
    checkMcpServers(body.mcpServers, deps.config.TOOL_URL_ALLOWLIST);
    await assertSecretsExist(deps.db, accountId, secretNamesOf(body.mcpServers));
  }
  const attachments = await resolveAttachments(deps, accountId, toStoredMessages(body), (m) => (body.prompt !== undefined ? 'prompt' : `messages[${m}]`));
  assertModelReads(model.id, attachments.used);
  const webhook = body.webhook ? checkWebhook(body.webhook, deps.config.TOOL_URL_ALLOWLIST) : null;
  const workspace = checkWorkspaceRequest(body.workspace, deps.config);
  if (!(await isRedisUsable(deps.redis, REDIS_CONNECT_WAIT_MS))) throw queueUnavailable();

  let claim;
  try {
    claim = idempotencyKey ? await deps.idempotency.claim<StartRunResult>(accountId, idempotencyKey, requestFingerprint(body)) : undefined;
  } catch (err) {
    throw isRedisFailure(err) ? queueUnavailable() : err;
  }
  if (claim?.kind === 'replay') return claim.response;

  try {
    const runId = randomUUID();
    const result = await withLogContext({ runId }, async () => {
      // The enqueue: its span is the run's parent in the trace (every attempt is its child).
      const provisioned = await inSpan('enqueue run', queueSpan(runId), async () => {
        const run = await provisionRun(deps, caller, runId, model.id, body, attachments.messages, webhook, idempotencyKey);
        if (workspace) await requestWorkspaceOrUndo(deps, run, workspace);
        if (attachments.fileIds.length) await attachFilesOrUndo(deps, run, attachments.fileIds);
        await enqueueOrUndo(deps, run);
        return run;
      });
      deps.logger.info('run accepted', { accountId, model: model.id });
      return { runId, chatId: provisioned.chatId, sessionId: provisioned.sessionId, status: 'queued' as const };
    });
    await claim?.complete(result).catch((err: Error) => deps.logger.warn('could not store idempotent response', { error: err.message }));
    deps.metrics.runsStarted.inc({ model: modelLabel(model.id) });
    return result;
  } catch (err) {
    await claim?.release().catch(() => {});
    throw err;
  }
}

type Provisioned = { runId: string; chatId: string; sessionId: string; accountId: string; keyId: string; rawKey: string; priority: Priority };

async function provisionRun(
  deps: ApiDeps,
  caller: Caller,
  runId: string,
  model: string,
  body: StartRunBody,
  messages: StoredMessage[],
  webhook: RunWebhook | null,
  idempotencyKey?: string,
): Promise<Provisioned> {
  const accountId = caller.accountId!;
  const sessionId = randomUUID();
  const chatId = randomUUID();
  const keyId = randomUUID();
  const key = mintEphemeralKeyData(accountId, runId, deps.config.EPHEMERAL_KEY_TTL_MS);
  const priority = body.priority ?? DEFAULT_PRIORITY;
  let provisioned: boolean;
  try {
    provisioned = await deps.provisioner.provision({
      accountId,
      runId,
      sessionId,
      chatId,
      model,
      system: body.system ?? null,
      maxOutputTokens: body.maxOutputTokens ?? null,
      idempotencyKey: idempotencyKey ?? null,
      title: body.title ?? null,
      metadata: body.metadata ?? null,
      messages,
      tools: body.tools?.length ? body.tools : null,
      mcpServers: body.mcpServers?.length ? body.mcpServers : null,
      webhook,
      maxSteps: body.maxSteps ?? DEFAULT_MAX_STEPS,
      traceparent: traceparentOf() ?? null,
      priority,
      sentByKeyId: sentByKeyOf(caller),
      key: { id: keyId, hash: key.row.hash, prefix: key.row.prefix, scopes: key.row.scopes, expiresAt: key.row.expiresAt },
    });
  } catch (err) {
    // The key's account erased a moment ago (another api process's key cache still knew the key): 401, as from now on.
    if (isForeignKeyViolation(err, 'account_id')) throw unauthorized('The account of this key was erased.');
    deps.logger.error('provisioning failed', { error: (err as Error).message });
    throw databaseUnavailable();
  }
  if (!provisioned) {
    // Refused under the account's lock: it is full, or it reached a spend limit (SPEC section 14).
    await assertWithinLimits(deps.db, accountId, deps.metrics.usageLimitRefusals, 'start');
    throw tooManyActiveRuns(deps.config.ACCOUNT_MAX_ACTIVE_RUNS);
  }
  return { runId, chatId, sessionId, accountId, keyId, rawKey: key.rawKey, priority };
}

async function enqueueOrUndo(deps: ApiDeps, run: Provisioned): Promise<void> {
  const data: RunJobData = {
    runId: run.runId,
    accountId: run.accountId,
    keyId: run.keyId,
    ephemeralKey: sealSecret(run.rawKey, deps.config.RUNYARD_SECRET),
    priority: run.priority,
    ...jobContext(run.runId),
  };
  try {
    await deps.admission.submitWithin(data, ENQUEUE_TIMEOUT_MS);
  } catch (err) {
    deps.logger.error('enqueue failed, undoing the provisioned run', { error: (err as Error).message });
    await undoProvisioning(deps, run);
    throw queueUnavailable();
  }
}

/** The run's chat works in its session's workspace (SPEC section 18), asked for before the job exists; undone with the run if it cannot be. */
async function requestWorkspaceOrUndo(deps: ApiDeps, run: Provisioned, spec: WorkspaceSpec): Promise<void> {
  try {
    await deps.db.$transaction((tx) => setChatWorkspace(tx, run.accountId, run.chatId, spec));
  } catch (err) {
    deps.logger.error('could not ask for the run’s workspace, undoing the run', { error: (err as Error).message });
    await undoProvisioning(deps, run);
    throw databaseUnavailable();
  }
}

/** The run's chat uses the files its messages carry (SPEC section 20); a file deleted meanwhile undoes the run (404). */
async function attachFilesOrUndo(deps: ApiDeps, run: Provisioned, fileIds: string[]): Promise<void> {
  try {
    await attachFiles(deps.db, run.chatId, fileIds);
  } catch (err) {
    await undoProvisioning(deps, run);
    if (err instanceof AppError) throw err;
    deps.logger.error('could not attach the run’s files, undoing the run', { error: (err as Error).message });
    throw databaseUnavailable();
  }
}

/** Removes everything provisioned for a run that could not be enqueued (its key goes with it). */
async function undoProvisioning(deps: ApiDeps, run: Provisioned): Promise<void> {
  // If the add reached Redis after all (a timeout on a slow server), a worker finds no run and drops the job.
  await deps.admission.withdraw(run.runId).catch(() => {});
  try {
    await deps.db.$transaction([revokeRunKey(deps.db, run), deleteProvisionedSession(deps.db, run.sessionId)]);
  } catch (err) {
    // Leave the run visibly failed (and cleaned up, in the same statement) rather than silently queued.
    deps.logger.error('could not undo a run that failed to enqueue', { error: (err as Error).message });
    await endRun(deps.sql, run.runId, {
      status: 'failed',
      reason: 'failed',
      from: ['queued'],
      error: { code: 'enqueue_failed', message: 'The run could not be queued.', retryable: true },
    }).catch(() => {});
  }
}
