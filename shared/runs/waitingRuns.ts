import type { Db } from '../infra/db.js';
import type { UiChunk } from '../stream/events.js';
import type { PendingToolCall, PersistedStep } from '../agent/steps.js';

type StepRow = { step: number; text: string; tool_calls: PersistedStep['toolCalls']; results: PersistedStep['results']; approvals: PersistedStep['approvals'] };

const toStep = (row: StepRow): PersistedStep => ({
  step: row.step,
  text: row.text,
  toolCalls: row.tool_calls,
  results: row.results,
  approvals: row.approvals,
  usage: null,
  providerResponseId: null,
});

/**
 * Runs parked in requires_action, as the api and the sweep see them: their persisted steps and the
 * calls they wait on (transitions/endWaiting.ts ends one without a worker).
 */

/** The persisted steps of a run's current episode, in order. */
export async function episodeSteps(db: Pick<Db, '$queryRaw'>, runId: string): Promise<PersistedStep[]> {
  const rows = await db.$queryRaw<StepRow[]>`
    SELECT s.step, s.text, s.tool_calls, s.results, s.approvals FROM runs r JOIN run_steps s ON s.run_id = r.id AND s.episode = r.episode
    WHERE r.id = ${runId}::uuid ORDER BY s.step`;
  return rows.map(toStep);
}

/** The last step of a run's current episode, locked for the transaction that answers it. */
export async function lockLastStep(tx: Pick<Db, '$queryRaw'>, runId: string, episode: number): Promise<PersistedStep | null> {
  const [row] = await tx.$queryRaw<StepRow[]>`
    SELECT step, text, tool_calls, results, approvals FROM run_steps WHERE run_id = ${runId}::uuid AND episode = ${episode}
    ORDER BY step DESC LIMIT 1 FOR UPDATE`;
  return row ? toStep(row) : null;
}

/** The stream events that close a parked run's pending calls (their error results), before its closing chunks. */
export const closedCallChunks = (pending: PendingToolCall[], errorText: string): UiChunk[] =>
  pending.map((call) => ({ type: 'tool-output-error', toolCallId: call.toolCallId, errorText }));

/** The caller's answers to a parked run's calls (results, approvals), added to its last step; in the transaction that continues the run. */
export async function recordCallerAnswers(
  tx: Pick<Db, '$executeRaw'>,
  step: { runId: string; episode: number; step: number },
  answers: { results: Record<string, unknown>; approvals: Record<string, unknown> },
): Promise<void> {
  await tx.$executeRaw`
    UPDATE run_steps SET results = results || ${JSON.stringify(answers.results)}::jsonb, approvals = approvals || ${JSON.stringify(answers.approvals)}::jsonb
    WHERE run_id = ${step.runId}::uuid AND episode = ${step.episode} AND step = ${step.step}`;
}
