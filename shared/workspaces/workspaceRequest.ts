import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AppError } from '../infra/errors.js';
import type { Config } from '../infra/config.js';

/** The built-in tools a run with a workspace is offered (SPEC section 18); a caller's own tool may not take these names. */
export const WORKSPACE_TOOL_NAMES = ['exec', 'read_file', 'write_file', 'list_files'] as const;
export type WorkspaceToolName = (typeof WORKSPACE_TOOL_NAMES)[number];
export const isWorkspaceToolName = (name: string): name is WorkspaceToolName => (WORKSPACE_TOOL_NAMES as readonly string[]).includes(name);

/** A path inside the workspace as a caller names it: relative, no NUL, at most 1,024 characters. */
export const workspacePathSchema = z
  .string()
  .min(1)
  .max(1_024)
  .refine((value) => !value.includes('\u0000'), 'contains a NUL character');

const filesSchema = z
  .array(z.strictObject({ path: workspacePathSchema, content: z.string().max(1_000_000) }))
  .max(200)
  .describe('files written when the workspace is first created');

/** `workspace` on a run or message: true (the session's workspace, made empty if new), false (off for this chat), or how to make it. */
export const workspaceRequestSchema = z.union([
  z.boolean(),
  z.strictObject({
    files: filesSchema.optional(),
    repo: z
      .strictObject({
        url: z.string().url().max(2_000),
        ref: z
          .string()
          .min(1)
          .max(200)
          .regex(/^[\w./-]+$/, 'is not a branch, tag or commit')
          .optional(),
      })
      .optional(),
  }),
]);
export type WorkspaceRequest = z.infer<typeof workspaceRequestSchema>;
export type WorkspaceSpec = { files?: { path: string; content: string }[]; repo?: { url: string; ref?: string } };

/** Whether this machine runs workspaces: WORKSPACE_DRIVER, and for `auto` whether bubblewrap is installed. */
export function workspacesAvailable(config: Pick<Config, 'WORKSPACE_DRIVER'>): boolean {
  if (config.WORKSPACE_DRIVER === 'off') return false;
  if (config.WORKSPACE_DRIVER === 'bwrap') return true;
  return findExecutable('bwrap') !== null;
}

/** An executable on PATH, or null. */
export function findExecutable(name: string): string | null {
  // eslint-disable-next-line no-restricted-properties -- the system's search path for executables, not runyard's configuration
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir || '.', name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

export const workspacesUnavailable = () =>
  new AppError(
    'workspaces_unavailable',
    400,
    'Workspaces are off on this server: its workers have no sandbox to run them in.',
    'Install bubblewrap on the worker machines (Debian: apt-get install bubblewrap) and restart them, or set WORKSPACE_DRIVER=bwrap; or send the run without "workspace".',
  );

/** A path a file of the request names must stay inside the workspace. */
function checkSpecPath(filePath: string): void {
  const normal = path.posix.normalize(filePath.replace(/^\/workspace\//, ''));
  if (path.posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../') || normal === '.')
    throw new AppError(
      'validation_failed',
      400,
      `workspace.files: "${filePath}" is not a path inside the workspace.`,
      'Name files relative to the workspace (src/main.py).',
    );
}

/**
 * Checks a request's `workspace` (SPEC section 18) and says what to store: null when the request
 * does not mention it, false when it turns it off, else the spec of the workspace to make (if the
 * session has none yet). 400 when workspaces are off here, a repository is not on
 * WORKSPACE_GIT_ALLOWLIST, or a file's path leaves the workspace.
 */
export function checkWorkspaceRequest(request: WorkspaceRequest | undefined, config: Config): WorkspaceSpec | false | null {
  if (request === undefined) return null;
  if (request === false) return false;
  if (!workspacesAvailable(config)) throw workspacesUnavailable();
  if (request === true) return {};
  for (const file of request.files ?? []) checkSpecPath(file.path);
  if (request.repo && !config.WORKSPACE_GIT_ALLOWLIST.some((prefix) => request.repo!.url.startsWith(prefix))) {
    throw new AppError(
      'workspace_repo_not_allowed',
      400,
      `workspace.repo.url "${request.repo.url}" is not on this server's WORKSPACE_GIT_ALLOWLIST.`,
      'Use a repository under one of the allowed prefixes, or ask the operator to add it.',
    );
  }
  return { ...(request.files ? { files: request.files } : {}), ...(request.repo ? { repo: request.repo } : {}) };
}

export const toolNameReserved = (name: string) =>
  new AppError(
    'tool_name_reserved',
    400,
    `The tool name "${name}" is reserved for the workspace's built-in tools (${WORKSPACE_TOOL_NAMES.join(', ')}).`,
    'Rename your tool.',
  );
