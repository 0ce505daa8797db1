import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../shared/infra/config.js';

/**
 * The tests' own database, dropped and migrated at every run: TEST_DATABASE_URL, else `runyard_test`
 * on the server DATABASE_URL names (never DATABASE_URL's own database).
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? testDatabaseOn(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/runyard');

function testDatabaseOn(serverUrl: string): string {
  const url = new URL(serverUrl);
  url.pathname = '/runyard_test';
  return url.toString();
}
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Tags this test run's Redis keys, so two runs on one machine (a developer's and CI's) never clean up each other's. */
export const TEST_RUN_TAG = `rytest-${process.pid}`;

/** A queue prefix of its own, so a test's jobs never reach another test's workers. */
export const uniquePrefix = () => `${TEST_RUN_TAG}-${randomBytes(4).toString('hex')}`;

/** The environment a test's api and workers share; `overrides` win. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RUNYARD_SECRET: 'test-secret-0123456789abcdef',
    LOCAL_MODEL_DELAY_MS: '0',
    RUN_RETRY_BASE_MS: '50',
    DATABASE_POOL_SIZE: '5',
    PORT: '0',
    // Many tests send bad keys from 127.0.0.1 on purpose; the limiter has its own test.
    AUTH_FAILURES_PER_MINUTE: '100000',
    AUTH_FAILURES_FLEET_PER_MINUTE: '1000000',
    // A title call after each chat's first run would add to the usage many tests count exactly; the titles test turns it on.
    CHAT_TITLES: 'false',
    ...overrides,
  };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({}, testEnv(overrides));
}
