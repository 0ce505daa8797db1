import type { RequestHandler } from 'express';
import { validationFailed } from '../../../shared/infra/errors.js';
import { findUnstorableText } from '../../../shared/infra/storableText.js';

/**
 * After the JSON parser: a body holding text Postgres cannot store (a NUL, an unpaired surrogate)
 * or a `__proto__` key (which a schema would silently drop) is refused with a 400 naming the field,
 * before anything is validated or stored.
 */
export const refuseUnstorableBody: RequestHandler = (req, _res, next) => {
  const found = req.body === undefined ? null : findUnstorableText(req.body);
  if (!found) return next();
  next(validationFailed(`${found.path} contains ${found.reason}, which cannot be stored.`));
};
