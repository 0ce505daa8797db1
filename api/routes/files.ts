import { isUuid } from '../../shared/infra/ids.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router, type Request } from 'express';
import { deleteFile, fileChunks, fileNotFound, fileView } from '../../shared/files/fileStore.js';
import type { ApiDeps } from '../deps.js';
import { readableFile, receiveUpload } from '../files/fileUploads.js';
import { callerOf } from '../http/http.js';
import { requireScope } from '../http/middleware/authenticate.js';

/** A malformed file id names no file: 404 as for an unknown one. */
function fileIdOf(req: Request): string {
  const id = req.params.fileId;
  if (typeof id !== 'string' || !isUuid(id)) throw fileNotFound();
  return id.toLowerCase();
}

/** Uploaded files (SPEC section 20): upload, metadata, content, delete. */
export function fileRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.post('/', requireScope('runs:write'), async (req, res) => {
    const file = await receiveUpload(deps, callerOf(req), req);
    deps.metrics.filesUploaded.inc();
    res.status(201).json(fileView(file));
  });
  router.get('/:fileId', requireScope('runs:read'), async (req, res) => {
    res.json(fileView(await readableFile(deps, callerOf(req), fileIdOf(req))));
  });
  router.get('/:fileId/content', requireScope('runs:read'), async (req, res) => {
    const file = await readableFile(deps, callerOf(req), fileIdOf(req));
    res.set({
      'content-type': file.mediaType.startsWith('text/') ? `${file.mediaType}; charset=utf-8` : file.mediaType,
      'content-length': String(file.sizeBytes),
      // Shown inline only as what it was checked to be; a browser never sniffs it into something else.
      'content-disposition': `inline; filename*=UTF-8''${encodeURIComponent(file.filename ?? file.id)}`,
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'cache-control': 'private, max-age=3600',
    });
    await pipeline(Readable.from(fileChunks(deps.blobs, file)), res);
  });
  router.delete('/:fileId', requireScope('runs:write'), async (req, res) => {
    await deleteFile(deps, callerOf(req).accountId!, fileIdOf(req));
    res.status(204).end();
  });
  return router;
}
