import { chargeOf, type Usage } from '../../shared/agent/models.js';
import { CHARGE_RUN_ACCOUNT } from '../../shared/accounts/usageLimits.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { RedisClient } from '../../shared/infra/redis.js';
import type { Sql } from '../../shared/infra/sql.js';
import { runEventKeys, type RunEventWriter } from '../../shared/stream/events.js';

/** A note outlives any attempt that could charge it. */
const NOTE_TTL_MS = 7 * 86_400_000;

type CallNote = { attempt: number; model: string; inputTokens: number };

/**
 * The model call a run has in flight, noted in Redis before the call starts and forgotten when it
 * returns (SPEC section 14: nothing escapes accounting). A worker killed mid-call leaves its note
 * behind: the run's next attempt, or the sweep that fails the run, charges the lost call to the
 * account — its input as estimated when it started, its output from the text its attempt streamed
 * (about four characters a token) — before anything else. A call that returns or is cut short in
 * the process is charged there (worker/agent/agentLoop.ts) and its note is dropped.
 */
export class ModelCallLedger {
  constructor(
    private readonly redis: RedisClient,
    private readonly sql: Sql,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Notes a call about to start, on the attempt's event writer: written to Redis's connection at
   * once, with the events that start the step (shared/stream/events.ts). The promise settles when
   * Redis has it and never rejects — a note that could not be written is logged, and the call is
   * charged as usual when it returns.
   */
  noteStart(events: RunEventWriter, runId: string, note: CallNote): Promise<void> {
    return events
      .noteCall(JSON.stringify(note), NOTE_TTL_MS)
      .catch((err: Error) => void this.logger.warn('could not note a model call', { runId, error: err.message }));
  }

  /** The call returned (or was charged in the process): nothing is left to charge. Goes with the attempt's next append; not awaited by the hot path. */
  forget(events: RunEventWriter): void {
    events.forgetCall().catch((err: Error) => this.logger.warn('could not forget a model call', { error: err.message }));
  }

  /**
   * Charges the call an earlier attempt (before `currentAttempt`; any, when undefined) left in flight,
   * once: the note is taken with GETDEL, so two callers never both charge it. The usage it charged, or null.
   */
  async chargeLost(runId: string, currentAttempt?: number): Promise<Usage | null> {
    const keys = runEventKeys(this.prefix, runId);
    const raw = await this.redis.get(keys.call);
    if (!raw) return null;
    const note = JSON.parse(raw) as CallNote;
    if (currentAttempt !== undefined && note.attempt >= currentAttempt) return null;
    if ((await this.redis.getdel(keys.call)) === null) return null;
    const streamedChars = await this.streamedChars(keys.stream, note.attempt);
    const outputTokens = Math.ceil(streamedChars / 4);
    const usage: Usage = {
      inputTokens: note.inputTokens,
      outputTokens,
      cachedInputTokens: 0,
      reasoningTokens: 0,
      totalTokens: note.inputTokens + outputTokens,
      estimated: true,
    };
    const charge = chargeOf(note.model, usage);
    await this.sql.rows(CHARGE_RUN_ACCOUNT, [runId, charge.tokens, charge.spendMicros?.toString() ?? null]);
    this.logger.warn('charged a model call whose worker died mid-call (estimated)', { runId, lostAttempt: note.attempt, tokens: charge.tokens });
    return usage;
  }

  /** The text (and tool input) the attempt streamed, as its run's event stream kept it. */
  private async streamedChars(stream: string, attempt: number): Promise<number> {
    let chars = 0;
    const textOfAttempt = new RegExp(`^text-${attempt}(-|$)`);
    for (const [, fields] of await this.redis.xrange(stream, '-', '+')) {
      const data = fields[1];
      if (!data || !data.includes('delta')) continue;
      try {
        const event = JSON.parse(data) as { type?: string; id?: string; delta?: string; inputTextDelta?: string };
        if (event.type === 'text-delta' && event.id && textOfAttempt.test(event.id)) chars += event.delta?.length ?? 0;
      } catch {
        // Not a chunk ([DONE]).
      }
    }
    return chars;
  }
}
