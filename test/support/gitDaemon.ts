import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export type GitDaemon = { url: (repo: string) => string; prefix: string; close: () => Promise<void> };

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/**
 * A real `git daemon` on the loopback serving one bare repository, `demo.git`, with `files` in one
 * commit on `main` (and a `v1` tag): what a workspace clones in the tests.
 */
export async function startGitDaemon(files: Record<string, string>): Promise<GitDaemon> {
  const base = mkdtempSync(path.join(os.tmpdir(), 'runyard-git-'));
  const work = path.join(base, 'work');
  const git = (args: string[], cwd = work) =>
    execFileSync('git', args, {
      cwd,
      env: { PATH: process.env.PATH, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
    });
  execFileSync('git', ['init', '--quiet', '--initial-branch=main', work]);
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(work, name), content);
  git(['add', '.']);
  git(['commit', '--quiet', '-m', 'the demo repository']);
  git(['tag', 'v1']);
  execFileSync('git', ['clone', '--quiet', '--bare', work, path.join(base, 'demo.git')]);
  const port = await freePort();
  const daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // Ready once it answers: an ls-remote of the repository.
  const prefix = `git://127.0.0.1:${port}/`;
  for (let tries = 0; ; tries++) {
    try {
      execFileSync('git', ['ls-remote', `${prefix}demo.git`], { stdio: 'ignore', timeout: 2_000 });
      break;
    } catch (err) {
      if (tries > 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    prefix,
    url: (repo) => `${prefix}${repo}`,
    close: async () => {
      daemon.kill();
      rmSync(base, { recursive: true, force: true });
    },
  };
}
