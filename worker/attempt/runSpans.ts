import type { Job } from 'bullmq';
import { PROVIDER_TABLE } from '../../shared/agent/providerTable.js';
import type { ModelRef, Usage } from '../../shared/agent/models.js';
import type { RunJobData } from '../../shared/runs/runJob.js';
import { contextOf, failSpan, inSpan, linkTo, SpanKind, tracer, type Span } from '../../shared/infra/tracing.js';
import type { BegunAttempt } from './runStore.js';

/**
 * The spans of a run in the worker (SPEC section 16), all in the run's one trace: each attempt a
 * consumer span under the span that started the run (linked to what queued its job: a continuation,
 * a replay), each model call a GenAI `chat <model>` span and each tool call an `execute_tool <name>`
 * span under it. An attempt that a dead worker left running cannot end its own span: the attempt
 * that takes over records it, from its start to the takeover.
 */

export function inAttemptSpan<T extends { status: string }>(
  job: Job,
  data: RunJobData,
  begun: BegunAttempt,
  workerId: string,
  fn: () => Promise<T>,
): Promise<T> {
  const { run } = begun;
  const parent = contextOf(run.traceparent ?? data.traceparent);
  const attributes = {
    'messaging.system': 'bullmq',
    'messaging.operation.type': 'process',
    'messaging.destination.name': job.queueName,
    'messaging.message.id': job.id ?? run.id,
    'runyard.run.id': run.id,
    'runyard.chat.id': run.chatId,
    'runyard.run.episode': run.episode,
  };
  if (begun.lostAttempt) {
    const lost = tracer().startSpan(
      'process run',
      {
        kind: SpanKind.CONSUMER,
        startTime: new Date(begun.lostAttempt.startedAt),
        attributes: { ...attributes, 'runyard.run.attempt': begun.lostAttempt.attempt, 'runyard.worker.id': begun.lostAttempt.workerId },
      },
      parent,
    );
    failSpan(lost, undefined, 'worker_lost: the worker stopped before the attempt finished');
    lost.end(begun.startedAt);
  }
  // What queued this attempt's job (a continuation, a replay) and, for a queued message's run, the run it continues.
  const links = [...(data.traceparent && data.traceparent !== run.traceparent ? linkTo(data.traceparent) : []), ...linkTo(begun.previousRunTraceparent)];
  return inSpan(
    'process run',
    { kind: SpanKind.CONSUMER, parent, links, attributes: { ...attributes, 'runyard.run.attempt': run.attempt, 'runyard.worker.id': workerId } },
    async (span) => {
      const result = await fn();
      span.setAttribute('runyard.run.status', result.status);
      return result;
    },
  );
}

/** A model call as a GenAI client span (`chat <model>`), with its usage and finish reason once it answered. */
export function inModelCallSpan<T extends { usage: Usage; finishReason: string; providerResponseId: string | null }>(
  model: ModelRef,
  opts: { compaction?: boolean },
  fn: () => Promise<T>,
): Promise<T> {
  return inSpan(
    `chat ${model.name}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': PROVIDER_TABLE[model.provider].genAiSystem,
        'gen_ai.system': PROVIDER_TABLE[model.provider].genAiSystem,
        'gen_ai.request.model': model.name,
        ...(opts.compaction ? { 'runyard.compaction': true } : {}),
      },
    },
    async (span) => {
      const result = await fn();
      span.setAttributes({
        'gen_ai.usage.input_tokens': result.usage.inputTokens,
        'gen_ai.usage.output_tokens': result.usage.outputTokens,
        'gen_ai.response.finish_reasons': [result.finishReason],
        ...(result.providerResponseId ? { 'gen_ai.response.id': result.providerResponseId } : {}),
      });
      return result;
    },
  );
}

/** A tool call as an `execute_tool <name>` span; a call whose outcome is an error marks it failed. */
export function inToolSpan<T>(call: { toolName: string; toolCallId: string }, kind: 'server' | 'mcp', fn: (span: Span) => Promise<T>): Promise<T> {
  return inSpan(
    `execute_tool ${call.toolName}`,
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': call.toolName,
        'gen_ai.tool.call.id': call.toolCallId,
        'gen_ai.tool.type': kind === 'mcp' ? 'extension' : 'function',
      },
    },
    fn,
  );
}
