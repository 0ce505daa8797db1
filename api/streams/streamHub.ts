import type { Logger } from '../../shared/infra/logger.js';
import { pubsub, type RedisClient } from '../../shared/infra/redis.js';
import { appendClosing, DONE, runEventKeys, type StreamOptions, type UiChunk } from '../../shared/stream/events.js';
import { isAfter, type StreamEntry } from './streamIds.js';

/**
 * Shared Redis access for every SSE client of one api process: one subscriber connection carries
 * the per-run "new events" notifications for all clients, and reads are plain non-blocking XRANGEs
 * on the api's command connection. N concurrent streams therefore cost 2 Redis connections per api
 * process, not N (on a cluster, a subscriber and a command connection per master).
 */
export class StreamHub {
  private readonly wakers = new Map<string, Set<() => void>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly opts: StreamOptions,
    private readonly logger: Logger,
  ) {
    pubsub.onMessage(subscriber, (channel) => {
      for (const wake of this.wakers.get(channel) ?? []) wake();
    });
    // After a reconnect a notification may have been missed: wake everyone to read again.
    subscriber.on('ready', () => {
      for (const set of this.wakers.values()) for (const wake of set) wake();
    });
  }

  get watchedRuns(): number {
    return this.wakers.size;
  }

  /** Calls `wake` at each message on `channel` (a stream's "new events" notification); returns the function that stops watching. */
  async watchChannel(channel: string, wake: () => void): Promise<() => void> {
    let set = this.wakers.get(channel);
    if (!set) {
      set = new Set();
      this.wakers.set(channel, set);
      await pubsub.subscribe(this.subscriber, channel);
    }
    set.add(wake);
    return () => {
      const current = this.wakers.get(channel);
      if (!current) return;
      current.delete(wake);
      if (current.size === 0) {
        this.wakers.delete(channel);
        pubsub.unsubscribe(this.subscriber, channel).catch((err: Error) => this.logger.warn('unsubscribe failed', { error: err.message }));
      }
    };
  }

  /** Entries strictly after `afterId`, oldest first. */
  read(runId: string, afterId: string, count = 1_000): Promise<StreamEntry[]> {
    return this.readStream(runEventKeys(this.opts.prefix, runId).stream, afterId, count);
  }

  /** Entries of the stream at `key` strictly after `afterId`, oldest first. */
  async readStream(key: string, afterId: string, count = 1_000): Promise<StreamEntry[]> {
    const rows = await this.redis.xrange(key, `(${afterId}`, '+', 'COUNT', count);
    return rows.map(([id, fields]) => ({ id, data: fields[1] ?? '' }));
  }

  /** Whether the stream ends with [DONE] at or before `afterId`: a client resuming there has everything. */
  async endsAtOrBefore(runId: string, afterId: string): Promise<boolean> {
    const { stream } = runEventKeys(this.opts.prefix, runId);
    const [last] = await this.redis.xrevrange(stream, '+', '-', 'COUNT', 1);
    return last !== undefined && last[1][1] === DONE && !isAfter(last[0], afterId);
  }

  async exists(runId: string): Promise<boolean> {
    return (await this.redis.exists(runEventKeys(this.opts.prefix, runId).stream)) === 1;
  }

  /** Ends the run's stream with `chunks` and [DONE] on behalf of a worker that did not; false if it had ended already. */
  end(runId: string, chunks: UiChunk[]): Promise<boolean> {
    return appendClosing(this.redis, this.opts, runId, chunks);
  }
}
