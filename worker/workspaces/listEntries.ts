import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { insideName, resolveInWorkspace } from '../../shared/workspaces/workspacePaths.js';

export type WorkspaceEntry = { path: string; type: 'file' | 'directory' | 'symlink'; size: number };

/**
 * The entries under `named` in the workspace at `root` (a directory, recursively, or one file), in
 * name order, at most `max` — what the list_files tool answers and GET …/workspace/files lists.
 * Symlinks are listed as links, never followed.
 */
export async function listEntries(root: string, named: string, max: number): Promise<{ entries: WorkspaceEntry[]; truncated: boolean }> {
  const start = await resolveInWorkspace(root, named);
  const entries: WorkspaceEntry[] = [];
  let truncated = false;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entries.length >= max) {
        truncated = true;
        return;
      }
      const full = path.join(dir, entry.name);
      const type = entry.isSymbolicLink() ? 'symlink' : entry.isDirectory() ? 'directory' : 'file';
      entries.push({ path: insideName(root, full), type, size: type === 'file' ? (await lstat(full)).size : 0 });
      if (type === 'directory') await walk(full);
    }
  };
  const info = await lstat(start);
  if (info.isDirectory()) await walk(start);
  else entries.push({ path: insideName(root, start), type: 'file', size: info.size });
  return { entries, truncated };
}
