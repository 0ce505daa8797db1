import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { withLogContext } from '../../../shared/infra/context.js';
import type { RequestWithCaller } from '../http.js';

const ACCEPTABLE_ID = /^[\w.:-]{1,128}$/;

/** Takes the caller's x-request-id (or makes one), echoes it, and puts it in every log line. */
export const requestContext: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  const requestId = given && ACCEPTABLE_ID.test(given) ? given : randomUUID();
  (req as RequestWithCaller).requestId = requestId;
  res.setHeader('x-request-id', requestId);
  withLogContext({ requestId }, next);
};
