import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile, lstat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createBlobStore } from '../shared/blobs/blobStore.js';
import { AppError, notFound } from '../shared/infra/errors.js';
import { ACTIVE_STATUSES } from '../shared/runs/lifecycle.js';
import { packWorkspace, unpackWorkspace } from '../shared/workspaces/archive.js';
import { listEntries } from '../shared/workspaces/workspaceFiles.js';
import { PathOutsideWorkspace, resolveInWorkspace } from '../shared/workspaces/workspacePaths.js';
import type { ApiDeps } from './deps.js';
import type { Caller } from './http.js';
import { requireAccountCaller } from './chats/readChats.js';

const LIST_MAX_ENTRIES = 5_000;

export type WorkspaceView = { sessionId: string; status: string; sizeBytes: number; version: number; lastUsedAt: string | null };

type WorkspaceRow = { session_id: string; status: string; size_bytes: bigint; version: number; blob_key: string | null; last_used_at: Date | null };

const workspaceNotFound = () => notFound('workspace_not_found', 'The workspace');
const fileNotFound = (named: string) =>
  new AppError('workspace_file_not_found', 404, `"${named}" is not a file of the workspace.`, 'List the files with GET …/workspace/files.');

async function workspaceOf(deps: ApiDeps, caller: Caller, sessionId: string): Promise<WorkspaceRow> {
  requireAccountCaller(caller);
  const [row] = await deps.db.$queryRaw<WorkspaceRow[]>`
    SELECT session_id::text, status, size_bytes, version, blob_key, last_used_at FROM workspaces
    WHERE session_id = ${sessionId}::uuid AND account_id = ${caller.accountId}::uuid`;
  if (!row) throw workspaceNotFound();
  return row;
}

const viewOf = (row: WorkspaceRow): WorkspaceView => ({
  sessionId: row.session_id,
  status: row.status,
  sizeBytes: Number(row.size_bytes),
  version: row.version,
  lastUsedAt: row.last_used_at?.toISOString() ?? null,
});

/** The workspace's latest persisted version, unpacked into a temporary directory for `work`, removed after. */
async function withCopy<T>(deps: ApiDeps, row: WorkspaceRow, work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runyard-api-workspace-'));
  try {
    if (row.blob_key) {
      const archive = await createBlobStore(deps.config, deps.db).get(row.blob_key);
      if (!archive)
        throw new AppError(
          'workspace_unavailable',
          503,
          'The workspace’s content is missing from the blob store.',
          'Retry; if it persists, tell the operator.',
        );
      await unpackWorkspace(archive, dir);
    }
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const inWorkspace = async (dir: string, named: string, opts: { mustExist?: boolean } = {}) => {
  try {
    return await resolveInWorkspace(dir, named, opts);
  } catch (err) {
    if (err instanceof PathOutsideWorkspace) throw fileNotFound(named);
    throw err;
  }
};

/** GET /api/sessions/{sessionId}/workspace */
export async function getWorkspace(deps: ApiDeps, caller: Caller, sessionId: string): Promise<WorkspaceView> {
  return viewOf(await workspaceOf(deps, caller, sessionId));
}

/** GET /api/sessions/{sessionId}/workspace/files?path= */
export async function listWorkspaceFiles(deps: ApiDeps, caller: Caller, sessionId: string, named = '.') {
  const row = await workspaceOf(deps, caller, sessionId);
  return withCopy(deps, row, async (dir) => ({
    version: row.version,
    ...(await listEntries(dir, await inWorkspace(dir, named).then(() => named), LIST_MAX_ENTRIES)),
  }));
}

/** GET /api/sessions/{sessionId}/workspace/files/content?path= : the file's bytes. */
export async function readWorkspaceFile(deps: ApiDeps, caller: Caller, sessionId: string, named: string): Promise<Buffer> {
  const row = await workspaceOf(deps, caller, sessionId);
  return withCopy(deps, row, async (dir) => {
    const file = await inWorkspace(dir, named);
    if (!(await lstat(file)).isFile()) throw fileNotFound(named);
    return readFile(file);
  });
}

/**
 * PUT /api/sessions/{sessionId}/workspace/files/content?path= : writes a file as a new version of
 * the workspace, under its row's lock; 409 session_busy while a run of the session is active (its
 * workspace changes only through that run until it ends).
 */
export async function writeWorkspaceFile(deps: ApiDeps, caller: Caller, sessionId: string, named: string, content: Buffer): Promise<WorkspaceView> {
  await workspaceOf(deps, caller, sessionId);
  const blobs = createBlobStore(deps.config, deps.db);
  let newKey: string | undefined;
  let oldKey: string | null = null;
  try {
    const view = await deps.db.$transaction(
      async (tx) => {
        const [row] = await tx.$queryRaw<WorkspaceRow[]>`
          SELECT session_id::text, status, size_bytes, version, blob_key, last_used_at FROM workspaces
          WHERE session_id = ${sessionId}::uuid AND account_id = ${caller.accountId}::uuid FOR UPDATE`;
        if (!row) throw workspaceNotFound();
        const [busy] = await tx.$queryRaw<{ id: string }[]>`
          SELECT r.id::text FROM chats c JOIN runs r ON r.chat_id = c.id
          WHERE c.session_id = ${sessionId}::uuid AND r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]) LIMIT 1`;
        if (busy || row.status !== 'ready')
          throw new AppError(
            'session_busy',
            409,
            'A run of the session is active (or its workspace is being made).',
            'Wait for the run to end, then upload again.',
            {
              details: busy ? { activeRunId: busy.id } : {},
            },
          );
        const { archive, size } = await withCopy(deps, row, async (dir) => {
          const file = await inWorkspace(dir, named, { mustExist: false });
          if ((await lstat(file).catch(() => null))?.isDirectory()) throw new AppError('validation_failed', 400, `"${named}" is a directory.`, 'Name a file.');
          await mkdir(path.dirname(file), { recursive: true });
          await writeFile(file, content);
          const packed = await packWorkspace(dir);
          const total = await sizeOfTree(dir);
          if (total > deps.config.WORKSPACE_MAX_BYTES)
            throw new AppError(
              'payload_too_large',
              413,
              `The workspace would hold ${total} bytes, over WORKSPACE_MAX_BYTES.`,
              'Upload less, or delete files first.',
            );
          return { archive: packed, size: total };
        });
        const version = row.version + 1;
        newKey = `workspaces/${sessionId}/v${version}-${randomUUID()}.tgz`;
        await blobs.put(newKey, archive);
        await tx.$executeRaw`
          UPDATE workspaces SET version = ${version}, blob_key = ${newKey}, size_bytes = ${size}, last_used_at = now() WHERE session_id = ${sessionId}::uuid`;
        oldKey = row.blob_key;
        return { ...viewOf(row), version, sizeBytes: size, lastUsedAt: new Date().toISOString() };
      },
      { timeout: 60_000 },
    );
    if (oldKey) await blobs.delete(oldKey).catch(() => {});
    return view;
  } catch (err) {
    if (newKey) await blobs.delete(newKey).catch(() => {});
    throw err;
  }
}

async function sizeOfTree(dir: string): Promise<number> {
  const { entries } = await listEntries(dir, '.', Number.MAX_SAFE_INTEGER);
  return entries.reduce((sum, entry) => sum + entry.size, 0);
}
