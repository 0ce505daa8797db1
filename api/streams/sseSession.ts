import type { Request, Response } from 'express';
import { AppError } from '../../shared/infra/errors.js';
import { isKeyLive } from '../../shared/accounts/apiKeys.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';

/**
 * What every long-lived SSE response of the api shares (a run's stream, a chat's stream, a chat's
 * events): the key's stream lease (STREAMS_PER_KEY), the watch of the stream's "new events" channel,
 * keep-alive comments, the `retry:` hint, the end of a scoped key's hold, writes that respect
 * backpressure, and one teardown whatever ends it.
 */

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
// Notifications wake readers at once; this poll covers one lost during a Redis reconnect (and, for a
// run's stream, a run that ended without its stream being ended).
export const SAFETY_POLL_MS = 5_000;
// The reconnect delay every stream suggests to its client (the SSE `retry:` field).
export const RECONNECT_AFTER_MS = 2_000;
// How often a stream opened with a run key or stream token checks that the key still works (a
// primary-key read); the stream ends when it does not, and at the key's expiry.
const KEY_CHECK_MS = 5_000;

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

/** Where a client resumes: after Last-Event-ID (or `?after=`), else from the start ('0-0'); 400 for what is not an id of a stream. */
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

/** An open SSE response. */
export type SseSession = {
  /** Set when the stream's channel says it grew (and when the client goes or the key ends). */
  wakeup: Wakeup;
  closed: () => boolean;
  /** Writes one event; throws ClientGone once the client has gone. */
  write: (id: string, data: string) => Promise<void>;
  /** The key that opened it expired or was revoked: the stream must end (a reconnect gets 401). */
  keyEnded: () => Promise<boolean>;
  /** Releases everything and ends the response. */
  close: () => void;
};

/** Opens the SSE response: lease, watch, headers, keep-alives. `onKeepAlive` runs with each keep-alive. */
export async function openSseSession(
  deps: ApiDeps,
  res: Response,
  caller: Caller,
  opts: { channel: string; headers: Record<string, string>; onKeepAlive?: () => void },
): Promise<SseSession> {
  // Admin-token callers have no key id: their streams share one count.
  const lease = await deps.streamLeases.acquire(caller.keyId ?? 'admin-token');
  const wakeup = new Wakeup();
  let unwatch: () => void;
  try {
    unwatch = await deps.streams.watchChannel(opts.channel, () => wakeup.notify());
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
  res.writeHead(200, opts.headers);
  res.write(`retry: ${RECONNECT_AFTER_MS}\n\n`);
  deps.metrics.activeStreams.inc();
  const keepAlive = setInterval(() => {
    res.write(': keep-alive\n\n');
    lease.renew();
    opts.onKeepAlive?.();
  }, deps.config.SSE_KEEPALIVE_MS);
  const keyEnds = keyLifetime(deps, caller, () => wakeup.notify());
  return {
    wakeup,
    closed: () => closed,
    write: sseWriter(res, () => closed),
    keyEnded: keyEnds.ended,
    close: () => {
      clearInterval(keepAlive);
      keyEnds.stop();
      res.off('close', onClose);
      unwatch();
      lease.release();
      deps.metrics.activeStreams.dec();
      res.end();
    },
  };
}

/**
 * A scoped key's hold on its stream (run keys and stream tokens: an account key's streams are not
 * limited): ended at its expiry (`wake` is called then) or, checked every KEY_CHECK_MS, once it or
 * the key that minted it is revoked.
 */
function keyLifetime(deps: ApiDeps, caller: Caller, wake: () => void): { ended: () => Promise<boolean>; stop: () => void } {
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
