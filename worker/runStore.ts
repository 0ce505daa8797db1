import { cleanupCtes } from '../shared/cleanup.js';
import type { Usage } from '../shared/models.js';
import { Batcher } from '../shared/batcher.js';
import { sqlList, TRANSITIONS, type RunStatus } from '../shared/runLifecycle.js';
import type { MessagePart } from '../shared/messageParts.js';
import { statement, type Sql } from '../shared/sql.js';
import type { McpServerDefinition, ToolDefinition } from '../shared/tools.js';
import { toModelMessages, type StoredMessage } from './conversation.js';
import type { ModelMessage } from './providers/types.js';
import type { PersistedStep } from './stepStore.js';
import type { SecretRow } from '../shared/toolSecrets.js';

/**
 * The worker's reads and writes of run state: prepared statements on `pg` directly (this is the hot
 * path). Every write after an attempt starts is fenced: it names the attempt it belongs to and
 * changes nothing if the run has moved on to another attempt. A write that ends a run does the
 * run's cleanup in the same statement, so a run is never terminal without it.
 */

/** A run as an attempt sees it once it owns the run. */
export type AttemptRun = {
  id: string;
  accountId: string;
  model: string;
  system: string | null;
  maxOutputTokens: number | null;
  chatId: string;
  /** Bumped by each replay: steps belong to an episode, and a replay starts from the first. */
  episode: number;
  tools: ToolDefinition[];
  mcpServers: McpServerDefinition[];
  maxSteps: number;
  /** This attempt's number: the fencing token every later write carries. */
  attempt: number;
};

const RUN_STATE = statement('run_state', `SELECT status::text, attempt, cancel_requested_at IS NOT NULL AS cancel_requested FROM runs WHERE id = $1::uuid`);

export type BegunAttempt = {
  run: AttemptRun;
  startedAt: Date;
  /** The turns the model answers: the chat's messages without this run's own earlier answers. */
  conversation: ModelMessage[];
  /** The steps this episode has persisted (earlier attempts'): the loop resumes after them. */
  steps: PersistedStep[];
  /** The account's tool-signing secrets as stored (sealed), read with the claim for runs with tools. */
  sealedToolSecrets: SecretRow | null;
};

// For each run: bumps the fencing token, marks the run running, records the attempt (closing one a
// dead worker left running) and reads the conversation. Runs that are not runnable have no row.
const BEGIN_ATTEMPTS = statement(
  'begin_attempts',
  `WITH r AS (
     UPDATE runs SET attempt = attempt + 1, status = 'running', worker_id = $2, heartbeat_at = now(),
       started_at = COALESCE(started_at, now()), error_code = NULL, error_message = NULL, error_retryable = NULL
     FROM unnest($1::uuid[]) AS i(run_id)
     WHERE runs.id = i.run_id AND runs.status IN (${sqlList(TRANSITIONS.claim.from)}) AND runs.cancel_requested_at IS NULL
     RETURNING runs.id, runs.account_id, runs.chat_id, runs.model, runs.system, runs.max_output_tokens, runs.attempt, runs.episode, runs.tools, runs.mcp_servers, runs.max_steps
   ), previous AS (
     UPDATE run_attempts a SET status = 'interrupted', finished_at = now(), error_code = 'worker_lost', error_message = 'the worker stopped before the attempt finished'
     FROM r
     WHERE a.run_id = r.id AND a.status = 'running'
   ), a AS (
     INSERT INTO run_attempts (id, run_id, attempt, worker_id) SELECT gen_random_uuid(), r.id, r.attempt, $2 FROM r
     RETURNING run_id, started_at
   )
   SELECT r.id::text, r.account_id::text, r.chat_id::text, r.model, r.system, r.max_output_tokens, r.attempt, r.episode, r.tools, r.mcp_servers, r.max_steps, a.started_at,
     CASE WHEN r.tools IS NULL AND r.mcp_servers IS NULL THEN '[]'::json ELSE
       (SELECT COALESCE(json_agg(json_build_object('step', s.step, 'text', s.text, 'toolCalls', s.tool_calls, 'results', s.results, 'usage', s.usage,
          'providerResponseId', s.provider_response_id, 'approvals', s.approvals) ORDER BY s.step), '[]'::json)
        FROM run_steps s WHERE s.run_id = r.id AND s.episode = r.episode) END AS steps,
     CASE WHEN r.tools IS NULL AND r.mcp_servers IS NULL THEN NULL ELSE
       (SELECT json_build_object('toolSecret', ac.tool_secret, 'toolSecretPrevious', ac.tool_secret_previous, 'toolSecretPreviousUntil', ac.tool_secret_previous_until)
        FROM accounts ac WHERE ac.id = r.account_id) END AS tool_secrets,
     (SELECT COALESCE(json_agg(json_build_object('role', m.role, 'parts', m.parts) ORDER BY m.seq), '[]'::json)
        FROM messages m
       WHERE m.chat_id = r.chat_id AND NOT m.interrupted AND NOT (m.run_id = r.id AND m.role = 'assistant' AND m.attempt IS NOT NULL)) AS conversation
   FROM r JOIN a ON a.run_id = r.id`,
);

type BegunRow = {
  id: string;
  account_id: string;
  chat_id: string;
  episode: number;
  tools: ToolDefinition[] | null;
  mcp_servers: McpServerDefinition[] | null;
  max_steps: number;
  steps: PersistedStep[];
  tool_secrets: { toolSecret: unknown; toolSecretPrevious: unknown; toolSecretPreviousUntil: string | null } | null;
  model: string;
  system: string | null;
  max_output_tokens: number | null;
  attempt: number;
  started_at: Date;
  conversation: StoredMessage[];
};

const toBegunAttempt = (row: BegunRow): BegunAttempt => ({
  run: {
    id: row.id,
    accountId: row.account_id,
    model: row.model,
    system: row.system,
    maxOutputTokens: row.max_output_tokens,
    chatId: row.chat_id,
    episode: row.episode,
    tools: row.tools ?? [],
    mcpServers: row.mcp_servers ?? [],
    maxSteps: row.max_steps,
    attempt: row.attempt,
  },
  startedAt: row.started_at,
  conversation: toModelMessages(row.conversation),
  steps: row.steps,
  sealedToolSecrets: row.tool_secrets
    ? { ...row.tool_secrets, toolSecretPreviousUntil: row.tool_secrets.toolSecretPreviousUntil ? new Date(row.tool_secrets.toolSecretPreviousUntil) : null }
    : null,
});

/** Claims the next attempt of each run in one statement; null for a run that is not runnable (finished, cancelled, or gone). */
async function beginAttempts(sql: Sql, workerId: string, runIds: string[]): Promise<(BegunAttempt | null)[]> {
  const rows = await sql.rows<BegunRow>(BEGIN_ATTEMPTS, [runIds, workerId]);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return runIds.map((runId) => {
    const row = byId.get(runId);
    return row ? toBegunAttempt(row) : null;
  });
}

export type AssistantOutput = {
  parts: MessagePart[];
  /** Steps taken in this episode (model calls), and why the run stopped. */
  steps: number;
  finishReason: string;
  model: string;
  usage: Usage;
  costMicros: bigint | null;
  runtimeMs: number;
  providerResponseId: string | null;
  interrupted: boolean;
};

export type FinishedAttempt = { run: AttemptRun; status: 'completed' | 'cancelled'; output: AssistantOutput };

// For each run still owned by the attempt: its terminal state, its assistant message, the attempt's
// end and the run's cleanup. `status` is the run's new status, the attempt's, and the cleanup's reason.
const FINISH_ATTEMPTS_WITH_MESSAGES = statement(
  'finish_attempts_with_messages',
  `WITH input AS (
     SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[], $5::bigint[], $6::jsonb[], $7::text[], $8::int[], $9::text[], $10::boolean[], $11::int[], $12::text[])
       AS i(run_id, attempt, status, usage, cost_micros, parts, model, runtime_ms, provider_response_id, interrupted, steps, finish_reason)
   ), ended AS (
     UPDATE runs SET status = i.status::run_status, finished_at = now(), heartbeat_at = now(), usage = i.usage, cost_micros = i.cost_micros,
       steps = i.steps, finish_reason = i.finish_reason
     FROM input i
     WHERE runs.id = i.run_id AND runs.attempt = i.attempt AND runs.status IN (${sqlList(TRANSITIONS.finish.from)})
     RETURNING runs.id, runs.chat_id, runs.account_id, runs.session_id, runs.episode, i.*
   ), message AS (
     INSERT INTO messages (id, chat_id, run_id, role, parts, model, attempt, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_micros, runtime_ms, provider_response_id, interrupted)
     SELECT gen_random_uuid()::text, e.chat_id, e.id, 'assistant', e.parts, e.model, e.attempt, (e.usage->>'inputTokens')::int, (e.usage->>'outputTokens')::int,
       (e.usage->>'cachedInputTokens')::int, (e.usage->>'reasoningTokens')::int, e.cost_micros, e.runtime_ms, e.provider_response_id, e.interrupted
     FROM ended e
     RETURNING run_id
   ), attempt AS (
     UPDATE run_attempts a SET status = e.status::attempt_status, finished_at = now() FROM ended e
     WHERE a.run_id = e.id AND a.attempt = e.attempt
   ), ${cleanupCtes('ended', 't.status')}
   SELECT m.run_id::text FROM message m`,
);

/**
 * Persists each run's assistant message, terminal state and cleanup in one statement, fenced on the
 * attempt: false (and nothing written) for a run its attempt no longer owns.
 */
async function finishAttemptsWithMessages(sql: Sql, finished: FinishedAttempt[]): Promise<boolean[]> {
  const column = <T>(pick: (f: FinishedAttempt) => T) => finished.map(pick);
  const rows = await sql.rows<{ run_id: string }>(FINISH_ATTEMPTS_WITH_MESSAGES, [
    column((f) => f.run.id),
    column((f) => f.run.attempt),
    column((f) => f.status),
    column((f) => JSON.stringify(f.output.usage)),
    column((f) => f.output.costMicros?.toString() ?? null),
    column((f) => JSON.stringify(f.output.parts)),
    column((f) => f.output.model),
    column((f) => f.output.runtimeMs),
    column((f) => f.output.providerResponseId),
    column((f) => f.output.interrupted),
    column((f) => f.output.steps),
    column((f) => f.output.finishReason),
  ]);
  const saved = new Set(rows.map((row) => row.run_id));
  return finished.map((f) => saved.has(f.run.id));
}

// $6: the failure is final — the run becomes failed and is cleaned up; otherwise it goes back to queued.
const FAIL_ATTEMPT = statement(
  'fail_attempt',
  `WITH r AS (
     UPDATE runs SET status = CASE WHEN $6::boolean THEN 'failed' ELSE 'queued' END::run_status, finished_at = CASE WHEN $6::boolean THEN now() END,
       heartbeat_at = now(), error_code = $3, error_message = $4, error_retryable = $5::boolean
     WHERE id = $1::uuid AND attempt = $2::int AND status IN (${sqlList(TRANSITIONS.failAttempt.from)})
     RETURNING id, account_id, session_id, episode, status
   ), attempt AS (
     UPDATE run_attempts a SET status = $7::text::attempt_status, finished_at = now(), error_code = $3, error_message = $4 FROM r
     WHERE a.run_id = r.id AND a.attempt = $2::int
   ), ended AS (
     SELECT id, account_id, session_id, episode FROM r WHERE r.status = 'failed'
   ), ${cleanupCtes('ended', "'failed'")}
   SELECT (SELECT count(*) FROM r)::int AS recorded`,
);

// The attempt ends by parking the run for the caller: requires_action, no worker, its run key revoked
// (a continuation mints a fresh one). Fenced like every worker write.
const PARK_RUN = statement(
  'park_run',
  `WITH r AS (
     UPDATE runs SET status = 'requires_action', heartbeat_at = now(), worker_id = NULL, steps = $3::int, usage = $4::jsonb, cost_micros = $5::bigint
     WHERE id = $1::uuid AND attempt = $2::int AND status IN (${sqlList(TRANSITIONS.park.from)})
     RETURNING id, account_id
   ), attempt AS (
     UPDATE run_attempts a SET status = 'requires_action', finished_at = now() FROM r WHERE a.run_id = r.id AND a.attempt = $2::int
   ), revoked AS (
     UPDATE api_keys k SET revoked_at = now() FROM r
     WHERE k.run_id = r.id AND k.account_id = r.account_id AND k.kind = 'ephemeral' AND k.revoked_at IS NULL
   )
   SELECT count(*)::int AS parked FROM r`,
);

const HEARTBEAT_RUNS = statement(
  'heartbeat_runs',
  `UPDATE runs SET heartbeat_at = now()
   FROM unnest($1::uuid[], $2::int[]) AS mine(run_id, attempt)
   WHERE runs.id = mine.run_id AND runs.attempt = mine.attempt AND runs.status = 'running'
   RETURNING runs.id::text AS id, runs.cancel_requested_at IS NOT NULL AS cancel_requested`,
);

/**
 * The run state one worker process reads and writes. Claims and completions of concurrent runs are
 * batched (see shared/batcher.ts): under load, the runs that start or finish together share one
 * statement and one commit. Completions are batched per account, because ending a run updates its
 * account's active-run count.
 */
export class RunStore {
  private readonly begins: Batcher<string, BegunAttempt | null>;
  private readonly finishes: Batcher<FinishedAttempt, boolean>;

  constructor(
    private readonly sql: Sql,
    workerId: string,
    batching: { maxBatch: number; concurrency: number },
    onBatch: (statement: 'begin_attempts' | 'finish_attempts', size: number) => void = () => {},
  ) {
    this.begins = new Batcher((runIds) => beginAttempts(sql, workerId, runIds), {
      ...batching,
      key: (runId) => runId,
      onBatch: (size) => onBatch('begin_attempts', size),
    });
    this.finishes = new Batcher((finished) => finishAttemptsWithMessages(sql, finished), {
      ...batching,
      group: (f) => f.run.accountId,
      key: (f) => f.run.id,
      onBatch: (size) => onBatch('finish_attempts', size),
    });
  }

  /** Claims the run's next attempt; null if the run is not runnable (finished, cancelled, or gone). */
  begin(runId: string): Promise<BegunAttempt | null> {
    return this.begins.submit(runId);
  }

  /** Ends the run completed or cancelled with its answer; false if the attempt no longer owns the run. */
  finish(finished: FinishedAttempt): Promise<boolean> {
    return this.finishes.submit(finished);
  }

  /**
   * Records a failed attempt. With `final`, the run becomes failed and is cleaned up; otherwise it
   * goes back to queued to wait for its retry. False if the attempt no longer owns the run.
   */
  async fail(
    runId: string,
    attempt: number,
    error: { code: string; message: string; retryable: boolean },
    final: boolean,
    attemptStatus: 'failed' | 'interrupted' = 'failed',
  ): Promise<boolean> {
    const values = [runId, attempt, error.code, error.message, error.retryable, final, attemptStatus];
    const [row] = await this.sql.rows<{ recorded: number }>(FAIL_ATTEMPT, values);
    return row?.recorded === 1;
  }

  /** Parks the run in requires_action (see PARK_RUN); false if the attempt no longer owns the run. */
  async park(run: AttemptRun, progress: { steps: number; usage: Usage; costMicros: bigint | null }): Promise<boolean> {
    const values = [run.id, run.attempt, progress.steps, JSON.stringify(progress.usage), progress.costMicros?.toString() ?? null];
    const [row] = await this.sql.rows<{ parked: number }>(PARK_RUN, values);
    return row?.parked === 1;
  }

  /** Why a run could not be claimed: its status, or null when it does not exist. */
  /** The run's status, attempt and whether a cancel was requested; null if it is gone. */
  async state(runId: string): Promise<{ status: RunStatus; attempt: number; cancelRequested: boolean } | null> {
    const [row] = await this.sql.rows<{ status: RunStatus; attempt: number; cancel_requested: boolean }>(RUN_STATE, [runId]);
    return row ? { status: row.status, attempt: row.attempt, cancelRequested: row.cancel_requested } : null;
  }

  /**
   * One heartbeat for every run this worker executes: the runs it still owns, with any cancel
   * request. A run missing from the answer was taken over by another attempt.
   */
  async heartbeat(runs: { runId: string; attempt: number }[]): Promise<Map<string, { cancelRequested: boolean }>> {
    if (runs.length === 0) return new Map();
    const rows = await this.sql.rows<{ id: string; cancel_requested: boolean }>(HEARTBEAT_RUNS, [runs.map((r) => r.runId), runs.map((r) => r.attempt)]);
    return new Map(rows.map((row) => [row.id, { cancelRequested: row.cancel_requested }]));
  }
}
