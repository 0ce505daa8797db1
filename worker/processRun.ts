import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { withLogContext } from '../shared/context.js';
import { RunError } from '../shared/errors.js';
import { closingChunks, FencedError, RunEventWriter, type StreamOptions } from '../shared/events.js';
import { costMicros, emptyUsage, parseModelId } from '../shared/models.js';
import { runJobSchema, type RunJobData } from '../shared/queue.js';
import { reopenRunForReplay } from '../shared/replay.js';
import { openSecret } from '../shared/secrets.js';
import { RunStopped, type StopReason } from './activeRuns.js';
import type { WorkerDeps } from './deps.js';
import type { AttemptRun, BegunAttempt } from './runStore.js';

export const streamOptions = (deps: WorkerDeps): StreamOptions & { timings: boolean } => ({
  prefix: deps.config.QUEUE_PREFIX,
  maxEvents: deps.config.RUN_STREAM_MAX_EVENTS,
  ttlMs: deps.config.RUN_STREAM_TTL_MS,
  timings: deps.config.RUNYARD_STREAM_TIMINGS,
});

/** The BullMQ processor for run jobs. */
export function createRunProcessor(deps: WorkerDeps) {
  return async (job: Job, token?: string): Promise<{ status: string }> => {
    const parsed = runJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError('invalid run job payload');
    return withLogContext({ runId: parsed.data.runId, jobId: job.id }, () => processRun(deps, job, parsed.data, token));
  };
}

async function processRun(deps: WorkerDeps, job: Job, data: RunJobData, token?: string): Promise<{ status: string }> {
  let begun = await deps.store.begin(data.runId);
  if (!begun) {
    const status = await deps.store.status(data.runId);
    if (!status) throw new UnrecoverableError('run_not_found: the run was removed (it could not be queued)');
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
  return withLogContext({ attempt: begun.run.attempt }, () => runAttempt(deps, job, data, begun, token));
}

async function runAttempt(deps: WorkerDeps, job: Job, data: RunJobData, begun: BegunAttempt, token?: string): Promise<{ status: string }> {
  const { config, logger, metrics } = deps;
  const { run, startedAt } = begun;
  const { attempt } = run;
  const model = parseModelId(run.model);
  const events = new RunEventWriter(deps.redis, streamOptions(deps), run.id, attempt);
  const textId = `text-${attempt}`;
  metrics.attemptsStarted.inc({ model: run.model });
  metrics.queueWait.observe(Math.max(0, startedAt.getTime() - job.timestamp) / 1000);
  if (attempt > 1) events.emit({ type: 'data-attempt', data: { attempt } });
  events.emit({ type: 'start', messageId: `${run.id}-${attempt}` });
  events.emit({ type: 'data-run-status', data: { status: 'running', attempt } });
  events.emit({ type: 'start-step' });
  events.emit({ type: 'text-start', id: textId });
  logger.info('attempt started', { model: run.model, workerId: deps.workerId });

  const controller = deps.active.add(run.id, attempt);
  let text = '';
  let firstTokenAt = 0;
  const startMs = Date.now();
  try {
    if (!model) throw new RunError('invalid_run', `unknown model ${run.model}`, false);
    const apiKey = openSecret(data.ephemeralKey, config.RUNYARD_SECRET);
    const result = await deps.providers(model.provider).stream(
      {
        model,
        messages: begun.conversation,
        system: run.system ?? undefined,
        maxOutputTokens: run.maxOutputTokens ?? undefined,
        signal: controller.signal,
        context: {
          runId: run.id,
          accountId: run.accountId,
          apiKey,
          env: { RUNYARD_API_KEY: apiKey, RUNYARD_RUN_ID: run.id, RUNYARD_API_URL: deps.apiBaseUrl },
        },
      },
      (delta) => {
        if (!firstTokenAt) {
          firstTokenAt = Date.now();
          metrics.timeToFirstToken.observe({ model: run.model }, (firstTokenAt - startMs) / 1000);
        }
        text += delta;
        events.emit({ type: 'text-delta', id: textId, delta });
        // A fenced attempt stops spending tokens at once.
        if (events.isFenced) controller.abort(new RunStopped('lost'));
      },
    );
    controller.signal.throwIfAborted();
    events.emit({ type: 'text-end', id: textId });
    events.emit({ type: 'finish-step' });
    await events.flush();
    const saved = await deps.store.finish({
      run,
      status: 'completed',
      output: {
        text,
        model: run.model,
        usage: result.usage,
        costMicros: costMicros(run.model, result.usage),
        runtimeMs: Date.now() - startMs,
        providerResponseId: result.providerResponseId,
        interrupted: false,
      },
    });
    if (!saved) throw new FencedError(run.id, attempt);
    await finishStream(events, { status: 'completed', usage: result.usage });
    recordRunFinished(deps, run, 'completed', startMs);
    return { status: 'completed' };
  } catch (err) {
    const stop = controller.signal.reason instanceof RunStopped ? controller.signal.reason.reason : undefined;
    return await handleAttemptError(deps, job, run, attempt, events, { text, startMs, textId }, err, stop, token);
  } finally {
    deps.active.remove(run.id, controller);
  }
}

async function finishStream(events: RunEventWriter, outcome: Parameters<typeof closingChunks>[0]): Promise<void> {
  for (const chunk of closingChunks(outcome)) events.emit(chunk);
  events.end();
  await events.flush().catch(() => {});
}

/** The run ended (and was cleaned up, in the same statement): count it. */
function recordRunFinished(deps: WorkerDeps, run: AttemptRun, status: 'completed' | 'failed' | 'cancelled', startMs: number): void {
  deps.metrics.runsFinished.inc({ status, model: run.model });
  deps.metrics.runDuration.observe({ status }, (Date.now() - startMs) / 1000);
  deps.logger.info('run finished', { status, runtimeMs: Date.now() - startMs });
}

function classify(err: unknown): RunError {
  if (err instanceof RunError) return err;
  // Anything unexpected (a lost database or Redis connection, a bug) is retried: the attempt may succeed elsewhere.
  return new RunError('internal_error', 'the worker hit an unexpected error', true);
}

async function handleAttemptError(
  deps: WorkerDeps,
  job: Job,
  run: AttemptRun,
  attempt: number,
  events: RunEventWriter,
  partial: { text: string; startMs: number; textId: string },
  err: unknown,
  stop: StopReason | undefined,
  token?: string,
): Promise<{ status: string }> {
  const { store, logger, metrics, config } = deps;
  const reason = stop ?? (err instanceof FencedError || events.isFenced ? 'lost' : undefined);

  if (reason === 'lost') {
    metrics.fenced.inc();
    logger.warn('attempt lost ownership of the run; its late writes are dropped');
    // The run belongs to another attempt (or was finished by the sweep): this job must not touch it
    // again. If BullMQ's lock is gone too, this result is ignored anyway.
    throw new UnrecoverableError(`fenced: attempt ${attempt} no longer owns run ${run.id}`);
  }

  if (reason === 'cancelled') {
    events.emit({ type: 'text-end', id: partial.textId });
    events.emit({ type: 'finish-step' });
    await events.flush().catch(() => {});
    const saved = await store.finish({
      run,
      status: 'cancelled',
      output: {
        text: partial.text,
        model: run.model,
        usage: emptyUsage(),
        costMicros: null,
        runtimeMs: Date.now() - partial.startMs,
        providerResponseId: null,
        interrupted: true,
      },
    });
    if (!saved) return handleAttemptError(deps, job, run, attempt, events, partial, new FencedError(run.id, attempt), 'lost', token);
    await finishStream(events, { status: 'cancelled' });
    recordRunFinished(deps, run, 'cancelled', partial.startMs);
    return { status: 'cancelled' };
  }

  if (reason === 'shutdown') {
    // Hand the run back at once instead of waiting for the lock to expire; not counted as an attempt.
    const error = { code: 'worker_shutdown', message: 'the worker shut down before the attempt finished', retryable: true };
    if (await store.fail(run.id, attempt, error, false, 'interrupted')) {
      events.emit({ type: 'data-run-status', data: { status: 'queued', reason: 'worker_shutdown' } });
      await events.flush().catch(() => {});
    }
    if (token) await job.moveToDelayed(Date.now(), token);
    throw new DelayedError();
  }

  const error = classify(err);
  const attemptsAllowed = job.opts.attempts ?? config.RUN_MAX_ATTEMPTS;
  const final = !error.retryable || job.attemptsMade + 1 >= attemptsAllowed;
  logger.warn('attempt failed', {
    code: error.code,
    error: error.message,
    retryable: error.retryable,
    final,
    cause: err instanceof RunError ? undefined : (err as Error)?.message,
  });
  const recorded = await store.fail(run.id, attempt, { code: error.code, message: error.message, retryable: error.retryable }, final);
  if (!recorded) return handleAttemptError(deps, job, run, attempt, events, partial, new FencedError(run.id, attempt), 'lost', token);
  if (!final) {
    metrics.retries.inc({ code: error.code });
    events.emit({ type: 'data-run-status', data: { status: 'retrying', attempt, error: { code: error.code, message: error.message } } });
    await events.flush().catch(() => {});
    throw error;
  }
  await finishStream(events, { status: 'failed', error: { code: error.code, message: error.message, retryable: error.retryable } });
  recordRunFinished(deps, run, 'failed', partial.startMs);
  throw new UnrecoverableError(`${error.code}: ${error.message}`);
}
