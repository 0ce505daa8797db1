import type { Usage } from '../../shared/agent/models.js';
import type { FinishReason, RunStatus } from '../../shared/runs/lifecycle.js';
import type { PendingToolCall } from '../../shared/agent/steps.js';
import { traceIdOf } from '../../shared/infra/tracing.js';

/** A run as the API shows it (GET /api/chat/runs/{runId} and the list). */
export type RunView = {
  runId: string;
  chatId: string;
  sessionId: string;
  status: RunStatus;
  model: string;
  attempt: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  usage: Usage | null;
  costMicros: number | null;
  error: { code: string; message: string; retryable: boolean } | null;
  steps: number;
  finishReason: FinishReason | null;
  /** The run's OpenTelemetry trace (null when it was not traced). */
  traceId: string | null;
  pendingToolCalls?: PendingToolCall[];
};

export type RunRow = {
  id: string;
  chatId: string;
  sessionId: string;
  status: RunView['status'];
  model: string;
  attempt: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  usage: unknown;
  costMicros: bigint | null;
  errorCode: string | null;
  errorMessage: string | null;
  errorRetryable: boolean | null;
  steps: number;
  finishReason: string | null;
  traceparent: string | null;
};

export const runRowSelect = {
  id: true,
  chatId: true,
  sessionId: true,
  status: true,
  model: true,
  attempt: true,
  createdAt: true,
  startedAt: true,
  finishedAt: true,
  usage: true,
  costMicros: true,
  errorCode: true,
  errorMessage: true,
  errorRetryable: true,
  steps: true,
  finishReason: true,
  traceparent: true,
} as const;

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export function toRunView(row: RunRow): RunView {
  return {
    runId: row.id,
    chatId: row.chatId,
    sessionId: row.sessionId,
    status: row.status,
    model: row.model,
    attempt: row.attempt,
    createdAt: row.createdAt.toISOString(),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    usage: (row.usage as Usage | null) ?? null,
    costMicros: row.costMicros === null ? null : Number(row.costMicros),
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '', retryable: row.errorRetryable ?? false } : null,
    steps: row.steps,
    finishReason: (row.finishReason as FinishReason | null) ?? null,
    traceId: traceIdOf(row.traceparent),
  };
}
