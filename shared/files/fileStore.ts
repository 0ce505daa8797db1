import { isUuid } from '../infra/ids.js';
import { createHash, randomUUID } from 'node:crypto';
import type { BlobStore } from '../blobs/blobStore.js';
import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import { AppError, notFound } from '../infra/errors.js';
import { checkedType, imageDimensions, kindOf, textChecker, type AcceptedType } from './fileTypes.js';

/**
 * Uploaded files (SPEC section 20). A file's bytes are kept in the blob store in chunks of
 * FILE_CHUNK_BYTES under `files/<fileId>/`, written as they arrive: an upload is checked (type,
 * size, the account's quota) chunk by chunk and never held whole, and a worker reads a file the
 * same way. The `files` row is written last, so a file exists only once all of it is stored.
 */
export const FILE_CHUNK_BYTES = 1_048_576;
const MIB = 1_048_576;
/** How long an upload attached to no chat is kept. */
export const ORPHAN_FILE_TTL_MS = 86_400_000;

export const fileBlobPrefix = (fileId: string) => `files/${fileId}/`;
const chunkKey = (fileId: string, index: number) => `${fileBlobPrefix(fileId)}${String(index).padStart(6, '0')}`;

export type StoredFile = {
  id: string;
  accountId: string;
  mediaType: AcceptedType;
  filename: string | null;
  sizeBytes: number;
  sha256: string;
  chunks: number;
  width: number | null;
  height: number | null;
  createdAt: Date;
};

export type FileView = {
  fileId: string;
  mediaType: string;
  filename: string | null;
  sizeBytes: number;
  sha256: string;
  width: number | null;
  height: number | null;
  createdAt: string;
};

export const fileView = (file: StoredFile): FileView => ({
  fileId: file.id,
  mediaType: file.mediaType,
  filename: file.filename,
  sizeBytes: file.sizeBytes,
  sha256: file.sha256,
  width: file.width,
  height: file.height,
  createdAt: file.createdAt.toISOString(),
});

type FileRow = {
  id: string;
  account_id: string;
  media_type: string;
  filename: string | null;
  size_bytes: bigint;
  sha256: string;
  chunks: number;
  width: number | null;
  height: number | null;
  created_at: Date;
};

const fromRow = (row: FileRow): StoredFile => ({
  id: row.id,
  accountId: row.account_id,
  mediaType: row.media_type as AcceptedType,
  filename: row.filename,
  sizeBytes: Number(row.size_bytes),
  sha256: row.sha256,
  chunks: row.chunks,
  width: row.width,
  height: row.height,
  createdAt: row.created_at,
});

export const fileNotFound = () => notFound('file_not_found', 'The file');

/** Files of the account by id (a malformed id names none); others' and unknown ones are left out. */
export async function filesOf(db: Db, accountId: string, fileIds: string[]): Promise<Map<string, StoredFile>> {
  const ids = fileIds.filter(isUuid);
  if (ids.length === 0) return new Map();
  const rows = await db.$queryRaw<FileRow[]>`
    SELECT id::text, account_id::text, media_type, filename, size_bytes, sha256, chunks, width, height, created_at
    FROM files WHERE id = ANY(${ids}::uuid[]) AND account_id = ${accountId}::uuid`;
  return new Map(rows.map((row) => [row.id, fromRow(row)]));
}

export async function getFile(db: Db, accountId: string, fileId: string): Promise<StoredFile> {
  const file = (await filesOf(db, accountId, [fileId])).get(fileId);
  if (!file) throw fileNotFound();
  return file;
}

/** A file's bytes, chunk by chunk (a chunk missing from the store ends it with an error, never with short content). */
export async function* fileChunks(blobs: BlobStore, file: Pick<StoredFile, 'id' | 'chunks'>): AsyncGenerator<Buffer> {
  for (let index = 0; index < file.chunks; index++) {
    const chunk = await blobs.get(chunkKey(file.id, index));
    if (!chunk) throw new Error(`file ${file.id} is missing its chunk ${index} in the blob store`);
    yield chunk;
  }
}

export const fileTooLarge = (max: number) =>
  new AppError('file_too_large', 413, `The file is larger than ${max} bytes.`, 'Send a smaller file (FILE_MAX_BYTES is the most one file may hold).');

const quotaExceeded = (quotaBytes: number) =>
  new AppError(
    'file_quota_exceeded',
    413,
    `The account's files would hold more than its quota of ${Math.floor(quotaBytes / MIB)} MiB.`,
    'Delete files you no longer need (DELETE /api/files/{fileId}), or ask the operator for a larger quota (accounts settings --file-quota-mb).',
  );

/** A name as the caller gave it, kept to its last path segment, printable, ≤ 255 characters. */
export function cleanFilename(name: string | undefined): string | null {
  const base = name
    ?.split(/[\\/]/)
    .pop()
    ?.replace(/\p{Cc}/gu, '')
    .trim();
  return base ? base.slice(0, 255) : null;
}

async function quotaOf(db: Db, accountId: string, config: Pick<Config, 'FILE_QUOTA_MB'>): Promise<{ quota: number; used: number }> {
  const [row] = await db.$queryRaw<{ quota_mb: number | null; used: bigint | null }[]>`
    SELECT a.file_quota_mb AS quota_mb, (SELECT sum(size_bytes) FROM files WHERE account_id = a.id) AS used FROM accounts a WHERE a.id = ${accountId}::uuid`;
  return { quota: (row?.quota_mb ?? config.FILE_QUOTA_MB) * MIB, used: Number(row?.used ?? 0n) };
}

/**
 * Stores an upload as it arrives: its type checked on its first bytes (text as it streams), its
 * size against FILE_MAX_BYTES and the account's quota with each chunk, its SHA-256 computed on the
 * way. Whatever fails (the checks, the client going away, the store) removes what was written.
 */
export async function storeFile(
  deps: { db: Db; blobs: BlobStore; config: Pick<Config, 'FILE_MAX_BYTES' | 'FILE_QUOTA_MB'> },
  accountId: string,
  source: AsyncIterable<Buffer | string> | Iterable<Buffer>,
  declared: { mediaType?: string; filename?: string },
): Promise<StoredFile> {
  const { db, blobs, config } = deps;
  const id = randomUUID();
  const { quota, used } = await quotaOf(db, accountId, config);
  const hash = createHash('sha256');
  let mediaType: AcceptedType | undefined;
  let text: ReturnType<typeof textChecker> | undefined;
  let dimensions = null as { width: number; height: number } | null;
  let size = 0;
  let chunks = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const writeChunk = async (chunk: Buffer) => {
    if (!mediaType) {
      mediaType = checkedType(declared.mediaType, chunk);
      if (kindOf(mediaType) === 'text') text = textChecker(mediaType);
      if (kindOf(mediaType) === 'image') dimensions = imageDimensions(chunk);
    }
    text?.push(chunk);
    await blobs.put(chunkKey(id, chunks), chunk);
    chunks++;
  };
  try {
    for await (const piece of source) {
      const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
      size += bytes.length;
      if (size > config.FILE_MAX_BYTES) throw fileTooLarge(config.FILE_MAX_BYTES);
      if (used + size > quota) throw quotaExceeded(quota);
      hash.update(bytes);
      pending.push(bytes);
      pendingBytes += bytes.length;
      while (pendingBytes >= FILE_CHUNK_BYTES) {
        const all = Buffer.concat(pending, pendingBytes);
        await writeChunk(all.subarray(0, FILE_CHUNK_BYTES));
        const rest = all.subarray(FILE_CHUNK_BYTES);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
      }
    }
    if (size === 0) throw new AppError('file_empty', 400, 'The file is empty.', 'Send the file’s bytes as the request body (or as a multipart file field).');
    if (pendingBytes > 0) await writeChunk(Buffer.concat(pending, pendingBytes));
    text?.end();
    const file: StoredFile = {
      id,
      accountId,
      mediaType: mediaType!,
      filename: cleanFilename(declared.filename),
      sizeBytes: size,
      sha256: hash.digest('hex'),
      chunks,
      width: dimensions?.width ?? null,
      height: dimensions?.height ?? null,
      createdAt: new Date(),
    };
    await db.$transaction(async (tx) => {
      // Concurrent uploads of one account are checked against the quota one at a time.
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('runyard:files:' || ${accountId}))`;
      const [row] = await tx.$queryRaw<{ used: bigint | null }[]>`SELECT sum(size_bytes) AS used FROM files WHERE account_id = ${accountId}::uuid`;
      if (Number(row?.used ?? 0n) + size > quota) throw quotaExceeded(quota);
      await tx.$executeRaw`
        INSERT INTO files (id, account_id, media_type, filename, size_bytes, sha256, chunks, width, height, created_at)
        VALUES (${id}::uuid, ${accountId}::uuid, ${file.mediaType}, ${file.filename}, ${size}, ${file.sha256}, ${chunks}, ${file.width}, ${file.height}, ${file.createdAt})`;
    });
    return file;
  } catch (err) {
    await blobs.deletePrefix(fileBlobPrefix(id)).catch(() => {});
    throw err;
  }
}

/** DELETE /api/files/{fileId}: the file and its bytes; a message that named it shows it as gone. */
export async function deleteFile(deps: { db: Db; blobs: BlobStore }, accountId: string, fileId: string): Promise<void> {
  const file = await getFile(deps.db, accountId, fileId);
  await deps.db.$executeRaw`DELETE FROM files WHERE id = ${file.id}::uuid`;
  await deps.blobs.deletePrefix(fileBlobPrefix(file.id));
}

/**
 * Uploads attached to no chat a day after they arrived, and chunks of uploads that never finished
 * (a crash mid-upload): deleted with their bytes. `now` is the clock (a test moves it).
 */
export async function expireOrphanFiles(deps: { db: Db; blobs: BlobStore }, now = new Date()): Promise<number> {
  const before = new Date(now.getTime() - ORPHAN_FILE_TTL_MS);
  const gone = await deps.db.$queryRaw<{ id: string }[]>`
    DELETE FROM files f WHERE f.created_at < ${before} AND NOT EXISTS (SELECT 1 FROM chat_files cf WHERE cf.file_id = f.id)
    RETURNING id::text`;
  for (const { id } of gone) await deps.blobs.deletePrefix(fileBlobPrefix(id));
  // Chunks with no row: an upload cut short by a crash (the row is written last). In the Postgres
  // store; an S3 bucket's lifecycle rule on the files/ prefix is the way there (docs/operations.md).
  if (!deps.blobs.external)
    await deps.db.$executeRaw`
    DELETE FROM blobs b WHERE b.key LIKE 'files/%' AND b.created_at < ${before}
      AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id::text = split_part(b.key, '/', 2))`;
  return gone.length;
}
