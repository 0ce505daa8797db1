import { Router, type Request, type Response } from 'express';
import { reportCsv, usageReport, type UsageReport } from '../../shared/accounts/usageReports.js';
import { usageReportQuerySchema } from '../usage/schemas.js';
import { AppError } from '../../shared/infra/errors.js';
import { accountUsage } from '../../shared/accounts/usageLimits.js';
import type { ApiDeps } from '../deps.js';
import { callerOf } from '../http/http.js';
import { requireScope } from '../http/middleware/authenticate.js';

/** GET /api/usage (SPEC section 14): the caller's account's consumption this period, its limits and when they reset. */
export function usageRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/', requireScope('runs:read'), async (req, res) => {
    const caller = callerOf(req);
    // A run key or stream token reads its own run only; the admin token has no account.
    if (!caller.accountId || caller.runId)
      throw new AppError(
        'scope_denied',
        403,
        'Usage is shown to an account key.',
        'Call with an account key (keys create); operators use /api/admin/accounts/{account}/usage.',
      );
    res.json(await accountUsage(deps.db, caller.accountId));
  });
  router.get('/report', requireScope('runs:read'), async (req, res) => {
    const caller = callerOf(req);
    if (!caller.accountId || caller.runId)
      throw new AppError('scope_denied', 403, 'Usage reports are shown to an account key.', 'Call with an account key; operators use /api/admin/usage/report.');
    const query = usageReportQuerySchema.parse(req.query);
    const { from, to } = reportPeriodOf(query);
    sendReport(req, res, await usageReport(deps.db, caller.accountId, query.groupBy, from, to));
  });
  return router;
}

/** A report's period: `from` (default: the start of this UTC month) to `to` (exclusive; default: now); 400 when it is backwards. */
export function reportPeriodOf(query: { from?: string; to?: string }): { from: Date; to: Date } {
  const now = new Date();
  const from = query.from ? new Date(query.from) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = query.to ? new Date(query.to) : new Date(now.getTime() + 1);
  if (!(from < to)) throw new AppError('validation_failed', 400, '`from` must be before `to`.', 'Swap them, or leave one out.');
  return { from, to };
}

/** JSON, or CSV with a header when the caller asks for text/csv. */
export function sendReport(req: Request, res: Response, report: UsageReport): void {
  if (req.accepts(['application/json', 'text/csv']) === 'text/csv') {
    res.type('text/csv').send(reportCsv(report));
    return;
  }
  res.json(report);
}
