import busboy from 'busboy';
import type { Request } from 'express';
import type { Caller } from '../http/http.js';
import type { ApiDeps } from '../deps.js';
import { validationFailed } from '../../shared/infra/errors.js';
import { fileNotFound, fileTooLarge, filesOf, storeFile, type StoredFile } from '../../shared/files/fileStore.js';

/** Fields besides the file a multipart upload may carry (they are ignored), and their size. */
const MULTIPART_LIMITS = { files: 1, fields: 20, fieldSize: 1_024, parts: 32 };

/**
 * POST /api/files (SPEC section 20): the body is the file (its Content-Type, `?filename=`), or a
 * multipart/form-data form whose one file field is. Streamed into the blob store as it arrives
 * (shared/files/fileStore.ts): the api never holds a file whole.
 */
export async function receiveUpload(deps: ApiDeps, caller: Caller, req: Request): Promise<StoredFile> {
  const declaredLength = Number(req.headers['content-length']);
  if (Number.isFinite(declaredLength) && declaredLength > deps.config.FILE_MAX_BYTES + 64 * 1_024) throw fileTooLarge(deps.config.FILE_MAX_BYTES);
  const contentType = req.headers['content-type'] ?? '';
  const store = (source: AsyncIterable<Buffer>, declared: { mediaType?: string; filename?: string }) => storeFile(deps, caller.accountId!, source, declared);
  if (!/^multipart\/form-data/i.test(contentType)) {
    const filename = typeof req.query.filename === 'string' ? req.query.filename : undefined;
    return store(req, { mediaType: contentType || undefined, filename });
  }
  return new Promise<StoredFile>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { ...MULTIPART_LIMITS, fileSize: deps.config.FILE_MAX_BYTES + 1 } });
    } catch (err) {
      return reject(validationFailed(`The multipart body cannot be read: ${(err as Error).message}.`));
    }
    let upload: Promise<StoredFile> | undefined;
    const fail = (err: unknown) => {
      req.unpipe(parser);
      req.resume();
      reject(err);
    };
    parser.on('file', (_field, stream, info) => {
      upload = store(stream, { mediaType: info.mimeType, filename: info.filename });
      // A refused file stops the form: the rest of the body is read and dropped.
      upload.catch((err) => {
        stream.resume();
        fail(err);
      });
    });
    parser.on('error', (err: Error) => fail(validationFailed(`The multipart body cannot be read: ${err.message}.`)));
    parser.on('close', () => {
      if (!upload) return reject(validationFailed('The form has no file field: send the file as a multipart file field, or as the raw body.'));
      upload.then(resolve, reject);
    });
    req.pipe(parser);
  });
}

/**
 * A file the caller may read: its account's, or, for a run key or a stream token, one that its
 * run's chat uses (so a page showing a run's messages can show their images with its token).
 */
export async function readableFile(deps: ApiDeps, caller: Caller, fileId: string): Promise<StoredFile> {
  const file = (await filesOf(deps.db, caller.accountId!, [fileId])).get(fileId);
  if (!file) throw fileNotFound();
  if (caller.runId) {
    const [used] = await deps.db.$queryRaw<{ ok: number }[]>`
      SELECT 1 AS ok FROM chat_files cf JOIN runs r ON r.chat_id = cf.chat_id WHERE r.id = ${caller.runId}::uuid AND cf.file_id = ${fileId}::uuid`;
    if (!used) throw fileNotFound();
  }
  return file;
}
