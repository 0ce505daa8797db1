import type { BlobStore } from '../blobs/blobStore.js';
import { readsOf } from '../agent/modelCatalogue.js';
import { parseModelId } from '../agent/models.js';
import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import { AppError, isForeignKeyViolation } from '../infra/errors.js';
import { fileNotFound, filesOf, storeFile, type StoredFile } from './fileStore.js';
import { kindOf } from './fileTypes.js';

/**
 * File parts of user messages (SPEC section 20), as the AI SDK writes them: `{ type: "file",
 * mediaType, url, filename? }` with `url` a `data:` URL (stored as a file when the message is
 * posted) or `runyard:file/<fileId>`. Stored, a part always names its file (`runyard:file/<id>`)
 * with the type its content was found to be; the api shows it with a readable url, a worker sends
 * its bytes to the provider.
 */
export const FILE_URL_SCHEME = 'runyard:file/';
export type FilePart = { type: 'file'; mediaType: string; url: string; filename?: string };

export const isFilePart = (part: unknown): part is FilePart =>
  typeof part === 'object' && part !== null && (part as { type?: unknown }).type === 'file' && typeof (part as { url?: unknown }).url === 'string';

/** The file a stored part names (null: not a runyard file url). */
export const fileIdOf = (part: FilePart): string | null => (part.url.startsWith(FILE_URL_SCHEME) ? part.url.slice(FILE_URL_SCHEME.length) : null);

/** Where a caller reads a file's bytes. */
export const fileContentPath = (fileId: string) => `/api/files/${fileId}/content`;

/** Stored parts as a caller sees them: a file part's url reads its bytes (`baseUrl`: PUBLIC_BASE_URL, else a path). */
export const shownParts = (parts: unknown[], baseUrl = ''): unknown[] =>
  parts.map((part) => {
    if (!isFilePart(part)) return part;
    const fileId = fileIdOf(part);
    return fileId ? { ...part, url: `${baseUrl.replace(/\/$/, '')}${fileContentPath(fileId)}` } : part;
  });

/** Each provider's own limits on what one part may be (Anthropic: images ≤ 5 MB and ≤ 8,000 px a side). */
const PROVIDER_LIMITS: Record<string, { imageBytes?: number; imagePixels?: number; pdfBytes?: number }> = {
  anthropic: { imageBytes: 5 * 1_048_576, imagePixels: 8_000, pdfBytes: 32 * 1_048_576 },
  openai: { imageBytes: 20 * 1_048_576 },
};

type Message = { role: string; parts: unknown[] };

/** `data:[<type>][;base64],<data>` → its bytes and type. */
function decodeDataUrl(url: string, where: string): { bytes: Buffer; mediaType: string | undefined } {
  const comma = url.indexOf(',');
  const header = comma > 5 ? url.slice(5, comma) : null;
  if (header === null) throw badPart(where, 'is not a well-formed data: URL');
  const params = header.split(';');
  const base64 = params.includes('base64');
  const data = url.slice(comma + 1);
  return {
    bytes: base64 ? Buffer.from(data, 'base64') : Buffer.from(decodeURIComponent(data)),
    mediaType: params[0] || undefined,
  };
}

const badPart = (where: string, what: string) =>
  new AppError(
    'validation_failed',
    400,
    `${where}: the file part's url ${what}.`,
    'Send a data: URL, or runyard:file/<fileId> for a file uploaded with POST /api/files.',
    {
      details: { part: where },
    },
  );

const cannotRead = (where: string, model: string, file: StoredFile) =>
  new AppError(
    'model_cannot_read_attachment',
    400,
    `${where}: the model "${model}" cannot read ${file.mediaType} attachments.`,
    'Pick a model that reads it (GET /api/models says what each reads), or send the content another way.',
    { details: { part: where } },
  );

const tooLargeFor = (where: string, provider: string, detail: string) =>
  new AppError(
    'attachment_too_large',
    400,
    `${where}: ${detail}, over ${provider}'s limit.`,
    'Send a smaller file (scale the image down), or use another model.',
    {
      details: { part: where },
    },
  );

/** Refuses, before any run exists, a file the model cannot read or its provider would refuse. */
function checkReadable(where: string, modelId: string, file: StoredFile): void {
  const kind = kindOf(file.mediaType);
  const reads = readsOf(modelId);
  if ((kind === 'image' && !reads.images) || (kind === 'pdf' && !reads.pdf)) throw cannotRead(where, modelId, file);
  const provider = parseModelId(modelId)?.provider ?? '';
  const limits = PROVIDER_LIMITS[provider];
  if (!limits) return;
  if (kind === 'image' && limits.imageBytes && file.sizeBytes > limits.imageBytes)
    throw tooLargeFor(where, provider, `the image is ${file.sizeBytes} bytes (at most ${limits.imageBytes})`);
  if (kind === 'image' && limits.imagePixels && Math.max(file.width ?? 0, file.height ?? 0) > limits.imagePixels)
    throw tooLargeFor(where, provider, `the image is ${file.width}×${file.height} px (at most ${limits.imagePixels} a side)`);
  if (kind === 'pdf' && limits.pdfBytes && file.sizeBytes > limits.pdfBytes)
    throw tooLargeFor(where, provider, `the PDF is ${file.sizeBytes} bytes (at most ${limits.pdfBytes})`);
}

/** A file a message uses, and where (for errors naming the part). */
export type UsedFile = { where: string; file: StoredFile };

/** Refuses, before any run exists, files `modelId` cannot read or its provider would refuse (400 naming the part). */
export function assertModelReads(modelId: string, used: UsedFile[]): void {
  for (const { where, file } of used) checkReadable(where, modelId, file);
}

/**
 * The messages with their file parts resolved: `data:` URLs stored as files of the account,
 * `runyard:file/<id>` checked to be the account's (another's or a deleted one is 404
 * `file_not_found`). Answers the messages as they are stored and the files they use (to check
 * with assertModelReads once the model is known, and to attach to the chat).
 */
export async function resolveAttachments<M extends Message>(
  deps: { db: Db; blobs: BlobStore; config: Pick<Config, 'FILE_MAX_BYTES' | 'FILE_QUOTA_MB'> },
  accountId: string,
  messages: M[],
  path: (messageIndex: number) => string,
): Promise<{ messages: M[]; used: UsedFile[]; fileIds: string[] }> {
  const wanted: { where: string; message: number; part: number; fileId: string }[] = [];
  const resolved = messages.map((message) => ({ ...message, parts: [...message.parts] }));
  for (const [m, message] of resolved.entries()) {
    for (const [p, part] of message.parts.entries()) {
      if (!isFilePart(part)) continue;
      const where = `${path(m)}.parts[${p}]`;
      let fileId = fileIdOf(part);
      if (part.url.startsWith('data:')) {
        const { bytes, mediaType } = decodeDataUrl(part.url, where);
        const stored = await storeFile(deps, accountId, [bytes], { mediaType: part.mediaType ?? mediaType, filename: part.filename });
        fileId = stored.id;
      }
      if (!fileId) throw badPart(where, 'is neither a data: URL nor runyard:file/<fileId>');
      wanted.push({ where, message: m, part: p, fileId });
    }
  }
  if (wanted.length === 0) return { messages, used: [], fileIds: [] };
  const files = await filesOf(
    deps.db,
    accountId,
    wanted.map((w) => w.fileId),
  );
  for (const { where, message, part, fileId } of wanted) {
    const file = files.get(fileId);
    if (!file) throw Object.assign(fileNotFound(), { message: `${where}: the file ${fileId} was not found.` });
    const given = resolved[message]!.parts[part] as FilePart;
    const filename = given.filename ?? file.filename ?? undefined;
    resolved[message]!.parts[part] = { type: 'file', mediaType: file.mediaType, url: `${FILE_URL_SCHEME}${file.id}`, ...(filename ? { filename } : {}) };
  }
  return {
    messages: resolved as M[],
    used: wanted.map(({ where, fileId }) => ({ where, file: files.get(fileId)! })),
    fileIds: [...new Set(wanted.map((w) => w.fileId))],
  };
}

type Tx = Pick<Db, '$executeRaw'>;

/** The chat uses the files: they live as long as it (or another chat using them) does. */
export async function attachFiles(tx: Tx, chatId: string, fileIds: string[]): Promise<void> {
  if (fileIds.length === 0) return;
  try {
    await tx.$executeRaw`
      INSERT INTO chat_files (chat_id, file_id) SELECT ${chatId}::uuid, unnest(${fileIds}::uuid[]) ON CONFLICT DO NOTHING`;
  } catch (err) {
    // Deleted between the check and now.
    if (isForeignKeyViolation(err, 'file_id')) throw fileNotFound();
    throw err;
  }
}
