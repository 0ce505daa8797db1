import type { Caller } from '../http/http.js';
import type { ApiDeps } from '../deps.js';
import type { ToolResultsBody } from './schemas.js';
import { requestFingerprint } from '../http/idempotency.js';
import { runNotFound } from './readRuns.js';
import { AppError, queueUnavailable } from '../../shared/infra/errors.js';
import type { RunJobData } from '../../shared/runs/runJob.js';
import { mintRunKey } from '../../shared/runs/runKey.js';
import { continueParkedRun } from '../../shared/runs/transitions/continue.js';
import { assertWithinLimits } from '../../shared/accounts/usageLimits.js';
import { pendingCalls, type PendingToolCall, type PersistedStep, type ToolOutcome } from '../../shared/agent/steps.js';
import { lockLastStep, recordCallerAnswers } from '../../shared/runs/waitingRuns.js';
import { TRANSITIONS, TransitionRefused } from '../../shared/runs/lifecycle.js';

export type ContinuedRun = { runId: string; status: 'queued' };

const badResults = (code: string, detail: string) =>
  new AppError(
    code,
    400,
    detail,
    'Answer every pending call of GET /api/chat/runs/{runId} (pendingToolCalls) exactly once: results for kind "result", approvals for kind "approval".',
  );

/**
 * POST /api/chat/runs/{runId}/tool-results: the caller answers every call its parked run waits on.
 * The answers are checked against the pending calls stored server-side, written into the step, and
 * the run moves requires_action → queued with a fresh run key, all in one transaction that holds
 * the run's row lock: of concurrent posts exactly one continues the run, the others find it no
 * longer waiting (409). Then the run's job is queued again; any worker continues from the next step.
 */
export async function submitToolResults(deps: ApiDeps, caller: Caller, runId: string, body: ToolResultsBody, idempotencyKey?: string): Promise<ContinuedRun> {
  const claim =
    idempotencyKey && caller.accountId
      ? await deps.idempotency.claim<ContinuedRun>(caller.accountId, `tool-results:${runId}:${idempotencyKey}`, requestFingerprint(body))
      : undefined;
  if (claim?.kind === 'replay') return claim.response;
  try {
    const jobData = await deps.db.$transaction(async (tx) => {
      const [run] = await tx.$queryRaw<{ status: string; episode: number; account_id: string }[]>`
        SELECT status::text, episode, account_id::text FROM runs
        WHERE id = ${runId}::uuid AND (${caller.accountId}::uuid IS NULL OR account_id = ${caller.accountId}::uuid)
        FOR UPDATE`;
      if (!run || (caller.runId && caller.runId !== runId)) throw runNotFound();
      if (!(TRANSITIONS.continue.from as readonly string[]).includes(run.status)) {
        throw new TransitionRefused('continue', runId, run.status, `The run is ${run.status}, not waiting for tool results.`);
      }
      await assertWithinLimits(tx, run.account_id, deps.metrics.usageLimitRefusals, 'tool_results');
      const step = await lockLastStep(tx, runId, run.episode);
      if (!step) throw new TransitionRefused('continue', runId, run.status, 'The run has no step waiting for tool results.');
      const answer = answersFor(pendingCalls(step), body);
      await recordCallerAnswers(tx, { runId, episode: run.episode, step: step.step }, answer);
      if (!(await continueParkedRun(tx, runId))) throw new TransitionRefused('continue', runId, run.status, 'The run is no longer waiting for tool results.');
      return mintRunKey(tx, deps.config, run.account_id, runId);
    });
    await enqueueContinuation(deps, jobData);
    const result: ContinuedRun = { runId, status: 'queued' };
    await claim?.complete(result).catch(() => {});
    deps.logger.info('tool results accepted; the run continues', { runId });
    return result;
  } catch (err) {
    await claim?.release().catch(() => {});
    throw err;
  }
}

/** The run's job again (the parked attempt's job completed; same jobId). If Redis fails here, the sweep re-queues the run. */
async function enqueueContinuation(deps: ApiDeps, jobData: RunJobData): Promise<void> {
  try {
    await deps.admission.requeue(jobData);
  } catch (err) {
    // The continuation is committed: the run is queued in Postgres and the sweep re-queues a queued
    // run without a job, so it is not lost; the caller is told to look again rather than to resend.
    deps.logger.error('could not queue the continued run; the sweep will', { runId: jobData.runId, error: (err as Error).message });
    throw queueUnavailable();
  }
}

/** The caller's answers as step patches; 400 naming the toolCallId for a duplicate, unexpected or missing answer. */
function answersFor(pending: PendingToolCall[], body: ToolResultsBody) {
  const byId = new Map(pending.map((call) => [call.toolCallId, call]));
  const seen = new Set<string>();
  const results: Record<string, ToolOutcome> = {};
  const approvals: PersistedStep['approvals'] = {};
  const check = (toolCallId: string, kind: PendingToolCall['kind']) => {
    if (seen.has(toolCallId)) throw badResults('tool_result_duplicate', `Tool call ${toolCallId} is answered more than once.`);
    seen.add(toolCallId);
    const call = byId.get(toolCallId);
    if (!call) throw badResults('tool_result_unexpected', `Tool call ${toolCallId} is not waiting for an answer.`);
    if (call.kind !== kind) {
      throw badResults(
        'tool_result_unexpected',
        `Tool call ${toolCallId} waits for ${call.kind === 'approval' ? 'an approval' : 'a result'}, not ${kind === 'approval' ? 'an approval' : 'a result'}.`,
      );
    }
  };
  for (const result of body.results) {
    check(result.toolCallId, 'result');
    results[result.toolCallId] = result.error !== undefined ? { error: result.error } : { output: result.output ?? null };
  }
  for (const approval of body.approvals) {
    check(approval.toolCallId, 'approval');
    approvals[approval.toolCallId] = { approved: approval.approved, ...(approval.reason ? { reason: approval.reason } : {}) };
    if (!approval.approved) results[approval.toolCallId] = { denied: true, ...(approval.reason ? { reason: approval.reason } : {}) };
  }
  const missing = pending.find((call) => !seen.has(call.toolCallId));
  if (missing)
    throw badResults(
      'tool_result_missing',
      `Tool call ${missing.toolCallId} (${missing.toolName}) has no ${missing.kind === 'approval' ? 'approval' : 'result'}.`,
    );
  return { results, approvals };
}
