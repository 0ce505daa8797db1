import { pubsub, withScript, type RedisClient, luaScript } from '../infra/redis.js';

/**
 * The run event stream: one Redis Stream per run holding AI SDK UI-message-stream chunks as JSON,
 * ending with the `[DONE]` entry. Workers append (fenced by the attempt they belong to); any api
 * instance reads. A notification on a per-run channel tells readers to look again.
 */
export const DONE = '[DONE]';

export type UiChunk =
  | { type: 'start'; messageId?: string; messageMetadata?: unknown }
  | { type: 'start-step' }
  | { type: 'text-start'; id: string }
  | { type: 'text-delta'; id: string; delta: string; providerMetadata?: Record<string, Record<string, unknown>> }
  | { type: 'text-end'; id: string }
  | { type: 'finish-step' }
  | { type: 'tool-input-start'; toolCallId: string; toolName: string }
  | { type: 'tool-input-delta'; toolCallId: string; inputTextDelta: string }
  | { type: 'tool-input-available'; toolCallId: string; toolName: string; input: unknown }
  | { type: 'tool-input-error'; toolCallId: string; toolName: string; input: unknown; errorText: string }
  | { type: 'tool-output-available'; toolCallId: string; output: unknown }
  | { type: 'tool-output-error'; toolCallId: string; errorText: string }
  | { type: 'tool-output-denied'; toolCallId: string }
  | { type: 'tool-approval-request'; approvalId: string; toolCallId: string }
  | { type: 'finish'; messageMetadata?: unknown }
  | { type: 'error'; errorText: string }
  | { type: `data-${string}`; id?: string; data: unknown; transient?: boolean };

/**
 * A run's keys share the hash tag `{runId}`: on a Redis Cluster they live in one slot (so one script
 * can touch them all) and different runs spread over every master.
 */
export const runEventKeys = (prefix: string, runId: string) => ({
  stream: `${prefix}:run:{${runId}}:events`,
  fence: `${prefix}:run:{${runId}}:fence`,
  channel: `${prefix}:run:{${runId}}:notify`,
  /** The model call in flight, noted before it starts (worker/attempt/modelCallLedger.ts): charged by the next attempt if its worker dies. */
  call: `${prefix}:run:{${runId}}:call`,
});

/** Where the api tells workers that a running run was cancelled (the message is the runId). */
export const cancelChannel = (prefix: string) => `${prefix}:cancel`;

// Appends only while the run's fence still names this attempt: a worker that lost its run
// (stalled, paused, partitioned) has its late events dropped here. An attempt's first append
// claims the fence (moving it forward, never back), so a newer attempt shuts older ones out. The
// notification goes out by ARGV[4] (PUBLISH, or SPUBLISH on a cluster) on the channel KEYS[3].
const APPEND_FENCED = luaScript('appendFenced');

type AppendFenced = {
  runyardAppendFenced(
    stream: string,
    fence: string,
    channel: string,
    call: string,
    attempt: number,
    maxLen: number,
    ttlMs: number,
    publish: 'PUBLISH' | 'SPUBLISH',
    claim: 0 | 1,
    callNote: string,
    callNoteTtlMs: number,
    ...events: string[]
  ): Promise<string | null>;
};

export type StreamOptions = { prefix: string; maxEvents: number; ttlMs: number };

// Appends the closing events unless the stream already ends with [DONE] (the last event of every
// closing append, which the script compares with): whoever ends a run's
// stream for a worker that did not (the api) may race another api instance doing the same.
const APPEND_CLOSING = luaScript('appendClosing');

type AppendClosing = {
  runyardAppendClosing(
    stream: string,
    channel: string,
    maxLen: number,
    ttlMs: number,
    publish: 'PUBLISH' | 'SPUBLISH',
    ...events: string[]
  ): Promise<string | null>;
};

/**
 * The run's status for stream listeners. Transient (the AI SDK hands it to `onData` and keeps it
 * out of the message's parts), so the message a client builds from the stream is the persisted one.
 */
export const runStatusChunk = (data: { status: string } & Record<string, unknown>): UiChunk => ({ type: 'data-run-status', data, transient: true });

/**
 * A new attempt begins at step `resumesFromStep` (the steps before it are persisted and will not
 * run again). It then sends a new `start` — a client drops what it had, as the AI SDK does — and
 * the persisted steps again before the new ones.
 */
export const attemptChunk = (attempt: number, resumesFromStep: number): UiChunk => ({
  type: 'data-attempt',
  data: { attempt, resumesFromStep },
  transient: true,
});

/** How a run's stream ends once the run has: its outcome, `finish`, then [DONE]. */
export function closingChunks(outcome: { status: string; usage?: unknown; error?: { code: string; message: string; retryable: boolean } | null }): UiChunk[] {
  const { status, usage, error } = outcome;
  return [
    ...(error && status === 'failed' ? [{ type: 'error' as const, errorText: `${error.code}: ${error.message}` }] : []),
    runStatusChunk({ status, ...(usage ? { usage } : {}), ...(error ? { error } : {}) }),
    { type: 'finish' },
  ];
}

/**
 * Ends a run's stream with `chunks` and [DONE], unless it already ended; false if it had. For runs
 * that ended without their worker ending the stream: cancelled before they started, or a worker
 * that died between ending the run and appending its last events.
 */
export async function appendClosing(redis: RedisClient, opts: StreamOptions, runId: string, chunks: UiChunk[]): Promise<boolean> {
  const keys = runEventKeys(opts.prefix, runId);
  const scripted = withScript<AppendClosing>(redis, 'runyardAppendClosing', 2, APPEND_CLOSING);
  const events = [...chunks.map((chunk) => JSON.stringify(chunk)), DONE];
  return (await scripted.runyardAppendClosing(keys.stream, keys.channel, opts.maxEvents, opts.ttlMs, pubsub.publishCommand(redis), ...events)) !== null;
}

export async function deleteRunStream(redis: RedisClient, prefix: string, runId: string): Promise<void> {
  const keys = runEventKeys(prefix, runId);
  await redis.del(keys.stream);
}

export class FencedError extends Error {
  override name = 'FencedError';
  constructor(runId: string, attempt: number) {
    super(`attempt ${attempt} of run ${runId} no longer owns the run`);
  }
}

/** A change of the run's model call note: set to `value` for `ttlMs`, or forgotten (value null). */
type NoteChange = { value: string | null; ttlMs: number; noted?: () => void; failed?: (err: Error) => void };

/**
 * Writes one attempt's events. An append goes out on the next turn of the event loop when nothing
 * is in flight (so a synchronous burst is one write); while a write is in flight, new events
 * queue and consecutive text deltas merge, so Redis sees one round trip per batch under load and
 * no added latency when idle.
 *
 * The run's model call note (worker/attempt/modelCallLedger.ts) rides along: noted with the events
 * that start the step, sent at once (before the call it notes), and forgotten with the next
 * append — one round trip a model call instead of three.
 */
export class RunEventWriter {
  private pending: UiChunk[] = [];
  /** The call note's change for the next append (value null: forget it), told when Redis has it; none when null. */
  private note: NoteChange | null = null;
  /** The append: scheduled for the next turn (startNow set), or sending. */
  private inFlight: Promise<void> | null = null;
  /** Starts a scheduled append now instead of on the next turn. */
  private startNow: (() => void) | null = null;
  private fenced = false;
  private claimed = false;
  private failure: Error | null = null;
  private readonly keys: ReturnType<typeof runEventKeys>;
  private readonly redis: RedisClient & AppendFenced;

  constructor(
    redis: RedisClient,
    private readonly opts: StreamOptions & { timings?: boolean },
    private readonly runId: string,
    private readonly attempt: number,
  ) {
    this.redis = withScript<AppendFenced>(redis, 'runyardAppendFenced', 4, APPEND_FENCED);
    this.keys = runEventKeys(opts.prefix, runId);
  }

  get isFenced(): boolean {
    return this.fenced;
  }

  emit(chunk: UiChunk): void {
    if (this.fenced) return;
    const last = this.pending[this.pending.length - 1];
    if (chunk.type === 'text-delta' && last?.type === 'text-delta' && last.id === chunk.id) {
      last.delta += chunk.delta;
    } else if (chunk.type === 'tool-input-delta' && last?.type === 'tool-input-delta' && last.toolCallId === chunk.toolCallId) {
      last.inputTextDelta += chunk.inputTextDelta;
    } else if (chunk.type === 'text-delta' && this.opts.timings) {
      this.pending.push({ ...chunk, providerMetadata: { runyard: { emittedAt: Date.now() } } });
    } else {
      this.pending.push(chunk.type === 'text-delta' || chunk.type === 'tool-input-delta' ? { ...chunk } : chunk);
    }
    this.schedule();
  }

  /** Appends the terminal [DONE] after everything queued. */
  end(): void {
    this.pending.push({ type: DONE } as unknown as UiChunk);
    this.schedule();
  }

  /**
   * Notes the model call about to start: written to Redis's connection now, with the events queued
   * so far, or on its own while an append is in flight (or once fenced). Resolves when Redis has it.
   */
  noteCall(value: string, ttlMs: number): Promise<void> {
    if (this.sending || this.fenced) {
      this.note = null;
      return this.changeNoteAlone({ value, ttlMs });
    }
    return new Promise<void>((noted, failed) => {
      this.note = { value, ttlMs, noted, failed };
      this.schedule();
      this.startNow?.();
    });
  }

  /** The noted call returned: the note goes with the next append (at once, on its own, once fenced). */
  forgetCall(): Promise<void> {
    if (this.fenced) return this.changeNoteAlone({ value: null, ttlMs: 0 });
    this.note = { value: null, ttlMs: 0 };
    this.schedule();
    return Promise.resolve();
  }

  /** An append is on its way to Redis (scheduled ones have startNow). */
  private get sending(): boolean {
    return this.inFlight !== null && this.startNow === null;
  }

  private async changeNoteAlone(change: NoteChange): Promise<void> {
    if (change.value === null) await this.redis.del(this.keys.call);
    else await this.redis.set(this.keys.call, change.value, 'PX', change.ttlMs);
  }

  private schedule(): void {
    if (this.inFlight) return;
    this.inFlight = new Promise<void>((resolve) => {
      const timer = setImmediate(resolve);
      this.startNow = () => {
        clearImmediate(timer);
        resolve();
      };
    }).then(() => this.drain());
  }

  /** Waits until every queued event is in Redis; throws FencedError if the attempt was fenced off. */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.failure) throw this.failure;
    if (this.fenced) throw new FencedError(this.runId, this.attempt);
  }

  private async drain(): Promise<void> {
    this.startNow = null;
    let note: NoteChange | null = null;
    try {
      while ((this.pending.length > 0 || this.note) && !this.fenced) {
        const batch = this.pending.map((chunk) => ((chunk.type as string) === DONE ? DONE : JSON.stringify(chunk)));
        this.pending = [];
        note = this.note;
        this.note = null;
        const result = await this.redis.runyardAppendFenced(
          this.keys.stream,
          this.keys.fence,
          this.keys.channel,
          this.keys.call,
          this.attempt,
          this.opts.maxEvents,
          this.opts.ttlMs,
          pubsub.publishCommand(this.redis),
          this.claimed ? 0 : 1,
          note ? (note.value ?? '-') : '',
          note?.ttlMs ?? 0,
          ...batch,
        );
        note?.noted?.();
        note = null;
        this.claimed = true;
        if (result === null) this.fenced = true;
      }
      // Fenced with a change still queued: it goes on its own (a note outlives the attempt that lost its run).
      if (this.note) {
        note = this.note;
        this.note = null;
        await this.changeNoteAlone(note);
        note.noted?.();
      }
    } catch (err) {
      this.failure = err as Error;
      note?.failed?.(err as Error);
      this.note?.failed?.(err as Error);
      this.note = null;
    } finally {
      this.inFlight = null;
    }
  }
}
