import type { Request, Response } from 'express';
import { closingChunks, DONE, runEventKeys } from '../../shared/stream/events.js';
import { isTerminalStatus } from '../../shared/runs/lifecycle.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { persistedRunEvents } from './persistedStream.js';
import { getRunForCaller } from '../runs/readRuns.js';
import { ClientGone, openSseSession, resumePoint, SAFETY_POLL_MS } from './sseSession.js';

// A worker appends a run's last events right after the statement that ends the run; a stream still
// open this long after the run ended will not be ended by its worker.
const ENDED_RUN_GRACE_MS = 5_000;
// How often a reader without news asks Postgres whether its run ended (a primary-key read; 1,000
// idle readers make ~70 a second).
const ENDED_RUN_CHECK_MS = 15_000;

export const UI_MESSAGE_STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-vercel-ai-ui-message-stream': 'v1',
  'x-accel-buffering': 'no',
};

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

  const session = await openSseSession(deps, res, caller, {
    channel: runEventKeys(deps.config.QUEUE_PREFIX, runId).channel,
    headers: UI_MESSAGE_STREAM_HEADERS,
  });
  const { wakeup, write } = session;

  try {
    let first = true;
    let timedOut = false;
    let checkedAt = 0;
    while (!session.closed()) {
      wakeup.clear();
      // The key that opened the stream expired or was revoked: the stream ends (a reconnect gets 401).
      if (await session.keyEnded()) return;
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
    session.close();
  }
}

/** Whether a client that has `lastId` of a finished run's stream has it all: the live stream's [DONE], or the persisted replay's last event. */
async function hasNothingAfter(deps: ApiDeps, run: Awaited<ReturnType<typeof getRunForCaller>>, lastId: string): Promise<boolean> {
  if (await deps.streams.endsAtOrBefore(run.runId, lastId)) return true;
  if (!lastId.startsWith('0-') || (await deps.streams.exists(run.runId))) return false;
  return (await persistedRunEvents(deps.db, run, lastId)).length === 0;
}
