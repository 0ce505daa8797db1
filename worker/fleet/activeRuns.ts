import { setMaxListeners } from 'node:events';
import type { Logger } from '../../shared/infra/logger.js';
import { cancelChannel } from '../../shared/stream/events.js';
import { pubsub, type RedisClient } from '../../shared/infra/redis.js';
import type { RunStore } from '../attempt/runStore.js';

export type StopReason = 'cancelled' | 'lost' | 'shutdown';

export class RunStopped extends Error {
  override name = 'RunStopped';
  constructor(readonly reason: StopReason) {
    super(`run stopped: ${reason}`);
  }
}

type ActiveRun = { runId: string; attempt: number; controller: AbortController };

/**
 * The runs this worker process is executing, each with an AbortController. It keeps them alive
 * (one batched heartbeat per interval, on the lock-renewal cadence) and stops them when they are
 * cancelled (pub/sub, so within a second), taken over by another attempt, or the worker shuts down.
 */
export class ActiveRuns {
  private readonly runs = new Map<string, ActiveRun>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: RunStore,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.runs.size;
  }

  add(runId: string, attempt: number): AbortController {
    const controller = new AbortController();
    // The run's model call and every tool call of a step listen on it at once.
    setMaxListeners(256, controller.signal);
    this.runs.set(runId, { runId, attempt, controller });
    return controller;
  }

  remove(runId: string, controller: AbortController): void {
    if (this.runs.get(runId)?.controller === controller) this.runs.delete(runId);
  }

  stop(runId: string, reason: StopReason): void {
    const run = this.runs.get(runId);
    if (run && !run.controller.signal.aborted) {
      this.logger.info('stopping run', { runId, reason });
      run.controller.abort(new RunStopped(reason));
    }
  }

  stopAll(reason: StopReason): void {
    for (const runId of this.runs.keys()) this.stop(runId, reason);
  }

  /** Heartbeats every `intervalMs` and listens for cancel requests on `subscriber`. */
  start(intervalMs: number, subscriber: RedisClient, prefix: string): void {
    this.timer = setInterval(() => void this.beat(), intervalMs);
    this.timer.unref();
    pubsub.onMessage(subscriber, (channel, runId) => {
      if (channel === cancelChannel(prefix)) this.stop(runId, 'cancelled');
    });
    void pubsub
      .subscribe(subscriber, cancelChannel(prefix))
      .catch((err: Error) => this.logger.error('cannot listen for cancel requests', { error: err.message }));
  }

  close(): void {
    clearInterval(this.timer);
  }

  async beat(): Promise<void> {
    const runs = [...this.runs.values()];
    if (runs.length === 0) return;
    try {
      const owned = await this.store.heartbeat(runs);
      for (const run of runs) {
        const state = owned.get(run.runId);
        if (!state) this.stop(run.runId, 'lost');
        else if (state.cancelRequested) this.stop(run.runId, 'cancelled');
      }
    } catch (err) {
      // The BullMQ lock is renewed separately; a database blip here costs one beat, not the run.
      this.logger.warn('heartbeat failed', { error: (err as Error).message, runs: runs.length });
    }
  }
}
