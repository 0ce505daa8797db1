import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from '../blobs/blobStore.js';

/**
 * A workspace version as the blob store keeps it (SPEC section 18): a manifest of every entry, and
 * each file's content once, by its SHA-256 (`workspaces/<sessionId>/files/<sha256>`), so a version
 * that changed one file of a large workspace stores that file and a new manifest, nothing more.
 * Only the latest version is kept: once a newer one is recorded, contents no manifest of the session
 * refers to any more are deleted.
 */
export type ManifestEntry =
  | { path: string; type: 'file'; mode: number; size: number; sha256: string }
  | { path: string; type: 'directory'; mode: number }
  | { path: string; type: 'symlink'; target: string };

export type Manifest = { entries: ManifestEntry[] };

const filesPrefix = (sessionId: string) => `workspaces/${sessionId}/files/`;
const fileKey = (sessionId: string, sha256: string) => `${filesPrefix(sessionId)}${sha256}`;
export const manifestKey = (sessionId: string, version: number) => `workspaces/${sessionId}/manifests/v${version}-${randomUUID()}.json`;

/** A file's hash, remembered by what identifies its content without reading it (inode, size, change times). */
export type HashCache = Map<string, { stamp: string; sha256: string }>;

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every entry under `dir` (relative paths, sorted), each file hashed (from `cache` when it did not change). */
export async function scanTree(dir: string, cache: HashCache = new Map()): Promise<{ manifest: Manifest; sizeBytes: number }> {
  const entries: ManifestEntry[] = [];
  let sizeBytes = 0;
  const walk = async (at: string): Promise<void> => {
    for (const entry of (await readdir(at, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(at, entry.name);
      const relative = path.relative(dir, full).split(path.sep).join('/');
      const info = await lstat(full);
      if (info.isSymbolicLink()) entries.push({ path: relative, type: 'symlink', target: await readlink(full) });
      else if (info.isDirectory()) {
        entries.push({ path: relative, type: 'directory', mode: info.mode & 0o777 });
        await walk(full);
      } else if (info.isFile()) {
        const stamp = `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
        const cached = cache.get(relative);
        const sha256 = cached?.stamp === stamp ? cached.sha256 : await sha256Of(full);
        cache.set(relative, { stamp, sha256 });
        entries.push({ path: relative, type: 'file', mode: info.mode & 0o777, size: info.size, sha256 });
        sizeBytes += info.size;
      }
      // Sockets, FIFOs and devices are not kept.
    }
  };
  await walk(dir);
  return { manifest: { entries }, sizeBytes };
}

const shasOf = (manifest: Manifest | null) => new Set((manifest?.entries ?? []).flatMap((entry) => (entry.type === 'file' ? [entry.sha256] : [])));

/**
 * Stores the tree at `dir` as a new version after `previous` (null: the first): the contents
 * `previous` does not have, then the manifest. Returns its key; the caller records it.
 */
export async function storeVersion(
  blobs: BlobStore,
  sessionId: string,
  version: number,
  dir: string,
  scanned: { manifest: Manifest },
  previous: Manifest | null,
): Promise<{ key: string; newBytes: number }> {
  const known = shasOf(previous);
  let newBytes = 0;
  for (const entry of scanned.manifest.entries) {
    if (entry.type !== 'file' || known.has(entry.sha256)) continue;
    const content = await readFile(path.join(dir, entry.path));
    await blobs.put(fileKey(sessionId, entry.sha256), content);
    known.add(entry.sha256);
    newBytes += content.length;
  }
  const key = manifestKey(sessionId, version);
  const json = Buffer.from(JSON.stringify(scanned.manifest));
  await blobs.put(key, json);
  return { key, newBytes: newBytes + json.length };
}

/** After `current` was recorded in place of `previous` (its key `previousKey`): what only the old version used goes. */
export async function dropReplaced(
  blobs: BlobStore,
  sessionId: string,
  previous: Manifest | null,
  previousKey: string | null,
  current: Manifest,
): Promise<void> {
  const keep = shasOf(current);
  for (const sha of shasOf(previous)) if (!keep.has(sha)) await blobs.delete(fileKey(sessionId, sha));
  if (previousKey) await blobs.delete(previousKey);
}

/** Deletes what an unrecorded version stored that the recorded one does not use (a call whose result was not persisted). */
export async function dropUnrecorded(blobs: BlobStore, sessionId: string, key: string, unrecorded: Manifest, recorded: Manifest | null): Promise<void> {
  const keep = shasOf(recorded);
  for (const sha of shasOf(unrecorded)) if (!keep.has(sha)) await blobs.delete(fileKey(sessionId, sha));
  await blobs.delete(key);
}

export async function readManifest(blobs: BlobStore, key: string): Promise<Manifest> {
  const data = await blobs.get(key);
  if (!data) throw new Error(`the workspace version ${key} is missing from the blob store`);
  return JSON.parse(data.toString('utf8')) as Manifest;
}

/** A file's content of a version (null: no such file). */
export async function readVersionFile(blobs: BlobStore, sessionId: string, manifest: Manifest, relative: string): Promise<Buffer | null> {
  const entry = manifest.entries.find((candidate) => candidate.path === relative && candidate.type === 'file');
  if (!entry || entry.type !== 'file') return null;
  return blobs.get(fileKey(sessionId, entry.sha256));
}

/** Writes a version's tree into the empty directory `dir` (files, modes, directories, symlinks as links). */
export async function restoreVersion(blobs: BlobStore, sessionId: string, manifest: Manifest, dir: string): Promise<void> {
  for (const entry of manifest.entries) {
    const target = path.join(dir, entry.path);
    // A manifest is runyard's own, but a path that would leave the directory is never written.
    if (path.relative(dir, target).startsWith('..')) continue;
    if (entry.type === 'directory') await mkdir(target, { recursive: true, mode: entry.mode | 0o700 });
    else if (entry.type === 'symlink') await symlink(entry.target, target);
    else {
      const content = await blobs.get(fileKey(sessionId, entry.sha256));
      if (!content) throw new Error(`the content of ${entry.path} is missing from the blob store`);
      await writeFile(target, content);
      await chmod(target, entry.mode);
    }
  }
  for (const entry of manifest.entries) if (entry.type === 'directory') await chmod(path.join(dir, entry.path), entry.mode | 0o700);
}

/** The hashes of a tree just restored from `manifest`, from the manifest (no file is read again). */
export async function seedHashes(dir: string, manifest: Manifest, cache: HashCache): Promise<void> {
  for (const entry of manifest.entries) {
    if (entry.type !== 'file') continue;
    const info = await lstat(path.join(dir, entry.path));
    cache.set(entry.path, { stamp: `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`, sha256: entry.sha256 });
  }
}
