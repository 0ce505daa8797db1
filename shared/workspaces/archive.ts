import { spawn } from 'node:child_process';

/** Runs tar with `input` on stdin; its stdout. */
function tar(args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`tar ${args[0]} failed (${code}): ${Buffer.concat(err).toString('utf8').slice(0, 500)}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * A workspace's whole content as one gzip'd tar archive (what the blob store keeps per version):
 * regular files, directories and symlinks as they are (a symlink is stored as a link, never followed).
 */
export const packWorkspace = (dir: string): Promise<Buffer> => tar(['-c', '--use-compress-program=gzip -1', '-C', dir, '--numeric-owner', '.']);

/** Unpacks an archive made by packWorkspace into an empty directory (owner and modes as the worker's). */
export async function unpackWorkspace(archive: Buffer, dir: string): Promise<void> {
  await tar(['-x', '-z', '-C', dir, '--no-same-owner', '--no-overwrite-dir'], archive);
}
