import type { Request, Response } from 'express';
import { AppError } from '../shared/infra/errors.js';
import { closingChunks, DONE } from '../shared/stream/events.js';
import { isTerminalStatus } from '../shared/runs/lifecycle.js';
import type { ApiDeps } from './deps.js';
import type { Caller } from './http.js';
import { persistedRunEvents } from './persistedStream.js';
import { getRunForCaller } from './readRuns.js';
import { isKeyLive } from '../shared/accounts/apiKeys.js';

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
// Notifications wake readers at once; this poll covers one lost during a Redis reconnect, and a
// run that ended without its stream being ended (see below).
export const SAFETY_POLL_MS = 5_000;
// A worker appends a run's last events right after the statement that ends the run; a stream still
// open this long after the run ended will not be ended by its worker.
const ENDED_RUN_GRACE_MS = 5_000;
// The reconnect delay every stream suggests to its client (the SSE `retry:` field).
export const RECONNECT_AFTER_MS = 2_000;
// How often a stream opened with a run key or stream token checks that the key still works (a
// primary-key read); the stream ends when it does not, and at the key's expiry.
const KEY_CHECK_MS = 5_000;
// How often a reader without news asks Postgres whether its run ended (a primary-key read; 1,000
// idle readers make ~70 a second).
const ENDED_RUN_CHECK_MS = 15_000;

/** The client went away while the stream was being written. */
export class ClientGone extends Error {}

/** Wakes one waiting reader; a notification that arrives while it is busy is kept for its next wait. */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | undefined;

  notify(): void {
    this.pending = true;
    this.resolve?.();
  }

  clear(): void {
    this.pending = false;
  }

  /** False when the wait timed out without a notification. */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.pending) return true;
    const notified = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.resolve = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    this.resolve = undefined;
    return notified;
  }
}

/**
 * Writes one SSE event. A client that stops reading fills the socket; if it then goes away, 'drain'
 * never comes: wait for whichever of the two happens, so its watch, timer and gauge are released
 * either way. Throws ClientGone once the client has gone.
 */
export function sseWriter(res: Response, closed: () => boolean): (id: string, data: string) => Promise<void> {
  return async (id, data) => {
    if (closed()) throw new ClientGone();
    if (res.write(`id: ${id}\ndata: ${data}\n\n`)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.once('drain', done);
      res.once('close', done);
    });
    if (closed()) throw new ClientGone();
  };
}

export const UI_MESSAGE_STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-vercel-ai-ui-message-stream': 'v1',
  'x-accel-buffering': 'no',
};

export function resumePoint(req: Request, after: string | undefined): string {
  const given = after ?? req.get('last-event-id');
  if (given === undefined || given === '') return '0-0';
  if (!STREAM_ID.test(given)) {
    throw new AppError(
      'invalid_event_id',
      400,
      `"${given}" is not an event id of this stream.`,
      'Send the id: of the last event you received (Last-Event-ID or ?after=), or nothing to start over.',
    );
  }
  return given;
}

/**
 * GET /api/chat/runs/{runId}/stream: the run's events as Server-Sent Events, from after the given
 * event id (or from the start), until [DONE]. Works on any api instance: the state is in Redis.
 *
 * Every stream ends, even when no worker ends it: a run whose Redis stream is gone (retention
 * passed, or its worker died before appending anything) is replayed from Postgres, and a run that
 * ended without [DONE] on its stream (its worker died right after ending it, or the sweep failed it)
 * gets its closing events appended here, for every reader at once.
 */
export async function streamRun(deps: ApiDeps, req: Request, res: Response, caller: Caller, runId: string, after?: string): Promise<void> {
  const run = await getRunForCaller(deps, caller, runId);
  let lastId = resumePoint(req, after);
  if (lastId !== '0-0' && isTerminalStatus(run.status) && (await hasNothingAfter(deps, run, lastId))) {
    // The SSE spec's way to tell a client (a browser's EventSource) to stop reconnecting.
    res.status(204).end();
    return;
  }

  // Admin-token callers have no key id: their streams share one count.
  const lease = await deps.streamLeases.acquire(caller.keyId ?? 'admin-token');
  const wakeup = new Wakeup();
  let unwatch: () => void;
  try {
    unwatch = await deps.streams.watch(runId, () => wakeup.notify());
  } catch (err) {
    lease.release();
    throw err;
  }
  let closed = false;
  const onClose = () => {
    closed = true;
    wakeup.notify();
  };
  res.on('close', onClose); // res, not req: a GET's request stream may close as soon as it is read
  res.writeHead(200, UI_MESSAGE_STREAM_HEADERS);
  res.write(`retry: ${RECONNECT_AFTER_MS}\n\n`);
  deps.metrics.activeStreams.inc();
  const keepAlive = setInterval(() => {
    res.write(': keep-alive\n\n');
    lease.renew();
  }, deps.config.SSE_KEEPALIVE_MS);
  const keyEnds = keyLifetime(deps, caller, () => wakeup.notify());

  const write = sseWriter(res, () => closed);

  try {
    let first = true;
    let timedOut = false;
    let checkedAt = 0;
    while (!closed) {
      wakeup.clear();
      // The key that opened the stream expired or was revoked: the stream ends (a reconnect gets 401).
      if (await keyEnds.ended()) return;
      const entries = await deps.streams.read(runId, lastId);
      for (const entry of entries) {
        await write(entry.id, entry.data);
        lastId = entry.id;
        if (entry.data === DONE) return;
      }
      if (entries.length > 0) continue;
      // Only a client that already has [DONE] is finished: events appended since the read come next turn.
      if (await deps.streams.endsAtOrBefore(runId, lastId)) return;
      if (first || timedOut) {
        const exists = await deps.streams.exists(runId);
        const checkDue = timedOut && Date.now() - checkedAt >= ENDED_RUN_CHECK_MS;
        const current = !exists || checkDue ? await getRunForCaller(deps, caller, runId) : undefined;
        if (checkDue) checkedAt = Date.now();
        if (current && isTerminalStatus(current.status)) {
          if (!exists) {
            // The Redis stream's retention has passed (or it never existed): replay what Postgres kept.
            for (const entry of await persistedRunEvents(deps.db, current, lastId)) await write(entry.id, entry.data);
            return;
          }
          if (Date.parse(current.finishedAt ?? current.createdAt) < Date.now() - ENDED_RUN_GRACE_MS) {
            if (await deps.streams.end(runId, closingChunks(current))) deps.logger.warn('ended the stream of a run whose worker did not', { runId });
            continue;
          }
        }
      }
      first = false;
      timedOut = !(await wakeup.wait(SAFETY_POLL_MS));
    }
  } catch (err) {
    if (!(err instanceof ClientGone)) deps.logger.warn('stream ended with an error', { runId: run.runId, error: (err as Error).message });
  } finally {
    clearInterval(keepAlive);
    keyEnds.stop();
    res.off('close', onClose);
    unwatch();
    lease.release();
    deps.metrics.activeStreams.dec();
    res.end();
  }
}

/** Whether a client that has `lastId` of a finished run's stream has it all: the live stream's [DONE], or the persisted replay's last event. */
async function hasNothingAfter(deps: ApiDeps, run: Awaited<ReturnType<typeof getRunForCaller>>, lastId: string): Promise<boolean> {
  if (await deps.streams.endsAtOrBefore(run.runId, lastId)) return true;
  if (!lastId.startsWith('0-') || (await deps.streams.exists(run.runId))) return false;
  return (await persistedRunEvents(deps.db, run, lastId)).length === 0;
}

/**
 * A scoped key's hold on its stream (run keys and stream tokens: an account key's streams are not
 * limited): ended at its expiry (`wake` is called then) or, checked every KEY_CHECK_MS, once it or
 * the key that minted it is revoked.
 */
export function keyLifetime(deps: ApiDeps, caller: Caller, wake: () => void): { ended: () => Promise<boolean>; stop: () => void } {
  if (!caller.runId || !caller.keyId) return { ended: async () => false, stop: () => {} };
  const keyId = caller.keyId;
  const expiresAt = caller.expiresAt?.getTime() ?? Infinity;
  // setTimeout takes at most 2^31-1 ms; a later expiry is caught by the periodic check.
  const timer = Number.isFinite(expiresAt) ? setTimeout(wake, Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1)) : undefined;
  timer?.unref();
  let checkedAt = Date.now();
  return {
    ended: async () => {
      if (Date.now() >= expiresAt) return true;
      if (Date.now() - checkedAt < KEY_CHECK_MS) return false;
      checkedAt = Date.now();
      return !(await isKeyLive(deps.db, keyId));
    },
    stop: () => clearTimeout(timer),
  };
}
