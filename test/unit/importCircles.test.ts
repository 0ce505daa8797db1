import { expect } from 'chai';
import path from 'node:path';
import { parseCircular, parseDependencyTree } from 'dpdm';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * No import circles (issue 33), type-only imports included: a module and what it imports form a
 * tree, so each file can be read, tested and moved from the bottom up. Prisma's generated client is
 * left out (it is generated code, circular by design).
 */
describe('the import graph', function () {
  this.timeout(120_000);

  it('has no circle from the api, the worker or the CLI', async () => {
    const tree = await parseDependencyTree(['api/main.ts', 'worker/main.ts', 'scripts/cli.ts'], {
      context: ROOT,
      transform: false,
      skipDynamicImports: true,
      exclude: /node_modules|shared\/generated/,
      tsconfig: path.join(ROOT, 'tsconfig.json'),
    });
    expect(Object.keys(tree).length, 'the graph was read').to.be.above(100);
    expect(parseCircular(tree).map((circle) => circle.join(' -> '))).to.deep.equal([]);
  });
});
