import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { loadConfigOrExit } from '../shared/infra/config.js';
import { checkRedisOrExplain, migrateOrExplain, oldNodeWarning, UnreachableDependency } from './startupChecks.js';

/**
 * `npm start`, the quick start: migrate the database, then run the api and one worker as two
 * child processes (as they run in production), stopping both when either stops or on a signal.
 */
const config = loadConfigOrExit();
const nodeWarning = oldNodeWarning();
if (nodeWarning) console.warn(nodeWarning);
let result;
try {
  result = await migrateOrExplain(config.DATABASE_URL);
  await checkRedisOrExplain(config);
} catch (err) {
  if (!(err instanceof UnreachableDependency)) throw err;
  console.error(`runyard: ${err.message}`);
  process.exit(69); // EX_UNAVAILABLE
}
if (result.databaseCreated) console.log(`runyard: created database ${new URL(config.DATABASE_URL).pathname.slice(1)}`);
if (result.applied.length) console.log(`runyard: applied migrations ${result.applied.join(', ')}`);

const root = path.resolve(import.meta.dirname, '..');
const children: ChildProcess[] = ['api/main.ts', 'worker/main.ts'].map((entry) =>
  spawn(process.execPath, ['--import', 'tsx', path.join(root, entry)], { stdio: 'inherit', env: process.env }),
);

let stopping = false;
const stopAll = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill(signal);
};
for (const child of children) {
  child.on('exit', (code) => {
    if (!stopping) process.exitCode = code ?? 1;
    stopAll('SIGTERM');
  });
}
process.on('SIGINT', () => stopAll('SIGINT'));
process.on('SIGTERM', () => stopAll('SIGTERM'));
