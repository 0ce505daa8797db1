import type { Usage } from '../../shared/agent/models.js';
import type { StepToolCall, ToolOutcome } from '../../shared/agent/steps.js';
import { notFound } from '../../shared/infra/errors.js';
import { traceIdOf } from '../../shared/infra/tracing.js';
import { isTerminalStatus } from '../../shared/runs/lifecycle.js';
import type { ApiDeps } from '../deps.js';
import type { z } from 'zod';
import type { runTimelineSchema } from '../admin/schemas.js';

/**
 * A run's story for on-call (SPEC section 16), from runyard's own tables — no tracing backend
 * needed: the run, its time in the queue, each attempt (which worker, how it ended), each step's
 * model call and tool calls (outcome, error, tries), its waits in requires_action, compactions,
 * webhook deliveries and its cleanup. Items have a parent (the waterfall's nesting) and are in
 * start order. The admin page /admin/runs/{runId} draws it.
 */
export type RunTimeline = z.infer<typeof runTimelineSchema>;
export type TimelineItem = RunTimeline['items'][number];
export type TimelineKind = TimelineItem['kind'];

const iso = (date: Date) => date.toISOString();

export async function runTimeline(deps: Pick<ApiDeps, 'db'>, runId: string): Promise<RunTimeline> {
  const run = await deps.db.run.findUnique({
    where: { id: runId },
    include: {
      attempts: { orderBy: { attempt: 'asc' } },
      runSteps: { orderBy: [{ episode: 'asc' }, { step: 'asc' }] },
      compactions: true,
      webhookEvents: { include: { deliveries: { orderBy: { attemptedAt: 'asc' } } }, orderBy: { seq: 'asc' } },
      cleanups: true,
    },
  });
  if (!run) throw notFound('run_not_found', 'The run');
  const items: TimelineItem[] = [];
  const runItem: TimelineItem = {
    id: 'run',
    parentId: null,
    kind: 'run',
    name: `run ${run.model}`,
    startedAt: iso(run.createdAt),
    endedAt: run.finishedAt ? iso(run.finishedAt) : null,
    outcome: run.status,
    error: run.errorCode ? `${run.errorCode}: ${run.errorMessage ?? ''}` : null,
    details: { usage: run.usage, costMicros: run.costMicros === null ? null : Number(run.costMicros), steps: run.steps, finishReason: run.finishReason },
  };
  items.push(runItem);
  const first = run.attempts[0];
  if (first) items.push(span('queued', 'run', 'queued', 'in the queue', run.createdAt, first.startedAt, 'started'));

  // Which attempt a moment belongs to: the last one that had started by then.
  const attemptAt = (at: Date) => [...run.attempts].reverse().find((attempt) => attempt.startedAt <= at) ?? first;
  for (const [i, attempt] of run.attempts.entries()) {
    items.push({
      id: `attempt-${attempt.attempt}`,
      parentId: 'run',
      kind: 'attempt',
      name: `attempt ${attempt.attempt} on ${attempt.workerId}`,
      startedAt: iso(attempt.startedAt),
      endedAt: attempt.finishedAt ? iso(attempt.finishedAt) : null,
      outcome: attempt.status,
      error: attempt.errorCode ? `${attempt.errorCode}: ${attempt.errorMessage ?? ''}` : null,
      details: { workerId: attempt.workerId },
    });
    if (attempt.status === 'requires_action' && attempt.finishedAt) {
      const next = run.attempts[i + 1];
      const until = next?.startedAt ?? run.finishedAt ?? null;
      const outcome = next ? 'answered' : run.finishedAt ? run.status : 'waiting';
      items.push({ ...span(`wait-${attempt.attempt}`, 'run', 'wait', 'requires_action: waiting for the caller', attempt.finishedAt, until, outcome) });
    }
  }

  for (const step of run.runSteps.filter((s) => s.episode === run.episode)) {
    const callId = `step-${step.step}`;
    const usage = step.usage as Usage | null;
    items.push({
      ...span(
        callId,
        `attempt-${step.attempt}`,
        'model_call',
        `chat ${run.model} (step ${step.step + 1})`,
        step.modelStartedAt ?? step.createdAt,
        step.createdAt,
        'tool_calls',
      ),
      details: { step: step.step, usage, providerResponseId: step.providerResponseId },
    });
    const results = step.results as Record<string, ToolOutcome>;
    const timings = step.resultTimings as Record<string, { startedAt: string; endedAt: string; tries: number }>;
    for (const call of step.toolCalls as StepToolCall[]) {
      const result = results[call.toolCallId];
      const timing = timings[call.toolCallId];
      const startedAt = timing ? new Date(timing.startedAt) : step.createdAt;
      const outcome = call.inputError ? 'input_error' : !result ? 'pending' : 'denied' in result ? 'denied' : 'error' in result ? 'error' : 'output';
      const error = call.inputError ?? (result && 'error' in result ? result.error : null);
      items.push({
        ...span(
          `tool-${call.toolCallId}`,
          `attempt-${attemptAt(startedAt)?.attempt ?? step.attempt}`,
          'tool_call',
          `execute_tool ${call.toolName}`,
          startedAt,
          timing ? new Date(timing.endedAt) : result ? startedAt : null,
          outcome,
        ),
        error,
        details: { step: step.step, toolCallId: call.toolCallId, kind: call.kind, tries: timing?.tries ?? null },
      });
    }
  }

  for (const compaction of run.compactions.filter((c) => c.episode === run.episode)) {
    items.push({
      ...span(
        `compaction-${compaction.id}`,
        `attempt-${compaction.attempt}`,
        'compaction',
        `compaction before step ${compaction.beforeStep + 1}`,
        compaction.startedAt ?? compaction.createdAt,
        compaction.createdAt,
        'compacted',
      ),
      details: { throughMessageId: compaction.throughMessageId, inputTokensBefore: compaction.inputTokensBefore, usage: compaction.usage },
    });
  }

  // The answer: the model call that ended the run without a tool call. It is not a persisted step:
  // it ran from the last thing its attempt finished before it (its previous step's model call or
  // tool result, a compaction, or the attempt's start) to the run's end.
  const last = run.attempts.at(-1);
  if (run.status === 'completed' && last && run.finishedAt && (run.finishReason === 'stop' || run.finishReason === 'length')) {
    const before = items
      .filter(
        (item) =>
          item.endedAt &&
          (item.kind === 'model_call' || item.kind === 'tool_call' || item.kind === 'compaction') &&
          item.parentId === `attempt-${last.attempt}`,
      )
      .map((item) => Date.parse(item.endedAt!));
    const startedAt = new Date(Math.max(last.startedAt.getTime(), ...before));
    items.push({
      ...span('answer', `attempt-${last.attempt}`, 'model_call', `chat ${run.model} (answer)`, startedAt, run.finishedAt, run.finishReason),
      details: { step: run.steps - 1 },
    });
  }

  for (const event of run.webhookEvents) {
    for (const [n, delivery] of event.deliveries.entries()) {
      const delivered = delivery.statusCode !== null && delivery.statusCode >= 200 && delivery.statusCode < 300;
      items.push({
        ...span(
          `webhook-${delivery.id}`,
          'run',
          'webhook_delivery',
          `webhook ${event.type} (delivery ${n + 1})`,
          delivery.attemptedAt,
          new Date(delivery.attemptedAt.getTime() + delivery.latencyMs),
          delivered ? 'delivered' : 'failed',
        ),
        error: delivered ? null : (delivery.error ?? `the receiver answered ${delivery.statusCode}`),
        details: { eventId: event.id, statusCode: delivery.statusCode, latencyMs: delivery.latencyMs, eventStatus: event.status },
      });
    }
  }

  for (const cleanup of run.cleanups.filter((c) => c.completedAt)) {
    items.push({
      ...span(`cleanup-${cleanup.episode}`, 'run', 'cleanup', `cleanup (${cleanup.reason})`, cleanup.completedAt!, cleanup.completedAt!, 'done'),
      details: { keysRevoked: cleanup.keysRevoked, sessionClosed: cleanup.sessionClosed, episode: cleanup.episode },
    });
  }

  const [runFirst, ...rest] = items;
  rest.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  return {
    runId: run.id,
    chatId: run.chatId,
    accountId: run.accountId,
    status: run.status,
    model: run.model,
    episode: run.episode,
    attempts: run.attempt,
    traceId: traceIdOf(run.traceparent),
    error: run.errorCode ? { code: run.errorCode, message: run.errorMessage ?? '' } : null,
    replayable: isTerminalStatus(run.status),
    items: [runFirst!, ...rest],
  };
}

function span(id: string, parentId: string, kind: TimelineKind, name: string, startedAt: Date, endedAt: Date | null, outcome: string): TimelineItem {
  return { id, parentId, kind, name, startedAt: iso(startedAt), endedAt: endedAt ? iso(endedAt) : null, outcome, error: null, details: {} };
}
