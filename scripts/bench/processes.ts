import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

export type Spawned = { child: ChildProcess; output: () => string; ready: Promise<void>; stop: () => Promise<void> };

/**
 * Starts `node --import tsx <entry>`; `ready` resolves when its output contains `readyText`, or
 * when `readyText` is a URL, once that URL answers 200.
 */
export function spawnTs(entry: string, args: string[], env: Record<string, string>, readyText: string, nodeArgs: string[] = []): Spawned {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(ROOT, entry), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(readyText)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${entry} exited (${code}) before it was ready:\n${output.slice(-2000)}`)));
    if (readyText.startsWith('http')) {
      const poll = setInterval(() => {
        fetch(readyText)
          .then((res) => {
            if (res.ok) {
              clearInterval(poll);
              resolve();
            }
          })
          .catch(() => {});
      }, 100);
      child.on('exit', () => clearInterval(poll));
    }
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, output: () => output, ready, stop };
}
