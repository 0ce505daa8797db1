import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';
import { ConfigError, configSchema, loadConfig } from '../../shared/infra/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('configuration', () => {
  it('gives the quick-start defaults when nothing is set', () => {
    const config = loadConfig({}, {});
    expect(config.DATABASE_URL).to.equal('postgresql://postgres@127.0.0.1:5432/runyard');
    expect(config.REDIS_URL).to.equal('redis://127.0.0.1:6379');
    expect(config.PORT).to.equal(3000);
    expect(config.DEFAULT_MODEL).to.equal('local/echo');
    expect(config.WORKER_CONCURRENCY).to.equal(16);
    expect(config.RUN_LOCK_MS).to.equal(30_000);
    expect(config.RUN_STALE_AFTER_MS).to.equal(60_000);
    expect(config.RUN_MAX_ATTEMPTS).to.equal(3);
    expect(config.EPHEMERAL_KEY_TTL_MS).to.equal(900_000);
    expect(config.QUEUE_PREFIX).to.equal('runyard');
    expect(config.usingDevelopmentSecret).to.equal(true);
    expect(Object.isFrozen(config)).to.equal(true);
  });

  it('names the variable when a value is invalid', () => {
    expect(() => loadConfig({}, { WORKER_CONCURRENCY: 'lots' })).to.throw(ConfigError, /WORKER_CONCURRENCY/);
    expect(() => loadConfig({}, { EPHEMERAL_KEY_TTL_MS: String(2 * 3600_000) })).to.throw(ConfigError, /EPHEMERAL_KEY_TTL_MS.*1 h/);
    expect(() => loadConfig({}, { REDIS_URL: 'not a url' })).to.throw(ConfigError, /REDIS_URL/);
  });

  it('requires RUNYARD_SECRET in production', () => {
    expect(() => loadConfig({}, { NODE_ENV: 'production' })).to.throw(ConfigError, /RUNYARD_SECRET is required/);
    expect(loadConfig({}, { NODE_ENV: 'production', RUNYARD_SECRET: 'a-long-enough-production-secret' }).usingDevelopmentSecret).to.equal(false);
  });

  it('treats empty provider keys as unset', () => {
    expect(loadConfig({}, { OPENAI_API_KEY: '  ' }).OPENAI_API_KEY).to.equal(undefined);
  });

  it('.env.example and docs/configuration.md name every variable, and .env.example as it ships gives exactly the defaults', () => {
    const variables = Object.keys((configSchema as unknown as { in: { shape: Record<string, unknown> } }).in.shape);
    expect(variables.length).to.be.above(40);
    const example = parse(readFileSync(path.join(ROOT, '.env.example')));
    const readme = readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8');
    expect(Object.keys(example).sort()).to.deep.equal([...variables].sort());
    const rows = readme.split('\n').filter((line) => line.startsWith('| `'));
    for (const variable of variables)
      expect(
        rows.some((row) => row.split('|')[1]!.includes(`\`${variable}\``)),
        `docs/configuration.md's table names ${variable}`,
      ).to.equal(true);
    const defined = (config: object) => JSON.parse(JSON.stringify(config)) as unknown; // an empty value is unset
    expect(defined(loadConfig({}, example))).to.deep.equal(defined(loadConfig({}, {})));
  });
});
