import { BEGIN_ATTEMPTS } from '../../shared/runs/transitions/claim.js';
import { FINISH_ATTEMPTS_WITH_MESSAGES } from '../../shared/runs/transitions/finish.js';
import { FAIL_ATTEMPT } from '../../shared/runs/transitions/failAttempt.js';
import { PARK_RUN } from '../../shared/runs/transitions/park.js';
import { HEARTBEAT_RUNS } from '../../shared/runs/progress.js';
import type { Usage } from '../../shared/agent/models.js';
import type { RunWorkspace } from '../workspaces/workspaceManager.js';
import type { SealedProviderKey } from '../../shared/accounts/providerKeys.js';
import { Batcher } from '../../shared/infra/batcher.js';
import type { RunStatus } from '../../shared/runs/lifecycle.js';
import type { MessagePart } from '../../shared/stream/messageParts.js';
import { statement, type Sql } from '../../shared/infra/sql.js';
import type { McpServerDefinition, ToolDefinition } from '../../shared/agent/tools.js';
import { chatContextOf, type ChatContext, type ChatMessage, type PersistedCompaction } from '../agent/conversation.js';
import type { PersistedStep } from './stepStore.js';
import type { SecretRow } from '../../shared/accounts/toolSecrets.js';

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
  /** The span that started the run (SPEC section 16): every attempt is its child. */
  traceparent: string | null;
  /** The account's own key for the run's provider, sealed (SPEC section 21); null: the deployment's. */
  providerKey: SealedProviderKey | null;
};

const RUN_STATE = statement('run_state', `SELECT status::text, attempt, cancel_requested_at IS NOT NULL AS cancel_requested FROM runs WHERE id = $1::uuid`);

export type BegunAttempt = {
  run: AttemptRun;
  startedAt: Date;
  /** The chat as the model reads it: its latest compaction, the messages after it (without this run's own earlier answers). */
  chat: ChatContext;
  /** A queued message's run: the trace of the chat's run before it, which it continues (its trace links it). */
  previousRunTraceparent: string | null;
  /** The attempt a dead worker left running, closed by this claim (worker_lost): the trace shows it. */
  lostAttempt: { attempt: number; startedAt: string; workerId: string } | null;
  /** The account's compaction threshold (null: COMPACTION_THRESHOLD_PERCENT) and whether it has spend limits to check. */
  account: { compactionThresholdPercent: number | null; hasLimits: boolean };
  /** The steps this episode has persisted (earlier attempts'): the loop resumes after them. */
  steps: PersistedStep[];
  /** The account's tool-signing secrets as stored (sealed), read with the claim for runs with tools. */
  sealedToolSecrets: SecretRow | null;
  /** The chat's workspace, when it works in one (SPEC section 18). */
  workspace: RunWorkspace | null;
};

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
  conversation: ChatMessage[];
  compaction: PersistedCompaction | null;
  compaction_threshold_percent: number | null;
  has_limits: boolean;
  traceparent: string | null;
  previous_run_traceparent: string | null;
  lost_attempt: { attempt: number; startedAt: string; workerId: string } | null;
  workspace: RunWorkspace | null;
  provider_key: SealedProviderKey | null;
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
    traceparent: row.traceparent,
    providerKey: row.provider_key,
  },
  lostAttempt: row.lost_attempt,
  previousRunTraceparent: row.previous_run_traceparent,
  startedAt: row.started_at,
  chat: chatContextOf(row.id, row.conversation, row.compaction, row.steps),
  account: { compactionThresholdPercent: row.compaction_threshold_percent, hasLimits: row.has_limits },
  steps: row.steps,
  workspace: row.workspace,
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
  /** The model calls of the attempt not charged to the account yet (the last answer's): charged with the run's end. */
  uncharged: { tokens: number; spendMicros: bigint | null };
  /** The input tokens of the last model call: how full the window is for the chat's next run. */
  contextTokens: number | null;
  /** A run stopped by its account's spend limit ends failed with this error, its output kept. */
  error?: { code: string; message: string };
  /** A completed run of an untitled chat asks for its title (CHAT_TITLES). */
  requestTitle?: boolean;
};

export type FinishedAttempt = { run: AttemptRun; status: 'completed' | 'cancelled' | 'failed'; output: AssistantOutput };

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
    column((f) => f.output.uncharged.tokens),
    column((f) => f.output.uncharged.spendMicros?.toString() ?? null),
    column((f) => f.output.contextTokens),
    column((f) => f.output.error?.code ?? null),
    column((f) => f.output.error?.message ?? null),
    column((f) => f.output.requestTitle ?? false),
  ]);
  const saved = new Set(rows.map((row) => row.run_id));
  return finished.map((f) => saved.has(f.run.id));
}

/**
 * The run state one worker process reads and writes. Claims and completions of concurrent runs are
 * batched (see shared/infra/batcher.ts): under load, the runs that start or finish together share one
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

  /** Ends the run completed, cancelled or failed (over its spend limit) with its answer; false if the attempt no longer owns the run. */
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
    uncharged: { tokens: number; spendMicros: bigint | null } = { tokens: 0, spendMicros: null },
  ): Promise<boolean> {
    const values = [
      runId,
      attempt,
      error.code,
      error.message,
      error.retryable,
      final,
      attemptStatus,
      uncharged.tokens,
      uncharged.spendMicros?.toString() ?? null,
    ];
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
