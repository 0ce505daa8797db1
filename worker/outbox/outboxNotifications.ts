import pg from 'pg';
import type { Logger } from '../../shared/infra/logger.js';

const CHANNEL = 'runyard_outbox';
const RECONNECT_MS = 1_000;

/**
 * Wakes the outbox pollers when a transaction writes their table (Postgres LISTEN on
 * runyard_outbox; the triggers of migration outbox_notify NOTIFY with the table's name on commit):
 * a webhook goes out, a queued message's run is queued, as soon as the row exists rather than at
 * the next poll. One connection per worker process, reconnected when it drops; while it is down,
 * the pollers' intervals still find everything.
 */
export class OutboxNotifications {
  private client: pg.Client | undefined;
  private stopped = false;
  private readonly listeners = new Map<string, () => void>();

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
  ) {}

  /** Calls `wake` whenever rows are written to `table`. */
  on(table: string, wake: () => void): this {
    this.listeners.set(table, wake);
    return this;
  }

  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'runyard-outbox-listener' });
    this.client = client;
    const retry = () => {
      client.removeAllListeners();
      client.end().catch(() => {});
      if (!this.stopped) setTimeout(() => void this.connect(), RECONNECT_MS).unref();
    };
    client.on('error', (err) => {
      this.logger.warn('outbox notifications lost; the pollers go on, reconnecting', { error: err.message });
      retry();
    });
    client.on('notification', (message) => {
      if (message.payload) this.listeners.get(message.payload)?.();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      // Whatever was written while not listening is there for the first poll: wake everyone once.
      for (const wake of this.listeners.values()) wake();
    } catch (err) {
      if (!this.stopped) this.logger.warn('could not listen for outbox notifications; the pollers go on', { error: (err as Error).message });
      retry();
    }
  }
}
