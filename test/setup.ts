import { Redis } from 'ioredis';
import { dropDatabaseIfExists, migrateDatabase } from '../shared/infra/migrate.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL, TEST_RUN_TAG } from './support/testConfig.js';
import { openInProcessWorkers } from './support/harness.js';

/**
 * Root hooks: a fresh test database migrated with the project's own migrator (so `db migrate` is
 * exercised on every run), and no leftover test keys in Redis.
 */
async function deleteTestKeys() {
  const redis = new Redis(TEST_REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${TEST_RUN_TAG}-*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  await redis.quit();
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    const name = decodeURIComponent(new URL(TEST_DATABASE_URL).pathname.slice(1));
    // The tests drop their database first: never one that is not plainly a test database.
    if (!/test/i.test(name))
      throw new Error(`refusing to drop database "${name}" for the tests: TEST_DATABASE_URL must name a database with "test" in its name`);
    await dropDatabaseIfExists(TEST_DATABASE_URL);
    await migrateDatabase(TEST_DATABASE_URL);
    await deleteTestKeys();
  },
  async afterAll(this: Mocha.Context) {
    await deleteTestKeys();
    const leaked = openInProcessWorkers();
    if (leaked.length > 0) throw new Error(`${leaked.length} in-process worker(s) left open by the tests, started:\n${leaked.join('\n\n')}`);
  },
};
