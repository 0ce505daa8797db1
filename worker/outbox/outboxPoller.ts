import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/infra/logger.js';

/**
 * The loop every worker process runs over an outbox table (webhook events, runs that queued messages
 * became): take and handle a batch; while batches come back full go on at once, else wait
 * `intervalMs` — or until `wake()` (a notification that rows were written). A failed batch is logged and tried again; `stop()` ends the wait at once and waits
 * for the batch in hand. `signal` aborts with it (for work in flight).
 */
export type PollerOptions = {
  /** What a failure says it was doing, in the log. */
  what: string;
  batch: number;
  intervalMs: number;
  logger: Logger;
};

export class OutboxPoller {
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  /** Ends the current wait early: rows were written (a notification) and are due now. */
  private woken: AbortController | undefined;
  private wokenDuringBatch = false;

  constructor(private readonly opts: PollerOptions & { takeBatch: () => Promise<number> }) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Takes a batch now instead of at the end of the wait (or, during a batch, right after it). */
  wake(): void {
    this.wokenDuringBatch = true;
    this.woken?.abort();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let taken = 0;
      this.wokenDuringBatch = false;
      try {
        taken = await this.opts.takeBatch();
      } catch (err) {
        if (!this.stopping) this.opts.logger.warn(`${this.opts.what} failed; trying again`, { error: (err as Error).message });
      }
      if (taken < this.opts.batch && !this.stopping && !this.wokenDuringBatch) {
        this.woken = new AbortController();
        await sleep(this.opts.intervalMs, undefined, { signal: AbortSignal.any([this.abort.signal, this.woken.signal]) }).catch(() => {});
        this.woken = undefined;
      }
    }
  }
}

/**
 * A worker's dispatcher of one outbox: an OutboxPoller over its takeBatch, started with the worker,
 * woken by the outbox's notification (outboxNotifications.ts), stopped at shutdown.
 */
export abstract class OutboxDispatcher {
  protected readonly poller: OutboxPoller;

  constructor(options: PollerOptions) {
    this.poller = new OutboxPoller({ ...options, takeBatch: () => this.takeBatch() });
  }

  /** Takes and handles one batch of the outbox; how many it took. */
  protected abstract takeBatch(): Promise<number>;

  start(): void {
    this.poller.start();
  }

  /** Rows were written to the outbox: take them now. */
  wake(): void {
    this.poller.wake();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }
}
