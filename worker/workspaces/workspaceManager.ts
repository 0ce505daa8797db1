import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BlobStore } from '../../shared/blobs/blobStore.js';
import type { Config } from '../../shared/infra/config.js';
import type { Db } from '../../shared/infra/db.js';
import { RunError } from '../../shared/infra/errors.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { Sql } from '../../shared/infra/sql.js';
import { dropPendingWorkspace, markWorkspaceMade, RECORD_WORKSPACE_RESULT } from '../../shared/workspaces/workspaceRecords.js';
import {
  dropReplaced,
  dropUnrecorded,
  readManifest,
  restoreVersion,
  scanTree,
  storeVersion,
  seedHashes,
  type HashCache,
  type Manifest,
} from '../../shared/workspaces/snapshots.js';
import { resolveInWorkspace } from '../../shared/workspaces/workspacePaths.js';
import type { WorkspaceSpec } from '../../shared/workspaces/workspaceRequest.js';
import type { SandboxDriver } from './sandbox.js';

/** A run's workspace as its attempt's claim reads it (BEGIN_ATTEMPTS). */
export type RunWorkspace = { sessionId: string; status: string; version: number; blobKey: string | null; spec: WorkspaceSpec };

/**
 * The workspace an attempt works in: its directory on this worker, the version it holds (its
 * manifest and key in the blob store), its files' hashes, and its AGENTS.md.
 */
export type OpenWorkspace = {
  sessionId: string;
  dir: string;
  version: number;
  blobKey: string | null;
  manifest: Manifest | null;
  hashes: HashCache;
  agentsMd: string | null;
};

const AGENTS_MD_MAX_BYTES = 65_536;
const CLONE_TIMEOUT_MS = 120_000;

export class WorkspaceUnavailable extends RunError {
  constructor(reason: string) {
    super('workspace_unavailable', `the workspace could not be made: ${reason}`, false);
  }
}

const gitClone = (url: string, ref: string | undefined, dir: string) =>
  new Promise<void>((resolve, reject) => {
    const args = ['clone', '--quiet', '--depth', '1', ...(ref ? ['--branch', ref] : []), '--', url, dir];
    execFile(
      'git',
      args,
      // Nothing of the worker's environment but the search path: git must not see runyard's secrets.
      // eslint-disable-next-line no-restricted-properties -- the system's search path for executables, not runyard's configuration
      { timeout: CLONE_TIMEOUT_MS, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_TERMINAL_PROMPT: '0' } },
      (err, _stdout, stderr) => (err ? reject(new Error(`git clone of ${url} failed: ${(stderr || err.message).trim().split('\n').at(-1)}`)) : resolve()),
    );
  });

/**
 * Workspaces on one worker (SPEC section 18): makes a session's workspace the first time (files
 * written, repository cloned from WORKSPACE_GIT_ALLOWLIST), materialises its latest persisted
 * version from the blob store when this worker's copy is not it, persists each call's changes with
 * its result, and frees copies idle for WORKSPACE_IDLE_MS. A copy a call changed without its result
 * being persisted (a failed attempt) is thrown away and materialised again. Copies live under WORKSPACE_DIR/<worker>; a worker's start
 * removes what dead workers on the same machine left there.
 */
export class WorkspaceManager {
  private readonly root: string;
  private readonly lastUsed = new Map<string, number>();
  /**
   * The copies this worker holds: the persisted version each one is (its manifest, its files'
   * hashes), and whether a call changed it without that being persisted (`dirty`: a failed attempt's
   * leftovers, thrown away and materialised again by the next open).
   */
  private readonly known = new Map<string, { version: number; blobKey: string | null; manifest: Manifest | null; hashes: HashCache; dirty: boolean }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: { db: Db; sql: Sql; blobs: BlobStore; config: Config; logger: Logger },
    readonly driver: SandboxDriver,
    workerId: string,
  ) {
    const base = deps.config.WORKSPACE_DIR ?? path.join(os.tmpdir(), 'runyard-workspaces');
    // One directory per worker process (several may share a machine, or a test process).
    this.root = path.join(base, `${workerId.replace(/[^\w.-]/g, '_')}-${randomUUID().slice(0, 8)}`);
    this.removeDeadWorkersCopies(base);
    rmSync(this.root, { recursive: true, force: true });
    this.timer = setInterval(() => void this.evictIdle(), Math.min(60_000, deps.config.WORKSPACE_IDLE_MS)).unref();
  }

  /** The attempt's workspace, made or materialised; WorkspaceUnavailable (not retried) when it cannot be made. */
  async open(workspace: RunWorkspace, accountId: string): Promise<OpenWorkspace> {
    const dir = path.join(this.root, workspace.sessionId);
    this.lastUsed.set(workspace.sessionId, Date.now());
    if (workspace.status === 'pending') await this.create(workspace, accountId, dir);
    else {
      const held = this.known.get(workspace.sessionId);
      if (!held || held.dirty || held.version !== workspace.version) await this.materialise(workspace.sessionId, workspace.version, workspace.blobKey, dir);
    }
    const known = this.known.get(workspace.sessionId)!;
    const agentsMd = await readFile(path.join(dir, 'AGENTS.md'))
      .then((data) => data.subarray(0, AGENTS_MD_MAX_BYTES).toString('utf8'))
      .catch(() => null);
    return { sessionId: workspace.sessionId, dir, version: known.version, blobKey: known.blobKey, manifest: known.manifest, hashes: known.hashes, agentsMd };
  }

  /** A mutating call is about to run: the copy no longer matches a persisted version until its result is. */
  markDirty(open: OpenWorkspace): void {
    const held = this.known.get(open.sessionId);
    if (held) held.dirty = true;
  }

  /**
   * Persists a call's result with the workspace's new content (one statement); false when the
   * attempt no longer owns the run. Over WORKSPACE_MAX_BYTES, the call's changes are undone and its
   * result says so (`overQuota`), persisted without a new version.
   */
  async persistCall(
    open: OpenWorkspace,
    call: { runId: string; attempt: number; step: number; toolCallId: string; timing: unknown },
    outcome: unknown,
    recordPlain: (outcome: unknown) => Promise<boolean>,
  ): Promise<{ recorded: boolean; outcome: unknown; bytes: number }> {
    // Files are hashed only when their inode, size or change times moved (open.hashes).
    const scanned = await scanTree(open.dir, open.hashes);
    if (open.manifest && sameTree(scanned.manifest, open.manifest)) {
      // Nothing changed (`exec true`, a build that only reads): the result alone, no new version.
      const recorded = await recordPlain(outcome);
      if (recorded) this.known.set(open.sessionId, { ...this.held(open), dirty: false });
      return { recorded, outcome, bytes: 0 };
    }
    if (scanned.sizeBytes > this.deps.config.WORKSPACE_MAX_BYTES) {
      const error = `The workspace grew to ${scanned.sizeBytes} bytes, over WORKSPACE_MAX_BYTES (${this.deps.config.WORKSPACE_MAX_BYTES}): this call's changes were undone.`;
      await this.materialise(open.sessionId, open.version, open.blobKey, open.dir);
      open.hashes = this.known.get(open.sessionId)!.hashes;
      const overQuota = { error };
      return { recorded: await recordPlain(overQuota), outcome: overQuota, bytes: 0 };
    }
    const version = open.version + 1;
    const stored = await storeVersion(this.deps.blobs, open.sessionId, version, open.dir, scanned, open.manifest);
    const rows = await this.deps.sql.rows(RECORD_WORKSPACE_RESULT, [
      call.runId,
      call.attempt,
      call.step,
      call.toolCallId,
      JSON.stringify(outcome),
      JSON.stringify(call.timing),
      open.sessionId,
      version,
      stored.key,
      scanned.sizeBytes,
      open.version,
    ]);
    if (rows.length !== 1) {
      await dropUnrecorded(this.deps.blobs, open.sessionId, stored.key, scanned.manifest, open.manifest).catch(() => {});
      return { recorded: false, outcome, bytes: 0 };
    }
    const previous = { manifest: open.manifest, key: open.blobKey };
    open.version = version;
    open.blobKey = stored.key;
    open.manifest = scanned.manifest;
    this.known.set(open.sessionId, { version, blobKey: stored.key, manifest: scanned.manifest, hashes: open.hashes, dirty: false });
    // Awaited: a later version may bring back a content this deletes, and must find it stored.
    await dropReplaced(this.deps.blobs, open.sessionId, previous.manifest, previous.key, scanned.manifest).catch((err: Error) =>
      this.deps.logger.warn('could not delete an old workspace version', { error: err.message }),
    );
    return { recorded: true, outcome, bytes: stored.newBytes };
  }

  /** The run is done with its workspace here: kept for WORKSPACE_IDLE_MS for the session's next run. */
  release(sessionId: string): void {
    this.lastUsed.set(sessionId, Date.now());
  }

  /** Frees every copy (the worker stops). */
  close(): void {
    clearInterval(this.timer);
    rmSync(this.root, { recursive: true, force: true });
  }

  private async create(workspace: RunWorkspace, accountId: string, dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
    let stored: { key: string } | undefined;
    let manifest: Manifest | undefined;
    try {
      await mkdir(path.dirname(dir), { recursive: true });
      const { repo, files } = workspace.spec;
      if (repo) await gitClone(repo.url, repo.ref, dir);
      else await mkdir(dir);
      for (const file of files ?? []) {
        const target = await resolveInWorkspace(dir, file.path, { mustExist: false });
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, file.content);
      }
      const hashes: HashCache = new Map();
      const scanned = await scanTree(dir, hashes);
      manifest = scanned.manifest;
      if (scanned.sizeBytes > this.deps.config.WORKSPACE_MAX_BYTES)
        throw new Error(`it holds ${scanned.sizeBytes} bytes, over WORKSPACE_MAX_BYTES (${this.deps.config.WORKSPACE_MAX_BYTES})`);
      stored = await storeVersion(this.deps.blobs, workspace.sessionId, 1, dir, scanned, null);
      const made = await markWorkspaceMade(this.deps.db, { sessionId: workspace.sessionId, accountId, blobKey: stored.key, sizeBytes: scanned.sizeBytes });
      if (!made) throw new Error('it was removed while it was being made');
      this.known.set(workspace.sessionId, { version: 1, blobKey: stored.key, manifest: scanned.manifest, hashes, dirty: false });
      this.deps.logger.info('workspace created', {
        sessionId: workspace.sessionId,
        sizeBytes: scanned.sizeBytes,
        repo: repo?.url ?? null,
        files: files?.length ?? 0,
      });
    } catch (err) {
      // Compensation: nothing made for it stays — no copy, no stored content, no record.
      await rm(dir, { recursive: true, force: true });
      if (stored && manifest) await dropUnrecorded(this.deps.blobs, workspace.sessionId, stored.key, manifest, null).catch(() => {});
      await dropPendingWorkspace(this.deps.db, workspace.sessionId).catch(() => {});
      throw new WorkspaceUnavailable((err as Error).message);
    }
  }

  private async materialise(sessionId: string, version: number, blobKey: string | null, dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    let manifest: Manifest | null = null;
    if (blobKey) {
      try {
        manifest = await readManifest(this.deps.blobs, blobKey);
        await restoreVersion(this.deps.blobs, sessionId, manifest, dir);
      } catch (err) {
        throw new RunError('workspace_unavailable', `the workspace (version ${version}) could not be materialised: ${(err as Error).message}`, true);
      }
    }
    const hashes: HashCache = new Map();
    // The restored files' hashes are the manifest's: no file is read again while it stays unchanged.
    if (manifest) await seedHashes(dir, manifest, hashes);
    this.known.set(sessionId, { version, blobKey, manifest, hashes, dirty: false });
  }

  private held(open: OpenWorkspace) {
    return { version: open.version, blobKey: open.blobKey, manifest: open.manifest, hashes: open.hashes };
  }

  private async evictIdle(now = Date.now()): Promise<void> {
    for (const [sessionId, at] of this.lastUsed) {
      if (now - at < this.deps.config.WORKSPACE_IDLE_MS) continue;
      this.lastUsed.delete(sessionId);
      this.known.delete(sessionId);
      await rm(path.join(this.root, sessionId), { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Copies left by workers of this machine that are gone (their directory names end in their pid). */
  private removeDeadWorkersCopies(base: string): void {
    let entries: string[];
    try {
      entries = readdirSync(base);
    } catch {
      return;
    }
    const host = os.hostname().replace(/[^\w.-]/g, '_');
    for (const name of entries) {
      const match = /^(.+)_(\d+)-[0-9a-f]{8}$/.exec(name);
      if (!match || match[1] !== host) continue;
      const pid = Number(match[2]);
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) {
        try {
          if (lstatSync(path.join(base, name)).isDirectory()) rmSync(path.join(base, name), { recursive: true, force: true });
        } catch {
          // Gone meanwhile.
        }
      }
    }
  }
}

/** Whether two manifests are the same tree: paths, types, modes, sizes, contents and link targets. */
const sameTree = (a: Manifest, b: Manifest): boolean => JSON.stringify(a.entries) === JSON.stringify(b.entries);
