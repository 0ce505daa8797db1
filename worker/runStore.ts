import type { Db } from '../shared/db.js';
import type { Usage } from '../shared/models.js';
import type { ChatTurn } from './providers/types.js';

/**
 * The worker's reads and writes of run state. Every write after an attempt starts is fenced: it
 * names the attempt it belongs to and changes nothing if the run has moved on to another attempt.
 */
/** A run as an attempt sees it once it owns the run. */
export type AttemptRun = {
  id: string;
  accountId: string;
  sessionId: string;
  chatId: string;
  model: string;
  system: string | null;
  maxOutputTokens: number | null;
  /** This attempt's number: the fencing token every later write carries. */
  attempt: number;
  episode: number;
};

export type RunStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** Why a run could not be claimed: its status, or null when it does not exist. */
export async function loadRunStatus(db: Db, runId: string): Promise<RunStatus | null> {
  const row = await db.run.findUnique({ where: { id: runId }, select: { status: true } });
  return row?.status ?? null;
}

export type BegunAttempt = {
  run: AttemptRun;
  startedAt: Date;
  /** The turns the model answers: the chat's messages without this run's own earlier answers. */
  conversation: ChatTurn[];
};

type StoredPart = { type: string; text?: string };
const textOf = (parts: StoredPart[]) =>
  parts
    .filter((part) => part.type === 'text')
    .map((part) => part.text ?? '')
    .join('');

/**
 * Claims the next attempt in one round trip: bumps the fencing token, marks the run running,
 * records the attempt (closing one a dead worker left running) and reads the conversation.
 * Null if the run is not runnable (finished, cancelled, or gone).
 */
export async function beginAttempt(db: Db, runId: string, workerId: string): Promise<BegunAttempt | null> {
  const rows = await db.$queryRaw<
    {
      id: string;
      account_id: string;
      session_id: string;
      chat_id: string;
      model: string;
      system: string | null;
      max_output_tokens: number | null;
      attempt: number;
      episode: number;
      started_at: Date;
      conversation: { role: ChatTurn['role']; parts: StoredPart[] }[];
    }[]
  >`
    WITH r AS (
      UPDATE runs SET attempt = attempt + 1, status = 'running', worker_id = ${workerId}, heartbeat_at = now(),
        started_at = COALESCE(started_at, now()), error_code = NULL, error_message = NULL, error_retryable = NULL
      WHERE id = ${runId}::uuid AND status IN ('queued', 'running') AND cancel_requested_at IS NULL
      RETURNING id, account_id, session_id, chat_id, model, system, max_output_tokens, attempt, episode
    ), previous AS (
      UPDATE run_attempts SET status = 'interrupted', finished_at = now(), error_code = 'worker_lost', error_message = 'the worker stopped before the attempt finished'
      WHERE run_id = ${runId}::uuid AND status = 'running' AND EXISTS (SELECT 1 FROM r)
      RETURNING 1
    ), a AS (
      INSERT INTO run_attempts (id, run_id, attempt, worker_id) SELECT gen_random_uuid(), ${runId}::uuid, r.attempt, ${workerId} FROM r
      RETURNING started_at
    )
    SELECT r.id::text, r.account_id::text, r.session_id::text, r.chat_id::text, r.model, r.system, r.max_output_tokens, r.attempt, r.episode, a.started_at,
      (SELECT count(*) FROM previous) AS interrupted_previous,
      (SELECT COALESCE(json_agg(json_build_object('role', m.role, 'parts', m.parts) ORDER BY m.seq), '[]'::json)
         FROM messages m
        WHERE m.chat_id = r.chat_id AND NOT m.interrupted AND NOT (m.run_id = r.id AND m.role = 'assistant')) AS conversation
    FROM r, a`;
  const row = rows[0];
  if (!row) return null;
  return {
    run: {
      id: row.id,
      accountId: row.account_id,
      sessionId: row.session_id,
      chatId: row.chat_id,
      model: row.model,
      system: row.system,
      maxOutputTokens: row.max_output_tokens,
      attempt: row.attempt,
      episode: row.episode,
    },
    startedAt: row.started_at,
    conversation: row.conversation.map((message) => ({ role: message.role, content: textOf(message.parts) })),
  };
}

export type AssistantOutput = {
  text: string;
  model: string;
  usage: Usage;
  costMicros: bigint | null;
  runtimeMs: number;
  providerResponseId: string | null;
  interrupted: boolean;
};

/**
 * Persists the assistant message and the run's terminal state in one statement, fenced on the
 * attempt. Returns false (and writes nothing) if the attempt no longer owns the run.
 */
export async function finishAttemptWithMessage(
  db: Db,
  runId: string,
  attempt: number,
  status: 'completed' | 'cancelled',
  output: AssistantOutput,
): Promise<boolean> {
  const parts = JSON.stringify(output.text ? [{ type: 'text', text: output.text }] : []);
  const usage = JSON.stringify(output.usage);
  const rows = await db.$queryRaw<{ ok: number }[]>`
    WITH r AS (
      UPDATE runs SET status = ${status}::run_status, finished_at = now(), heartbeat_at = now(), usage = ${usage}::jsonb, cost_micros = ${output.costMicros}
      WHERE id = ${runId}::uuid AND attempt = ${attempt} AND status = 'running'
      RETURNING chat_id
    ), m AS (
      INSERT INTO messages (id, chat_id, run_id, role, parts, model, attempt, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_micros, runtime_ms, provider_response_id, interrupted)
      SELECT gen_random_uuid()::text, r.chat_id, ${runId}::uuid, 'assistant', ${parts}::jsonb, ${output.model}, ${attempt}, ${output.usage.inputTokens}, ${output.usage.outputTokens},
        ${output.usage.cachedInputTokens}, ${output.usage.reasoningTokens}, ${output.costMicros}, ${output.runtimeMs}, ${output.providerResponseId}, ${output.interrupted}
      FROM r
      RETURNING 1
    ), a AS (
      UPDATE run_attempts SET status = ${status === 'completed' ? 'completed' : 'cancelled'}::attempt_status, finished_at = now()
      WHERE run_id = ${runId}::uuid AND attempt = ${attempt} AND EXISTS (SELECT 1 FROM r)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM m)::int AS ok, (SELECT count(*) FROM a)`;
  return (rows[0]?.ok ?? 0) === 1;
}

/**
 * Records a failed attempt. With `final`, the run becomes failed; otherwise it goes back to queued
 * to wait for its retry. Fenced like every other write.
 */
export async function failAttempt(
  db: Db,
  runId: string,
  attempt: number,
  error: { code: string; message: string; retryable: boolean },
  final: boolean,
  attemptStatus: 'failed' | 'interrupted' = 'failed',
): Promise<boolean> {
  const rows = await db.$queryRaw<{ ok: number }[]>`
    WITH r AS (
      UPDATE runs SET status = ${final ? 'failed' : 'queued'}::run_status, finished_at = ${final ? new Date() : null}, heartbeat_at = now(),
        error_code = ${error.code}, error_message = ${error.message}, error_retryable = ${error.retryable}
      WHERE id = ${runId}::uuid AND attempt = ${attempt} AND status = 'running'
      RETURNING 1
    ), a AS (
      UPDATE run_attempts SET status = ${attemptStatus}::attempt_status, finished_at = now(), error_code = ${error.code}, error_message = ${error.message}
      WHERE run_id = ${runId}::uuid AND attempt = ${attempt} AND EXISTS (SELECT 1 FROM r)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM r)::int AS ok, (SELECT count(*) FROM a)`;
  return (rows[0]?.ok ?? 0) === 1;
}

/**
 * One heartbeat for every run this worker executes: returns the runs it still owns, with any cancel
 * request. A run missing from the answer was taken over by another attempt.
 */
export async function heartbeatRuns(db: Db, runs: { runId: string; attempt: number }[]): Promise<Map<string, { cancelRequested: boolean }>> {
  if (runs.length === 0) return new Map();
  const rows = await db.$queryRaw<{ id: string; cancel_requested: boolean }[]>`
    WITH owned AS (
      UPDATE runs SET heartbeat_at = now()
      FROM unnest(${runs.map((r) => r.runId)}::uuid[], ${runs.map((r) => r.attempt)}::int[]) AS mine(run_id, attempt)
      WHERE runs.id = mine.run_id AND runs.attempt = mine.attempt AND runs.status = 'running'
      RETURNING runs.id::text AS id, runs.cancel_requested_at IS NOT NULL AS cancel_requested
    )
    SELECT id, cancel_requested FROM owned`;
  return new Map(rows.map((row) => [row.id, { cancelRequested: row.cancel_requested }]));
}
