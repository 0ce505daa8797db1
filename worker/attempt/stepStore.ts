import type { Sql } from '../../shared/infra/sql.js';
import { RECORD_COMPACTION, RECORD_RESULT, RECORD_STEP } from '../../shared/runs/progress.js';
import type { PersistedStep, ToolOutcome } from '../../shared/agent/steps.js';
import { chargeOf, emptyUsage, type Usage } from '../../shared/agent/models.js';

export type { PersistedStep, StepToolCall } from '../../shared/agent/steps.js';

/**
 * Durable steps (SPEC section 9): a step's model output is persisted before any of its tools runs,
 * and each tool result as soon as it arrives — both fenced on the attempt that owns the run, like
 * every worker write. A new attempt reads them back (runStore's begin) and resumes: no model call
 * for a persisted step, no tool call with a persisted result executed again.
 */

export class StepStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Persists a step's model output (and the results already known: input errors) and charges its
   * model call to the account; false if the attempt no longer owns the run.
   */
  async recordStep(runId: string, attempt: number, model: string, step: PersistedStep, modelStartedAt: Date): Promise<boolean> {
    const charge = chargeOf(model, step.usage ?? emptyUsage());
    const rows = await this.sql.rows(RECORD_STEP, [
      runId,
      attempt,
      step.step,
      step.text,
      JSON.stringify(step.toolCalls),
      JSON.stringify(step.results),
      JSON.stringify(step.usage),
      step.providerResponseId,
      charge.tokens,
      charge.spendMicros?.toString() ?? null,
      modelStartedAt,
    ]);
    return rows.length === 1;
  }

  /** Persists a compaction made before `beforeStep` and charges its model call; false if the attempt no longer owns the run. */
  async recordCompaction(
    runId: string,
    attempt: number,
    compaction: {
      beforeStep: number;
      throughMessageId: string;
      throughSeq: number;
      summary: string;
      inputTokensBefore: number;
      model: string;
      usage: Usage;
      startedAt: Date;
    },
  ): Promise<boolean> {
    const charge = chargeOf(compaction.model, compaction.usage);
    const rows = await this.sql.rows(RECORD_COMPACTION, [
      runId,
      attempt,
      compaction.beforeStep,
      compaction.throughMessageId,
      compaction.throughSeq,
      compaction.summary,
      compaction.inputTokensBefore,
      compaction.model,
      JSON.stringify(compaction.usage),
      charge.spendMicros?.toString() ?? null,
      charge.tokens,
      compaction.startedAt,
    ]);
    return rows.length === 1;
  }

  /** Persists one tool call's result (and when it ran, for the timeline); false if the attempt no longer owns the run. */
  async recordResult(
    runId: string,
    attempt: number,
    step: number,
    toolCallId: string,
    outcome: ToolOutcome,
    timing: { startedAt: string; endedAt: string; tries: number },
  ): Promise<boolean> {
    const rows = await this.sql.rows(RECORD_RESULT, [runId, attempt, step, toolCallId, JSON.stringify(outcome), JSON.stringify(timing)]);
    return rows.length === 1;
  }
}
