import { createHash } from 'node:crypto';
import type { BlobStore } from '../../shared/blobs/blobStore.js';
import { workspaceRelative } from '../../shared/workspaces/workspacePaths.js';
import { AppError, notFound } from '../../shared/infra/errors.js';
import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import {
  dropReplaced,
  dropUnrecorded,
  manifestKey,
  readManifest,
  readVersionFile,
  type Manifest,
  type ManifestEntry,
} from '../../shared/workspaces/snapshots.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { recordWorkspaceVersion } from '../../shared/workspaces/workspaceRecords.js';
import { requireAccountCaller } from '../chats/readChats.js';

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

/** A path as a caller names it, as the manifest keeps it ('' for the root); null when it leaves the workspace. */
function manifestPath(named: string): string | null {
  const normal = workspaceRelative(named);
  return normal === null ? null : normal === '.' ? '' : normal.replace(/\/$/, '');
}

async function manifestOf(blobs: BlobStore, row: WorkspaceRow): Promise<Manifest> {
  if (!row.blob_key) return { entries: [] };
  try {
    return await readManifest(blobs, row.blob_key);
  } catch {
    throw new AppError('workspace_unavailable', 503, 'The workspace’s content is missing from the blob store.', 'Retry; if it persists, tell the operator.');
  }
}

/** GET /api/sessions/{sessionId}/workspace */
export async function getWorkspace(deps: ApiDeps, caller: Caller, sessionId: string): Promise<WorkspaceView> {
  return viewOf(await workspaceOf(deps, caller, sessionId));
}

/** GET /api/sessions/{sessionId}/workspace/files?path= : from the latest version's manifest (no content read). */
export async function listWorkspaceFiles(deps: ApiDeps, caller: Caller, sessionId: string, named = '.') {
  const row = await workspaceOf(deps, caller, sessionId);
  const manifest = await manifestOf(deps.blobs, row);
  const under = manifestPath(named);
  if (under === null) throw fileNotFound(named);
  const entries = manifest.entries
    .filter((entry) => under === '' || entry.path === under || entry.path.startsWith(`${under}/`))
    .map((entry) => ({ path: `/workspace/${entry.path}`, type: entry.type, size: entry.type === 'file' ? entry.size : 0 }));
  if (under !== '' && entries.length === 0) throw fileNotFound(named);
  return { version: row.version, entries, truncated: false };
}

/** GET /api/sessions/{sessionId}/workspace/files/content?path= : the file's bytes. */
export async function readWorkspaceFile(deps: ApiDeps, caller: Caller, sessionId: string, named: string): Promise<Buffer> {
  const row = await workspaceOf(deps, caller, sessionId);
  const blobs = deps.blobs;
  const relative = manifestPath(named);
  const content = relative ? await readVersionFile(blobs, sessionId, await manifestOf(blobs, row), relative) : null;
  if (!content) throw fileNotFound(named);
  return content;
}

/** The manifest with `relative` set to a file of `content` (its directories added), or null when a symlink or a file is in the way. */
function withFile(manifest: Manifest, relative: string, content: Buffer): { manifest: Manifest; sha256: string } | null {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const byPath = new Map(manifest.entries.map((entry) => [entry.path, entry]));
  const parts = relative.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const existing = byPath.get(dir);
    if (existing && existing.type !== 'directory') return null;
    if (!existing) byPath.set(dir, { path: dir, type: 'directory', mode: 0o755 });
  }
  const existing = byPath.get(relative);
  if (existing && existing.type !== 'file') return null;
  byPath.set(relative, { path: relative, type: 'file', mode: existing?.type === 'file' ? existing.mode : 0o644, size: content.length, sha256 });
  const entries: ManifestEntry[] = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { manifest: { entries }, sha256 };
}

/**
 * PUT /api/sessions/{sessionId}/workspace/files/content?path= : writes a file as a new version of
 * the workspace, under its row's lock; 409 session_busy while a run of the session is active (its
 * workspace changes only through that run until it ends).
 */
export async function writeWorkspaceFile(deps: ApiDeps, caller: Caller, sessionId: string, named: string, content: Buffer): Promise<WorkspaceView> {
  await workspaceOf(deps, caller, sessionId);
  const relative = manifestPath(named);
  if (!relative) throw new AppError('validation_failed', 400, `"${named}" is not a file path inside the workspace.`, 'Name a file relative to /workspace.');
  const blobs = deps.blobs;
  let written: { key: string; manifest: Manifest; previous: Manifest } | undefined;
  let replaced: { manifest: Manifest; key: string | null; current: Manifest } | undefined;
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
        const previous = await manifestOf(blobs, row);
        const changed = withFile(previous, relative, content);
        if (!changed)
          throw new AppError('validation_failed', 400, `"${named}" (or a directory on its way) is not a file in the workspace.`, 'Name another path.');
        const size = changed.manifest.entries.reduce((sum, entry) => sum + (entry.type === 'file' ? entry.size : 0), 0);
        if (size > deps.config.WORKSPACE_MAX_BYTES)
          throw new AppError(
            'payload_too_large',
            413,
            `The workspace would hold ${size} bytes, over WORKSPACE_MAX_BYTES.`,
            'Upload less, or delete files first.',
          );
        await blobs.put(`workspaces/${sessionId}/files/${changed.sha256}`, content);
        const version = row.version + 1;
        const key = manifestKey(sessionId, version);
        await blobs.put(key, Buffer.from(JSON.stringify(changed.manifest)));
        written = { key, manifest: changed.manifest, previous };
        await recordWorkspaceVersion(tx, { sessionId, version, blobKey: key, sizeBytes: size });
        replaced = { manifest: previous, key: row.blob_key, current: changed.manifest };
        return { ...viewOf(row), version, sizeBytes: size, lastUsedAt: new Date().toISOString() };
      },
      { timeout: 60_000 },
    );
    if (replaced) await dropReplaced(blobs, sessionId, replaced.manifest, replaced.key, replaced.current).catch(() => {});
    return view;
  } catch (err) {
    if (written) await dropUnrecorded(blobs, sessionId, written.key, written.manifest, written.previous).catch(() => {});
    throw err;
  }
}
