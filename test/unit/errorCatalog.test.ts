import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ERROR_CATALOG } from '../../api/http/errorCatalog.js';
import { TRANSITION_REFUSALS } from '../../shared/runs/lifecycle.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (name === 'generated' || name === 'node_modules') return [];
    if (statSync(full).isDirectory()) return sources(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

describe('the error catalogue', () => {
  it('lists every code the api can answer with, so every docUrl points somewhere', () => {
    const raised = new Set<string>();
    for (const file of [...sources(path.join(ROOT, 'api')), ...sources(path.join(ROOT, 'shared'))]) {
      const text = readFileSync(file, 'utf8');
      for (const [, code] of text.matchAll(/(?:AppError|notFound|conflict|badResults|urlNotAllowed)\(\s*'([a-z_]+)'/g)) raised.add(code!);
    }
    // A refused transition answers with its own code (shared/runs/lifecycle.ts).
    for (const { code } of Object.values(TRANSITION_REFUSALS)) raised.add(code);
    const catalogued = new Set(ERROR_CATALOG.map(([code]) => code));
    expect([...raised].filter((code) => !catalogued.has(code)).sort()).to.deep.equal([]);
    expect(raised.size, 'the scan found the codes').to.be.greaterThan(20);
  });
});
