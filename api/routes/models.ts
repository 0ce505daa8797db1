import { Router } from 'express';
import { catalogueViews } from '../../shared/agent/modelCatalogue.js';
import { contextWindows } from '../../shared/agent/contextWindows.js';
import type { ApiDeps } from '../deps.js';
import { requireScope } from '../http/middleware/authenticate.js';

/** GET /api/models (SPEC section 21): the catalogue as any account key sees it — id, window, prices, what it reads, enabled, default. */
export function modelRoutes(deps: ApiDeps): Router {
  const router = Router();
  const windows = contextWindows(deps.config);
  router.get('/', requireScope('runs:read'), (_req, res) => {
    res.json({ models: catalogueViews(deps.config.DEFAULT_MODEL, windows) });
  });
  return router;
}
