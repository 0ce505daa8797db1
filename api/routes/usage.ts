import { Router } from 'express';
import { AppError } from '../../shared/infra/errors.js';
import { accountUsage } from '../../shared/accounts/usageLimits.js';
import type { ApiDeps } from '../deps.js';
import { callerOf } from '../http.js';
import { requireScope } from '../middleware/authenticate.js';

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
  return router;
}
