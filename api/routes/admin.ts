import { createRequire } from 'node:module';
import path from 'node:path';
import { renderUsagePage, USAGE_SCRIPT } from '../admin/usagePage.js';
import { usageByDayAndModel } from '../../shared/accounts/usageReports.js';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { AppError, notFound, scopeDenied, unauthorized } from '../../shared/infra/errors.js';
import { listQueuedMessages } from '../chats/queuedMessages.js';
import { getChat } from '../chats/readChats.js';
import { adminSurfaceOff } from '../http/middleware/errorHandler.js';
import type { ApiDeps } from '../deps.js';
import { callerOf, jsonBody, type RequestWithCaller } from '../http/http.js';
import { findAccount, updateAccountSettings } from '../../shared/accounts/accountSettings.js';
import { accountUsage, setAccountLimits } from '../../shared/accounts/usageLimits.js';
import { listRunsForOperator, replayOne, replayRuns } from '../admin/operatorRuns.js';
import {
  accountLimitsBodySchema,
  accountParamsSchema,
  accountSettingsBodySchema,
  adminUsageReportQuerySchema,
  accountSecretBodySchema,
  accountSecretParamsSchema,
  providerKeyBodySchema,
  providerKeyParamsSchema,
  catalogueEntryBodySchema,
  catalogueModelParamsSchema,
  operatorRunListQuerySchema,
  replayBulkBodySchema,
  webhookRedeliverBodySchema,
} from '../admin/schemas.js';
import { chatIdParamsSchema, runIdParamsSchema } from '../http/schemas.js';
import { redeliverFailedWebhookEvents, redeliverWebhookEvent } from '../../shared/webhooks/deliveryLog.js';
import { pointInTime } from '../../shared/infra/durations.js';
import { runTimeline } from '../runs/runTimeline.js';
import { usageReport } from '../../shared/accounts/usageReports.js';
import { reportPeriodOf, sendReport } from './usage.js';
import { accountSecretNames, setAccountSecret, unsetAccountSecret } from '../../shared/accounts/accountSecrets.js';
import { providerKeysOf, setProviderKey, unsetProviderKey } from '../../shared/accounts/providerKeys.js';
import { catalogueViews, setCatalogueEntry, unsetCatalogueEntry } from '../../shared/agent/modelCatalogue.js';
import { contextWindows } from '../../shared/agent/contextWindows.js';
import { eraseAccount } from '../admin/eraseAccount.js';
import { renderTimelinePage, TIMELINE_SCRIPT } from '../admin/timelinePage.js';

export const BULL_BOARD_PATH = '/admin/queues';

/**
 * The admin gate, after `authenticate` ran in lenient mode: an admin-scoped key or ADMIN_TOKEN
 * passes. With no ADMIN_TOKEN configured, anyone else gets a plain 404 (the surface is off);
 * otherwise a browser is asked for HTTP Basic credentials.
 */
export function requireAdmin(adminToken: string | undefined): RequestHandler {
  return (req, res, next) => {
    const caller = (req as RequestWithCaller).caller;
    if (caller?.scopes.includes('admin')) return next();
    // Without ADMIN_TOKEN the admin surface is hidden from everyone but admin-scoped keys.
    if (!adminToken) return next(adminSurfaceOff(req));
    if (caller) return next(scopeDenied('admin'));
    res.setHeader('WWW-Authenticate', 'Basic realm="runyard admin", charset="UTF-8"');
    next(unauthorized('Admin credentials are required: an admin-scoped key, or ADMIN_TOKEN as Bearer token or Basic password.'));
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A browser that once logged in to the admin surface with HTTP Basic sends those credentials with
 * any request to it, a cross-site form's included. A state-changing admin request is refused when
 * the browser says it comes from another site (Sec-Fetch-Site, Origin), and a POST must be JSON: a
 * cross-site page cannot send that without a CORS preflight, which runyard never grants.
 */
export const refuseCrossSiteWrites: RequestHandler = (req, _res, next) => {
  if (SAFE_METHODS.has(req.method)) return next();
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  let foreignOrigin = false;
  if (origin !== undefined) {
    try {
      foreignOrigin = new URL(origin).host !== req.get('host');
    } catch {
      foreignOrigin = true;
    }
  }
  if ((site !== undefined && site !== 'same-origin' && site !== 'none') || foreignOrigin) {
    return next(
      new AppError(
        'cross_site_request',
        403,
        'A state-changing admin request came from another site.',
        'Use the admin surface from its own origin (Bull Board) or from a client outside the browser (curl, the CLI).',
      ),
    );
  }
  // A cross-site form can send neither a Bearer token nor x-api-key: only a request whose credential
  // a browser sends by itself (Basic) must prove it is not a form by being JSON. An on-call
  // `curl -X POST -H "authorization: Bearer …"` just works.
  const headerCredential = /^bearer\s/i.test(req.get('authorization') ?? '') || req.get('x-api-key') !== undefined;
  if (req.method === 'POST' && !headerCredential && !/^application\/json\s*(;|$)/i.test(req.get('content-type') ?? '')) {
    return next(
      new AppError(
        'unsupported_media_type',
        415,
        'A POST to the admin surface with Basic credentials must be JSON (Content-Type: application/json), even without a body.',
        'Send Content-Type: application/json, or authenticate with a Bearer token.',
      ),
    );
  }
  next();
};

/** A malformed run id names no run: 404 as for an unknown one. */
function runIdOf(req: Request): string {
  const params = runIdParamsSchema.safeParse(req.params);
  if (!params.success) throw new AppError('run_not_found', 404, 'The run was not found.', 'Check the id.');
  return params.data.runId;
}

/** The run timeline page (SPEC section 16) and its script, on the admin surface. */
const uplotDist = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
const UPLOT_FILES = { script: path.join(uplotDist, 'uPlot.iife.min.js'), style: path.join(uplotDist, 'uPlot.min.css') };

const usagePageQuerySchema = z.object({
  from: z.string().max(40).optional(),
  to: z.string().max(40).optional(),
  account: z.string().max(200).optional(),
});

export function timelinePageRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/assets/timeline.js', (_req, res) => {
    res.type('application/javascript').set('cache-control', 'no-cache').send(TIMELINE_SCRIPT);
  });
  router.get('/assets/usage.js', (_req, res) => {
    res.type('application/javascript').set('cache-control', 'no-cache').send(USAGE_SCRIPT);
  });
  // The chart library, from the package (same origin: the CSP allows no script from elsewhere).
  router.get('/assets/uplot.js', (_req, res) => res.type('application/javascript').sendFile(UPLOT_FILES.script));
  router.get('/assets/uplot.css', (_req, res) => res.type('text/css').sendFile(UPLOT_FILES.style));
  router.get('/usage', async (req, res) => {
    const query = usagePageQuerySchema.parse(req.query);
    // The form's `to` is a day, shown inclusive: the report runs to the end of it.
    const through = query.to && /^\d{4}-\d{2}-\d{2}$/.test(query.to) ? new Date(Date.parse(query.to) + 86_400_000).toISOString() : query.to || undefined;
    const { from, to } = reportPeriodOf({ from: query.from || undefined, to: through });
    const account = query.account ? await findAccount(deps.db, query.account) : null;
    const rows = await usageByDayAndModel(deps.db, account?.id ?? null, from, to);
    res
      .type('html')
      .set('cache-control', 'no-store')
      .send(renderUsagePage({ rows, from: from.toISOString(), to: to.toISOString(), account: account?.name ?? null }));
  });
  router.get('/runs/:runId', async (req, res) => {
    const page = renderTimelinePage(await runTimeline(deps, runIdOf(req)));
    res.type('html').set('cache-control', 'no-store').send(page);
  });
  return router;
}

export function bullBoardRouter(deps: ApiDeps): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: deps.queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: deps.config.BULL_BOARD_READ_ONLY })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'runyard' } },
  });
  return serverAdapter.getRouter() as Router;
}

export function adminApiRoutes(deps: ApiDeps): Router {
  const router = Router();
  const accountOf = (req: Request) => {
    const params = accountParamsSchema.safeParse({ account: req.params.account });
    if (!params.success) throw new AppError('account_not_found', 404, 'No such account.', 'Name the account (or give its id).');
    return findAccount(deps.db, params.data.account);
  };
  router.get('/runs', async (req, res) => {
    const query = operatorRunListQuerySchema.parse(req.query);
    res.json({
      runs: await listRunsForOperator(deps, { status: query.status, since: query.since ? pointInTime(query.since) : undefined, limit: query.limit }),
    });
  });
  router.post('/runs/replay', async (req, res) => {
    const body = replayBulkBodySchema.parse(req.body ?? {});
    const failed = {
      since: body.since ? pointInTime(body.since) : undefined,
      until: body.until ? pointInTime(body.until) : undefined,
      model: body.model,
      accountId: body.accountId,
      limit: body.limit,
    };
    res.json(await replayRuns(deps, { failed }, { dryRun: body.dryRun }));
  });
  router.post('/webhook-events/redeliver', async (req, res) => {
    const body = webhookRedeliverBodySchema.parse(req.body ?? {});
    const eventIds = await redeliverFailedWebhookEvents(deps.db, { since: body.since ? pointInTime(body.since) : undefined, limit: body.limit });
    res.status(202).json({ eventIds });
  });
  router.post('/webhook-events/:eventId/redeliver', async (req, res) => {
    const eventId = String(req.params.eventId);
    if (!z.uuid().safeParse(eventId).success) throw new AppError('webhook_event_not_found', 404, 'The webhook event was not found.', 'Check the id.');
    res.status(202).json(await redeliverWebhookEvent(deps.db, eventId));
  });
  router.get('/chats/:chatId', async (req, res) => {
    const params = chatIdParamsSchema.safeParse(req.params);
    if (!params.success) throw notFound('chat_not_found', 'The chat');
    // The admin surface sees every account's chats, whichever admin credential asked.
    const operator = { ...callerOf(req), accountId: null, runId: null };
    res.json({ ...(await getChat(deps, operator, params.data.chatId)), queue: (await listQueuedMessages(deps, operator, params.data.chatId)).queuedMessages });
  });
  router.get('/accounts/:account/usage', async (req, res) => {
    res.json(await accountUsage(deps.db, (await accountOf(req)).id));
  });
  router.put('/accounts/:account/limits', async (req, res) => {
    const body = accountLimitsBodySchema.parse(jsonBody(req));
    const account = await accountOf(req);
    await setAccountLimits(deps.db, account.id, { period: body.period, spendMicros: body.spendMicros ?? null, tokens: body.tokens ?? null });
    deps.logger.info('account limits set', { accountId: account.id, limits: body });
    res.json(await accountUsage(deps.db, account.id));
  });
  router.delete('/accounts/:account/limits', async (req, res) => {
    const account = await accountOf(req);
    await setAccountLimits(deps.db, account.id, null);
    deps.logger.info('account limits cleared', { accountId: account.id });
    res.json(await accountUsage(deps.db, account.id));
  });
  router.delete('/accounts/:account', async (req, res) => {
    res.status(202).json(await eraseAccount(deps, await accountOf(req)));
  });
  router.get('/accounts/:account/provider-keys', async (req, res) => {
    res.json({ providerKeys: await providerKeysOf(deps.db, (await accountOf(req)).id) });
  });
  router.put('/accounts/:account/provider-keys/:provider', async (req, res) => {
    const params = providerKeyParamsSchema.safeParse(req.params);
    if (!params.success) throw new AppError('validation_failed', 400, 'The provider is openai or anthropic.', 'Name one of them.');
    const body = providerKeyBodySchema.parse(jsonBody(req));
    const account = await accountOf(req);
    await setProviderKey(deps.db, account.id, params.data.provider, body.key, body.baseUrl ?? null, deps.config.RUNYARD_SECRET);
    deps.logger.info('account provider key set', { accountId: account.id, provider: params.data.provider });
    res.json({ providerKeys: await providerKeysOf(deps.db, account.id) });
  });
  router.delete('/accounts/:account/provider-keys/:provider', async (req, res) => {
    const account = await accountOf(req);
    if (!(await unsetProviderKey(deps.db, account.id, String(req.params.provider))))
      throw new AppError(
        'provider_key_not_found',
        404,
        'The account has no key of its own for that provider.',
        'List them: GET /api/admin/accounts/{account}/provider-keys.',
      );
    res.status(204).end();
  });
  router.get('/accounts/:account/secrets', async (req, res) => {
    res.json({ secrets: await accountSecretNames(deps.db, (await accountOf(req)).id) });
  });
  router.put('/accounts/:account/secrets/:name', async (req, res) => {
    const params = accountSecretParamsSchema.safeParse(req.params);
    if (!params.success) throw new AppError('validation_failed', 400, 'A secret name is 1 to 64 letters, digits, _ . or -.', 'Rename it.');
    const { value } = accountSecretBodySchema.parse(jsonBody(req));
    const account = await accountOf(req);
    await setAccountSecret(deps.db, account.id, params.data.name, value, deps.config.RUNYARD_SECRET);
    deps.logger.info('account secret set', { accountId: account.id, name: params.data.name });
    res.json({ secrets: await accountSecretNames(deps.db, account.id) });
  });
  router.delete('/accounts/:account/secrets/:name', async (req, res) => {
    const params = accountSecretParamsSchema.safeParse(req.params);
    const account = await accountOf(req);
    if (!params.success || !(await unsetAccountSecret(deps.db, account.id, params.data.name)))
      throw new AppError('secret_not_found', 404, 'The account has no such secret.', 'List them: GET /api/admin/accounts/{account}/secrets.');
    res.status(204).end();
  });
  router.get('/accounts/:account/settings', async (req, res) => {
    res.json(await updateAccountSettings(deps, await accountOf(req)));
  });
  router.patch('/accounts/:account/settings', async (req, res) => {
    const body = accountSettingsBodySchema.parse(jsonBody(req));
    res.json(await updateAccountSettings(deps, await accountOf(req), body));
  });
  router.get('/usage/report', async (req, res) => {
    const query = adminUsageReportQuerySchema.parse(req.query);
    const { from, to } = reportPeriodOf(query);
    sendReport(req, res, await usageReport(deps.db, null, query.groupBy, from, to));
  });
  const modelOf = (req: Request) => {
    const params = catalogueModelParamsSchema.safeParse(req.params);
    if (!params.success) throw new AppError('model_not_found', 404, 'No such model: name it as provider/model (openai/gpt-4o).', 'Check the id.');
    return `${params.data.provider}/${params.data.model}`;
  };
  router.get('/models', (_req, res) => {
    res.json({ models: catalogueViews(deps.config.DEFAULT_MODEL, contextWindows(deps.config)) });
  });
  router.put('/models/:provider/:model', async (req, res) => {
    const modelId = modelOf(req);
    const body = catalogueEntryBodySchema.parse(jsonBody(req));
    await setCatalogueEntry(deps.db, modelId, body);
    deps.logger.info('model catalogue entry set', { modelId, change: body });
    res.json(catalogueViews(deps.config.DEFAULT_MODEL, contextWindows(deps.config)).find((model) => model.id === modelId));
  });
  router.delete('/models/:provider/:model', async (req, res) => {
    const modelId = modelOf(req);
    if (!(await unsetCatalogueEntry(deps.db, modelId)))
      throw new AppError('model_not_found', 404, `The catalogue has no operator row for ${modelId}.`, 'List them: GET /api/admin/models.');
    res.status(204).end();
  });
  router.get('/runs/:runId/timeline', async (req, res) => {
    res.json(await runTimeline(deps, runIdOf(req)));
  });
  router.post('/runs/:runId/replay', async (req, res) => {
    res.status(202).json(await replayOne(deps, runIdOf(req)));
  });
  return router;
}
