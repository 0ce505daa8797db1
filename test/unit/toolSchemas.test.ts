import { expect } from 'chai';
import { isPlainSchema, PLAIN_SCHEMA_MAX_NODES, SCHEMA_BOUNDS, schemaOutOfBounds } from '../../shared/agent/toolSchemas/bounds.js';
import { SchemaChecker } from '../../shared/agent/toolSchemas/schemaChecker.js';

/** A schema `depth` JSON levels deep (each subschema under `properties` is two levels down). */
const nested = (depth: number) => {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let level = 1; level < depth; level += 2) schema = { type: 'object', properties: { a: schema } };
  return schema;
};

describe('tool input schemas: bounds and the schema thread', function () {
  this.timeout(30_000);
  let checker: SchemaChecker;
  before(() => (checker = new SchemaChecker(1_000)));
  after(() => checker.close());

  it('holds a schema to its bounds without recursion, whatever its depth', () => {
    expect(schemaOutOfBounds({ type: 'object', properties: { a: { enum: ['x', 'y'] } } })).to.equal(null);
    expect(schemaOutOfBounds(nested(SCHEMA_BOUNDS.maxDepth - 1))).to.equal(null);
    expect(schemaOutOfBounds(nested(SCHEMA_BOUNDS.maxDepth + 1))).to.match(/deeper than 64/);
    expect(schemaOutOfBounds(nested(200_000)), 'no stack overflow').to.match(/deeper than 64/);
    expect(schemaOutOfBounds({ enum: Array.from({ length: 1_001 }, (_, i) => i) })).to.match(/array of 1001 items/);
    const wide = { type: 'object', properties: Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`p${i}`, { type: 'string' }])) };
    expect(schemaOutOfBounds(wide)).to.match(/more than 2000 objects/);
    expect(schemaOutOfBounds({ description: 'x'.repeat(70_000) })).to.match(/70018 bytes/);
  });

  it('matches patterns with RE2: linear on input that makes a backtracking engine run for ages, and refuses what RE2 cannot run', async () => {
    const schema = { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } };
    expect(await checker.compile([schema])).to.equal(null);
    const started = Date.now();
    expect(await checker.mismatch(schema, { s: `${'a'.repeat(100_000)}!` })).to.match(/must match pattern/);
    expect(Date.now() - started, 'ms').to.be.below(5_000);
    expect(await checker.mismatch(schema, { s: 'aaa' })).to.equal(null);
    expect(await checker.mismatch({ patternProperties: { '^x(y+)+$': { type: 'number' } } }, { xyyy: 'no' }), 'each pattern its own').to.match(
      /must be number/,
    );
    expect(await checker.mismatch({ properties: { a: { pattern: '^a$' }, b: { pattern: '^b$' } } }, { a: 'a', b: 'a' })).to.match(/input\/b must match/);
    expect((await checker.compile([{ type: 'object' }, { properties: { s: { pattern: '(a)\\1' } } }]))!).to.deep.include({ index: 1 });
    expect((await checker.compile([{ properties: { s: { pattern: '(?<=a)b' } } }]))!.reason).to.match(/RE2 syntax/);
  });

  it('ends a compilation that runs past its time, refuses that request only, and serves the next on a new thread', async () => {
    const heavy = Array.from({ length: 64 }, (_, k) => ({ anyOf: Array.from({ length: 990 }, (_, i) => ({ const: `${k}-${i}` })) }));
    const [slow, next] = await Promise.all([checker.compile(heavy), checker.mismatch({ properties: { n: { type: 'number' } } }, { n: 'x' })]);
    expect(slow).to.deep.equal({ index: null, reason: 'checking it took longer than 1000 ms (simplify the schema)' });
    expect(next).to.match(/must be number/);
    expect(await checker.compile([{ type: 'object', properties: { q: { type: 'string' } } }])).to.equal(null);
  });

  it('keeps the event loop free while the thread works', async () => {
    const heavy = Array.from({ length: 64 }, (_, k) => ({ anyOf: Array.from({ length: 990 }, (_, i) => ({ const: `x${k}-${i}` })) }));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const startedAt = Date.now();
    await checker.compile(heavy);
    clearInterval(timer);
    // Blocked, the loop would tick once at most; free, about once per 10 ms (a wide margin for a loaded machine).
    expect(ticks, `ticks in ${Date.now() - startedAt} ms`).to.be.above(10);
  });

  it('tells plain schemas (checked in the process) from the rest (checked on the thread)', () => {
    expect(isPlainSchema({ type: 'object', properties: { n: { type: 'number', minimum: 0 }, s: { enum: ['a', 'b'] } }, required: ['n'] })).to.equal(true);
    for (const keyword of ['$ref', 'anyOf', 'oneOf', 'allOf', 'not', 'if', 'pattern', 'patternProperties', 'format', 'uniqueItems'])
      expect(isPlainSchema({ properties: { a: { [keyword]: true } } }), keyword).to.equal(false);
    const wide = (n: number) => ({ type: 'object', properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'string' }])) });
    expect(isPlainSchema(wide(PLAIN_SCHEMA_MAX_NODES - 2))).to.equal(true);
    expect(isPlainSchema(wide(PLAIN_SCHEMA_MAX_NODES))).to.equal(false);
  });

  it('checks an input against a plain schema at once, not behind the queue of the thread', async () => {
    const heavy = Array.from({ length: 64 }, (_, k) => ({ anyOf: Array.from({ length: 990 }, (_, i) => ({ const: `p${k}-${i}` })) }));
    let threadDone = false;
    const slow = checker.compile(heavy).then(() => (threadDone = true));
    const plain = { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] };
    expect(await checker.compile([plain])).to.equal(null);
    expect(await checker.mismatch(plain, {})).to.match(/must have required property 'n'/);
    expect(await checker.mismatch(plain, { n: 'x' })).to.equal('input/n must be number');
    expect(await checker.mismatch(plain, { n: 1 })).to.equal(null);
    const strict = { type: 'object', properties: { n: { type: 'number' } }, additionalProperties: false };
    const flood = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, i]));
    expect(await checker.mismatch(strict, flood), 'a flood of stray keys is named in part').to.match(/must NOT have additional properties.*\(and 4980 more\)$/);
    expect(threadDone, 'answered before the thread finished its work').to.equal(false);
    await slow;
  });
});
