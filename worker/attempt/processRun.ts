import { releaseSpend } from '../../shared/accounts/spendReservations.js';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { withLogContext } from '../../shared/infra/context.js';
import { RunError } from '../../shared/infra/errors.js';
import { attemptChunk, closingChunks, FencedError, RunEventWriter, runStatusChunk, type StreamOptions } from '../../shared/stream/events.js';
import { chargeOf, costMicros, modelLabel } from '../../shared/agent/models.js';
import { runJobSchema, type RunJobData } from '../../shared/runs/runJob.js';
import { reopenRunForReplay } from '../../shared/runs/transitions/replay.js';
import { openSecret } from '../../shared/accounts/secrets.js';
import { RunStopped } from '../fleet/activeRuns.js';
import { retryWhileDatabaseUnreachable, waitOutClaimFailure } from '../fleet/dependencyWaits.js';
import type { RunWorkspace } from '../workspaces/workspaceManager.js';
import { interruptedParts, runAgentLoop, UsageLimitReached, WaitForCapacity } from '../agent/agentLoop.js';
import { newProgress, type LoopProgress } from '../agent/loopContext.js';
import type { PendingToolCall } from '../../shared/agent/steps.js';
import type { WorkerDeps } from '../deps.js';
import { endRequestedCancel } from '../fleet/requestedCancels.js';
import { inAttemptSpan } from './runSpans.js';
import { isRunnableStatus } from '../../shared/runs/lifecycle.js';
import type { AttemptRun, BegunAttempt } from './runStore.js';

export const streamOptions = (deps: WorkerDeps): StreamOptions & { timings: boolean } => ({
  prefix: deps.config.QUEUE_PREFIX,
  maxEvents: deps.config.RUN_STREAM_MAX_EVENTS,
  ttlMs: deps.config.RUN_STREAM_TTL_MS,
  timings: deps.config.RUNYARD_STREAM_TIMINGS,
});

/** How the error of an attempt that lost its run begins (another attempt owns it now). */
export const FENCED = 'fenced';

/** The BullMQ processor for run jobs. */
export function createRunProcessor(deps: WorkerDeps) {
  return async (job: Job, token?: string): Promise<{ status: string }> => {
    const parsed = runJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError('invalid run job payload');
    return withLogContext({ runId: parsed.data.runId, jobId: job.id }, () => processRun(deps, job, parsed.data, token));
  };
}

async function processRun(deps: WorkerDeps, job: Job, data: RunJobData, token?: string): Promise<{ status: string }> {
  let begun = await deps.store.begin(data.runId).catch((err: unknown) => waitOutClaimFailure(deps, job, token, err));
  if (!begun) {
    const state = await deps.store.state(data.runId);
    if (!state) {
      // Its chat or account was erased (or it was never queued): the failed job must not keep the sealed run key.
      await job.updateData({ runId: data.runId }).catch(() => {});
      throw new UnrecoverableError('run_not_found: the run was removed (erased, or it could not be queued)');
    }
    const { status } = state;
    // Runnable but not claimable: a cancel was requested that no worker acted on. It ends here.
    if (state.cancelRequested && isRunnableStatus(status)) {
      const ended = await endRequestedCancel({ ...deps, streamOptions: streamOptions(deps) }, { id: data.runId, ...state });
      return { status: ended ? 'cancelled' : 'skipped' };
    }
    if (status !== 'failed') {
      deps.logger.info('run is finished or cancelled; nothing to do', { status });
      return { status };
    }
    // Only a retry of the failed job (Bull Board's retry button) brings a failed run back here:
    // treat it exactly like a replay — new episode, fresh key — and then run it.
    const reopened = await reopenRunForReplay(deps.db, deps.config, data.runId, { onlyStatus: 'failed' });
    data = reopened.jobData;
    await job.updateData(data);
    deps.logger.info('failed job retried from the queue: replaying the run', { episode: reopened.episode });
    begun = await deps.store.begin(data.runId);
    if (!begun) return { status: 'skipped' };
  }
  const claimed = begun;
  return withLogContext({ attempt: claimed.run.attempt }, () =>
    inAttemptSpan(job, data, claimed, deps.workerId, () => runAttempt(deps, job, data, claimed, token)),
  );
}

async function runAttempt(deps: WorkerDeps, job: Job, data: RunJobData, begun: BegunAttempt, token?: string): Promise<{ status: string }> {
  const { config, logger, metrics } = deps;
  const { run, startedAt } = begun;
  const { attempt } = run;
  const events = new RunEventWriter(deps.redis, streamOptions(deps), run.id, attempt);
  metrics.attemptsStarted.inc({ model: modelLabel(run.model) });
  metrics.queueWait.observe(Math.max(0, startedAt.getTime() - job.timestamp) / 1000);
  if (attempt > 1) events.emit(attemptChunk(attempt, begun.steps.length));
  events.emit({ type: 'start', messageId: `${run.id}-${attempt}` });
  events.emit(runStatusChunk({ status: 'running', attempt }));
  logger.info('attempt started', { model: run.model, workerId: deps.workerId, resumeFromStep: begun.steps.length });

  // A model call an earlier attempt left in flight (its worker died mid-call) is charged first.
  await deps.calls.chargeLost(run.id, attempt).catch((err: Error) => logger.warn('could not charge a lost model call', { error: err.message }));
  const controller = deps.active.add(run.id, attempt);
  const progress = newProgress();
  let firstTokenAt = 0;
  const startMs = Date.now();
  const attemptCtx: AttemptContext = { deps, job, run, events, progress, startMs, token };
  try {
    const workspace = begun.workspace ? await openWorkspace(deps, begun.workspace, run.accountId) : undefined;
    const result = await runAgentLoop(
      {
        deps,
        steps: deps.steps,
        run,
        events,
        apiKey: openSecret(data.ephemeralKey, config.RUNYARD_SECRET),
        signal: controller.signal,
        chat: begun.chat,
        accountSettings: begun.account,
        sealedToolSecrets: begun.sealedToolSecrets,
        workspace,
        onText: () => {
          if (!firstTokenAt) {
            firstTokenAt = Date.now();
            metrics.timeToFirstToken.observe({ model: modelLabel(run.model) }, (firstTokenAt - startMs) / 1000);
          }
          // A fenced attempt stops spending tokens at once.
          if (events.isFenced) controller.abort(new RunStopped('lost'));
        },
      },
      begun.steps,
      progress,
    );
    await events.flush();
    if (result.outcome === 'parked') return await park(attemptCtx, result);
    const saved = await retryWhileDatabaseUnreachable(deps, undefined, () =>
      deps.store.finish({
        run,
        status: 'completed',
        output: {
          parts: result.parts,
          steps: result.steps,
          finishReason: result.finishReason,
          model: run.model,
          usage: result.usage,
          costMicros: costMicros(run.model, result.usage),
          runtimeMs: Date.now() - startMs,
          providerResponseId: result.providerResponseId,
          interrupted: false,
          uncharged: chargeOf(run.model, result.uncharged),
          contextTokens: result.lastInputTokens,
          requestTitle: config.CHAT_TITLES,
        },
      }),
    );
    if (!saved) throw new FencedError(run.id, attempt);
    await finishStream(events, { status: 'completed', usage: result.usage });
    recordRunFinished(deps, run, 'completed', startMs);
    return { status: 'completed' };
  } catch (err) {
    const stop = controller.signal.reason instanceof RunStopped ? controller.signal.reason.reason : undefined;
    if (stop === 'lost' || err instanceof FencedError || events.isFenced) return lostOwnership(attemptCtx);
    if (stop === 'cancelled') return endCancelled(attemptCtx);
    if (stop === 'shutdown') return handBack(attemptCtx, 'worker_shutdown', 0);
    if (err instanceof WaitForCapacity) return handBack(attemptCtx, 'waiting_for_capacity', err.waitMs);
    if (err instanceof UsageLimitReached) return endOverLimit(attemptCtx, err);
    return recordFailure(attemptCtx, err);
  } finally {
    deps.active.remove(run.id, controller);
    if (begun.workspace) deps.workspaces?.manager.release(begun.workspace.sessionId);
    // Its calls are charged by now (the statement that ended the attempt): what they held goes back.
    if (begun.account.hasLimits)
      await releaseSpend(deps.sql, run.id).catch((err: Error) =>
        deps.logger.warn('could not release the run’s spend reservation (its lease ends it)', { error: err.message }),
      );
  }
}

/** The chat's workspace on this worker (made the first time); not retried when it cannot be made, nor when this fleet has no sandbox. */
async function openWorkspace(deps: WorkerDeps, workspace: RunWorkspace, accountId: string) {
  if (!deps.workspaces)
    throw new RunError('workspaces_unavailable', 'this worker has no sandbox for workspaces (install bubblewrap, or set WORKSPACE_DRIVER)', false);
  const started = Date.now();
  const open = await deps.workspaces.manager.open(workspace, accountId);
  deps.metrics.workspacesOpened.inc({ how: workspace.status === 'pending' ? 'created' : 'opened' });
  deps.logger.info('workspace open', { sessionId: workspace.sessionId, version: open.version, ms: Date.now() - started });
  return { open, manager: deps.workspaces.manager };
}

/**
 * The step waits for the caller (client tool results, approvals): the run parks in requires_action,
 * its key revoked, no worker holding it. Its stream stays open; POST .../tool-results continues it.
 */
async function park(ctx: AttemptContext, result: LoopProgress & { pending: PendingToolCall[] }): Promise<{ status: string }> {
  const { deps, run, events } = ctx;
  const parked = await deps.store.park(run, { steps: result.steps, usage: result.usage, costMicros: costMicros(run.model, result.usage) });
  if (!parked) throw new FencedError(run.id, run.attempt);
  events.emit(runStatusChunk({ status: 'requires_action', pendingToolCalls: result.pending }));
  await events.flush().catch(() => {});
  deps.logger.info('run waits for tool results', { pending: result.pending.map((call) => ({ toolCallId: call.toolCallId, kind: call.kind })) });
  return { status: 'requires_action' };
}

/** One attempt as its outcome handlers see it. */
type AttemptContext = {
  deps: WorkerDeps;
  job: Job;
  run: AttemptRun;
  events: RunEventWriter;
  progress: LoopProgress;
  startMs: number;
  token?: string;
};

/** The run belongs to another attempt (or the sweep finished it): this job must not touch it again. */
function lostOwnership({ deps, run }: AttemptContext): never {
  deps.metrics.fenced.inc();
  deps.logger.warn('attempt lost ownership of the run; its late writes are dropped');
  // If BullMQ's lock is gone too, this result is ignored anyway.
  throw new UnrecoverableError(`${FENCED}: attempt ${run.attempt} no longer owns run ${run.id}`);
}

/** Cancelled while running: keep what was generated (marked interrupted) and end the run cancelled. */
async function endCancelled(ctx: AttemptContext): Promise<{ status: string }> {
  await endWithOutputSoFar(ctx, 'cancelled');
  await finishStream(ctx.events, { status: 'cancelled' });
  recordRunFinished(ctx.deps, ctx.run, 'cancelled', ctx.startMs);
  return { status: 'cancelled' };
}

/** The account reached a spend limit before a model call: the run ends failed (not retried), what it generated kept. */
async function endOverLimit(ctx: AttemptContext, err: UsageLimitReached): Promise<{ status: string }> {
  const error = { code: err.code, message: err.message };
  ctx.deps.logger.warn('run stopped by its account’s spend limit', { limit: err.reached });
  await endWithOutputSoFar(ctx, 'failed', error);
  await finishStream(ctx.events, { status: 'failed', error: { ...error, retryable: false } });
  recordRunFinished(ctx.deps, ctx.run, 'failed', ctx.startMs);
  throw new UnrecoverableError(`${error.code}: ${error.message}`);
}

/** Ends the run with the steps and text it has so far as its message (an unfinished step's calls closed). */
async function endWithOutputSoFar(ctx: AttemptContext, status: 'cancelled' | 'failed', error?: { code: string; message: string }): Promise<void> {
  const { deps, run, events, progress, startMs } = ctx;
  const parts = interruptedParts({ events }, progress);
  events.emit({ type: 'finish-step' });
  await events.flush().catch(() => {});
  const saved = await deps.store.finish({
    run,
    status,
    output: {
      parts,
      steps: progress.steps,
      finishReason: status === 'cancelled' ? 'cancelled' : 'error',
      model: run.model,
      usage: progress.usage,
      costMicros: progress.usage.totalTokens > 0 ? costMicros(run.model, progress.usage) : null,
      runtimeMs: Date.now() - startMs,
      providerResponseId: progress.providerResponseId,
      interrupted: status === 'cancelled',
      uncharged: chargeOf(run.model, progress.uncharged),
      contextTokens: progress.lastInputTokens,
      ...(error ? { error } : {}),
    },
  });
  if (!saved) lostOwnership(ctx);
}

const HAND_BACK_MESSAGES = {
  worker_shutdown: 'the worker shut down before the attempt finished',
  waiting_for_capacity: 'the model had no fleet-wide capacity (MODEL_RATE_LIMITS, or a provider 429); the run waits for it off the worker',
} as const;

/**
 * Hands the run back to its queue, to be taken again in `delayMs`, not counted as an attempt: the
 * worker is shutting down (at once, instead of waiting for the lock to expire), or the model has no
 * capacity now (the run waits holding no worker slot). A later attempt resumes from its durable steps.
 */
async function handBack({ deps, job, run, events, token, progress }: AttemptContext, reason: keyof typeof HAND_BACK_MESSAGES, delayMs: number): Promise<never> {
  const error = { code: reason, message: HAND_BACK_MESSAGES[reason], retryable: true };
  if (await deps.store.fail(run.id, run.attempt, error, false, 'interrupted', chargeOf(run.model, progress.uncharged))) {
    events.emit(runStatusChunk({ status: 'queued', reason }));
    await events.flush().catch(() => {});
  }
  if (reason === 'waiting_for_capacity') deps.logger.info('run waits for model capacity', { waitMs: delayMs });
  if (token) await job.moveToDelayed(Date.now() + delayMs, token);
  throw new DelayedError();
}

/** The attempt failed: retried with backoff while attempts remain and the error allows it, else the run fails. */
async function recordFailure(ctx: AttemptContext, err: unknown): Promise<never> {
  const { deps, job, run, events, startMs } = ctx;
  const error = classify(err);
  // A provider's 429 with Retry-After: every worker holds its calls to this model for that long.
  if (error.retryAfterMs && error.code === 'provider_rate_limited') await pauseModel(deps, run.model, error.retryAfterMs);
  const attemptsAllowed = job.opts.attempts ?? deps.config.RUN_MAX_ATTEMPTS;
  const final = !error.retryable || job.attemptsMade + 1 >= attemptsAllowed;
  deps.logger.warn('attempt failed', {
    code: error.code,
    error: error.message,
    retryable: error.retryable,
    final,
    cause: err instanceof RunError ? undefined : (err as Error)?.message,
  });
  const charge = chargeOf(run.model, ctx.progress.uncharged);
  const recorded = await deps.store.fail(
    run.id,
    run.attempt,
    { code: error.code, message: error.message, retryable: error.retryable },
    final,
    'failed',
    charge,
  );
  if (!recorded) return lostOwnership(ctx);
  if (!final) {
    deps.metrics.retries.inc({ code: error.code });
    events.emit(runStatusChunk({ status: 'retrying', attempt: run.attempt, error: { code: error.code, message: error.message } }));
    await events.flush().catch(() => {});
    throw error;
  }
  await finishStream(events, { status: 'failed', error: { code: error.code, message: error.message, retryable: error.retryable } });
  recordRunFinished(deps, run, 'failed', startMs);
  throw new UnrecoverableError(`${error.code}: ${error.message}`);
}

async function pauseModel(deps: WorkerDeps, model: string, ms: number): Promise<void> {
  deps.metrics.rateLimitPauses.inc({ model: modelLabel(model) });
  deps.logger.warn('the provider asked to wait: model paused for the fleet', { model, pauseMs: ms });
  await deps.rateLimits.pause(model, ms).catch((err: Error) => deps.logger.warn('could not pause the model fleet-wide', { error: err.message }));
}

async function finishStream(events: RunEventWriter, outcome: Parameters<typeof closingChunks>[0]): Promise<void> {
  for (const chunk of closingChunks(outcome)) events.emit(chunk);
  events.end();
  await events.flush().catch(() => {});
}

/** The run ended (and was cleaned up, in the same statement): count it. */
function recordRunFinished(deps: WorkerDeps, run: AttemptRun, status: 'completed' | 'failed' | 'cancelled', startMs: number): void {
  deps.metrics.runsFinished.inc({ status, model: modelLabel(run.model) });
  deps.metrics.runDuration.observe({ status }, (Date.now() - startMs) / 1000);
  deps.logger.info('run finished', { status, runtimeMs: Date.now() - startMs });
}

function classify(err: unknown): RunError {
  if (err instanceof RunError) return err;
  // Anything unexpected (a lost database or Redis connection, a bug) is retried: the attempt may succeed elsewhere.
  return new RunError('internal_error', 'the worker hit an unexpected error', true);
}
