import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';

export class PathOutsideWorkspace extends Error {
  override name = 'PathOutsideWorkspace';
}

/**
 * A path as a tool or a caller names it, relative to /workspace and normalised ('.' for the root),
 * or null when it is outside the workspace: an absolute path elsewhere, or `..` that leaves it.
 * What it names on disk is resolveInWorkspace's to check (symlinks).
 */
export function workspaceRelative(named: string): string | null {
  const relative = named === '/workspace' ? '.' : named.startsWith('/workspace/') ? named.slice('/workspace/'.length) : named;
  if (path.posix.isAbsolute(relative)) return null;
  const normal = path.posix.normalize(relative);
  return normal === '..' || normal.startsWith('../') ? null : normal;
}

/**
 * A path a tool or a caller names, resolved inside the workspace at `root` (SPEC section 18):
 * relative to it, or absolute under /workspace. `..` that leaves it, an absolute path elsewhere, and
 * a symlink (anywhere on the way, the last component included) that points out of it are refused.
 * Returns the host path. `mustExist` false allows a last component that does not exist yet.
 */
export async function resolveInWorkspace(root: string, named: string, opts: { mustExist?: boolean } = {}): Promise<string> {
  if (named.includes('\u0000')) throw new PathOutsideWorkspace(`"${named}" contains a NUL character`);
  const normal = workspaceRelative(named);
  if (normal === null) throw new PathOutsideWorkspace(`"${named}" leaves the workspace (paths are relative to /workspace)`);
  const realRoot = await realpath(root);
  const target = path.join(realRoot, normal);
  // Every existing component, the last included, resolves inside the root.
  let existing = target;
  for (;;) {
    try {
      await lstat(existing);
      break;
    } catch {
      if (opts.mustExist !== false) throw new PathOutsideWorkspace(`"${named}" does not exist`);
      const parent = path.dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
  }
  const resolved = await realpath(existing);
  if (resolved !== realRoot && !resolved.startsWith(`${realRoot}${path.sep}`))
    throw new PathOutsideWorkspace(`"${named}" leads out of the workspace through a symlink`);
  return target;
}

/** The path as the sandbox sees it (/workspace/…), for results. */
export const insideName = (root: string, hostPath: string): string => {
  const relative = path.relative(root, hostPath);
  return relative ? `/workspace/${relative.split(path.sep).join('/')}` : '/workspace';
};
