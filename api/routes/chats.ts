import { Router } from 'express';
import { notFound } from '../../shared/errors.js';
import type { ApiDeps } from '../deps.js';
import { callerOf } from '../http.js';
import { listMessages } from '../listMessages.js';
import { requireScope } from '../middleware/authenticate.js';
import { chatIdParamsSchema, messageListQuerySchema } from '../schemas.js';

export function chatRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/:chatId/messages', requireScope('runs:read'), async (req, res) => {
    const params = chatIdParamsSchema.safeParse(req.params);
    if (!params.success) throw notFound('chat_not_found', 'The chat');
    res.json(await listMessages(deps, callerOf(req), params.data.chatId, messageListQuerySchema.parse(req.query)));
  });
  return router;
}
