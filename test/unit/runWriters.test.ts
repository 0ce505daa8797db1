import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TRANSITIONS } from '../../shared/runs/lifecycle.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TRANSITIONS_DIR = 'shared/runs/transitions';

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir)).flatMap((name) => {
    const relative = path.join(dir, name);
    if (name === 'generated' || name === 'node_modules') return [];
    if (statSync(path.join(ROOT, relative)).isDirectory()) return sourceFiles(relative);
    return /\.(ts|sql)$/.test(name) && !name.endsWith('.d.ts') ? [relative] : [];
  });
}

/**
 * One writer of run state (issue 23): the runs domain alone changes a run's row. Every transition of
 * the lifecycle module has its own file, which takes both its `from` and its `to` statuses from the
 * module; no file outside shared/runs/ writes `UPDATE runs` (the migrations' triggers aside).
 */
describe('one writer of run state (shared/runs/)', () => {
  it('has one file per transition, each taking its from and to statuses from TRANSITIONS', () => {
    const files = readdirSync(path.join(ROOT, TRANSITIONS_DIR)).map((name) => name.replace(/\.ts$/, ''));
    expect(files.sort()).to.deep.equal(Object.keys(TRANSITIONS).sort());
    for (const name of files) {
      const text = readFileSync(path.join(ROOT, TRANSITIONS_DIR, `${name}.ts`), 'utf8');
      expect(text, `${name}.ts names its from statuses`).to.include(`TRANSITIONS.${name}.from`);
      expect(text, `${name}.ts names its to statuses`).to.match(new RegExp(`TRANSITIONS\\.${name}\\.to\\b`));
      expect(text, `${name}.ts changes a run`).to.match(/UPDATE runs/);
    }
  });

  it('has no UPDATE of runs outside shared/runs/ in the api, the worker, shared code or the scripts', () => {
    const writers = ['api', 'worker', 'shared', 'scripts', 'clients']
      .flatMap((dir) => sourceFiles(dir))
      .filter((file) => !file.startsWith('shared/runs/'))
      .filter((file) => /UPDATE\s+runs\b|\.run\.(update|updateMany|upsert)\(/i.test(readFileSync(path.join(ROOT, file), 'utf8')));
    expect(writers).to.deep.equal([]);
  });
});

/**
 * One home per table (issue 33): the statements that write a table, and every statement on the
 * chat queue, live in that table's domain. The bench's seeding of synthetic history is the one
 * exception (it writes years of rows in bulk, outside any use case).
 */
const HOMES: { what: string; pattern: RegExp; homes: string[] }[] = [
  { what: 'creates runs', pattern: /INSERT\s+INTO\s+runs\b|\.run\.(create|createMany)\(/i, homes: ['shared/runs/'] },
  {
    what: 'writes chats',
    pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+chats\b|\.chat\.(create|update|updateMany|upsert|delete|deleteMany)\(/i,
    homes: ['shared/chats/'],
  },
  { what: 'touches queued messages', pattern: /(INTO|UPDATE|FROM|JOIN)\s+queued_messages\b|\.queuedMessage\./i, homes: ['shared/chats/'] },
  {
    what: 'touches title jobs',
    pattern: /(INTO|UPDATE|FROM|JOIN)\s+chat_title_jobs\b/i,
    // A chat's first answer asks for its title in the statement that finishes the run.
    homes: ['shared/chats/', 'shared/runs/transitions/finish.ts'],
  },
  {
    what: 'writes run steps',
    pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+run_steps\b/i,
    homes: ['shared/runs/', 'shared/workspaces/workspaceRecords.ts'],
  },
  { what: 'writes messages and compactions', pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(messages|chat_compactions)\b/i, homes: ['shared/runs/'] },
  { what: 'writes workspaces', pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+workspaces\b/i, homes: ['shared/workspaces/'] },
  {
    what: 'writes keys',
    pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+api_keys\b|\.apiKey\.(create|createMany|update|updateMany|upsert|delete|deleteMany)\(/i,
    // A run's key is revoked by the transitions that end or park it, in their own statement.
    homes: ['shared/accounts/', 'shared/runs/'],
  },
  { what: 'writes chat events and their watches', pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+chat_event_(outbox|watchers)\b/i, homes: ['shared/chats/'] },
  { what: 'writes spend reservations', pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+spend_reservations\b/i, homes: ['shared/accounts/'] },
  { what: 'writes webhook events', pattern: /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+webhook_(events|deliveries)\b/i, homes: ['shared/webhooks/'] },
];

describe('one home per table', () => {
  const files = ['api', 'worker', 'shared', 'scripts', 'clients'].flatMap((dir) => sourceFiles(dir)).filter((file) => !file.startsWith('scripts/bench/'));
  for (const { what, pattern, homes } of HOMES) {
    it(`${what} only in ${homes.join(' and ')}`, () => {
      const writers = files.filter((file) => pattern.test(readFileSync(path.join(ROOT, file), 'utf8')));
      expect(writers.filter((file) => !homes.some((home) => file.startsWith(home)))).to.deep.equal([]);
      expect(writers, 'the pattern finds the home’s own statements').to.not.be.empty;
    });
  }

  it('has no table written by the api or the worker themselves: their use cases call the homes', () => {
    const writes =
      /\$executeRaw(Unsafe)?\s*[`(]|\b(INSERT\s+INTO|DELETE\s+FROM)\s+\w+|\bUPDATE\s+\w+\s+(\w+\s+)?SET\b|\.\s*(create|createMany|update|updateMany|upsert|delete|deleteMany)\(\{/;
    const writers = ['api', 'worker'].flatMap((dir) => sourceFiles(dir)).filter((file) => writes.test(readFileSync(path.join(ROOT, file), 'utf8')));
    expect(writers).to.deep.equal([]);
    const homes = sourceFiles('shared').filter((file) => writes.test(readFileSync(path.join(ROOT, file), 'utf8')));
    expect(homes.length, 'the pattern finds the homes’ writes').to.be.above(10);
  });
});
