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
