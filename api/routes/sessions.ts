import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { notFound } from '../../shared/infra/errors.js';
import { workspacePathSchema } from '../../shared/workspaces/workspaceRequest.js';
import type { ApiDeps } from '../deps.js';
import { callerOf } from '../http/http.js';
import { requireScope } from '../http/middleware/authenticate.js';
import { getWorkspace, listWorkspaceFiles, readWorkspaceFile, writeWorkspaceFile } from '../sessions/sessionWorkspaces.js';

/** The most a workspace file upload may carry (PUT …/workspace/files/content). */
const UPLOAD_LIMIT = '10mb';

const pathQuery = z.object({ path: workspacePathSchema });
const optionalPathQuery = z.object({ path: workspacePathSchema.optional() });

/** A malformed session id names no session: 404 as for an unknown one. */
function sessionIdOf(req: Request): string {
  const parsed = z.uuid().safeParse(req.params.sessionId);
  if (!parsed.success) throw notFound('workspace_not_found', 'The workspace');
  return parsed.data;
}

/** A session's workspace (SPEC section 18): its state, its files, a download and an upload. */
export function sessionRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/:sessionId/workspace', requireScope('runs:read'), async (req, res) => {
    res.json(await getWorkspace(deps, callerOf(req), sessionIdOf(req)));
  });
  router.get('/:sessionId/workspace/files', requireScope('runs:read'), async (req, res) => {
    const { path } = optionalPathQuery.parse(req.query);
    res.json(await listWorkspaceFiles(deps, callerOf(req), sessionIdOf(req), path));
  });
  router.get('/:sessionId/workspace/files/content', requireScope('runs:read'), async (req, res) => {
    const { path } = pathQuery.parse(req.query);
    const content = await readWorkspaceFile(deps, callerOf(req), sessionIdOf(req), path);
    res.type('application/octet-stream').set('content-disposition', 'attachment').send(content);
  });
  router.put('/:sessionId/workspace/files/content', requireScope('runs:write'), express.raw({ type: () => true, limit: UPLOAD_LIMIT }), async (req, res) => {
    const { path } = pathQuery.parse(req.query);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    res.json(await writeWorkspaceFile(deps, callerOf(req), sessionIdOf(req), path, body));
  });
  return router;
}
