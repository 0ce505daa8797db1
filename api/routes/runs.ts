import { Router, type Request } from 'express';
import { AppError } from '../../shared/infra/errors.js';
import { cancelRun } from '../runs/cancelRun.js';
import type { ApiDeps } from '../deps.js';
import { callerOf, idempotencyKeyOf, jsonBody } from '../http/http.js';
import { requireScope } from '../http/middleware/authenticate.js';
import { getRunForCaller, listRunsForCaller, runNotFound } from '../runs/readRuns.js';
import { runIdParamsSchema } from '../http/schemas.js';
import { runListQuerySchema, startRunBodySchema, streamQuerySchema, toolResultsBodySchema } from '../runs/schemas.js';
import { submitToolResults } from '../runs/submitToolResults.js';
import { mintRunStreamToken } from '../streams/streamTokens.js';
import { webhookEventsOfRun } from '../../shared/webhooks/deliveryLog.js';
import { startRun } from '../runs/startRun.js';
import { streamRun } from '../streams/streamRun.js';

/** A malformed id can never name a run: answer exactly as for an unknown one. */
function runIdOf(req: Request): string {
  const parsed = runIdParamsSchema.safeParse(req.params);
  if (!parsed.success) throw runNotFound();
  return parsed.data.runId;
}

export function runRoutes(deps: ApiDeps): Router {
  const router = Router();

  router.post('/', requireScope('runs:write'), async (req, res) => {
    const body = startRunBodySchema.parse(jsonBody(req));
    const result = await startRun(deps, callerOf(req), body, idempotencyKeyOf(req));
    res.status(202).location(`/api/chat/runs/${result.runId}`).json(result);
  });

  router.get('/', requireScope('runs:read'), async (req, res) => {
    res.json(await listRunsForCaller(deps, callerOf(req), runListQuerySchema.parse(req.query)));
  });

  router.get('/:runId', requireScope('runs:read'), async (req, res) => {
    res.json(await getRunForCaller(deps, callerOf(req), runIdOf(req)));
  });

  router.get('/:runId/stream', requireScope('runs:read'), async (req, res) => {
    const { after } = streamQuerySchema.parse(req.query);
    await streamRun(deps, req, res, callerOf(req), runIdOf(req), after);
  });

  router.post('/:runId/tool-results', requireScope('runs:write'), async (req, res) => {
    const runId = runIdOf(req);
    const body = toolResultsBodySchema.parse(jsonBody(req));
    res.status(202).json(await submitToolResults(deps, callerOf(req), runId, body, idempotencyKeyOf(req)));
  });

  router.post('/:runId/stream-token', requireScope('runs:read'), async (req, res) => {
    res.status(201).json(await mintRunStreamToken(deps, callerOf(req), runIdOf(req)));
  });

  router.get('/:runId/webhook-deliveries', requireScope('runs:read'), async (req, res) => {
    const caller = callerOf(req);
    // A run key or stream token reads its run, stream and messages only (a webhook's log is the backend's).
    if (caller.runId) {
      throw new AppError(
        'scope_denied',
        403,
        'A run key or stream token reads its run, its stream and its chat’s messages only.',
        'Read webhook deliveries with an account key.',
      );
    }
    const run = await getRunForCaller(deps, caller, runIdOf(req));
    res.json({ events: await webhookEventsOfRun(deps.db, run.runId) });
  });

  router.post('/:runId/cancel', requireScope('runs:write'), async (req, res) => {
    res.status(202).json(await cancelRun(deps, callerOf(req), runIdOf(req)));
  });

  return router;
}
