import { AsyncLocalStorage } from 'node:async_hooks';

/** Fields every log line written inside the current request or job carries. */
export type LogContext = { requestId?: string; runId?: string; jobId?: string; attempt?: number };

const storage = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(context: LogContext, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...context }, fn);
}

export function currentLogContext(): LogContext {
  return storage.getStore() ?? {};
}
