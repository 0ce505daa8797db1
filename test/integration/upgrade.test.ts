import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { createDatabase } from '../../shared/infra/db.js';
import { dropDatabaseIfExists, migrateDatabase, MIGRATIONS_DIR } from '../../shared/infra/migrate.js';
import { seedHistory } from '../../scripts/bench/history.js';
import { TEST_DATABASE_URL } from '../support/testConfig.js';

/** The last migration of the release before this one: the database an upgrade starts from. */
const PREVIOUS_RELEASE = '20261203111340_retention';

/** Every row of every table, over the columns it had before: one digest per table. */
async function digests(client: pg.Client, columns: Map<string, string[]>): Promise<Record<string, { rows: number; digest: string }>> {
  const out: Record<string, { rows: number; digest: string }> = {};
  for (const [table, cols] of columns) {
    const row = `row(${cols.map((c) => `t."${c}"`).join(', ')})::text`;
    const { rows } = await client.query<{ rows: string; digest: string | null }>(
      `SELECT count(*)::text AS rows, md5(string_agg(${row}, ',' ORDER BY ${row})) AS digest FROM "${table}" t`,
    );
    out[table] = { rows: Number(rows[0]!.rows), digest: rows[0]!.digest ?? '' };
  }
  return out;
}

/**
 * An upgrade (SPEC section 17: migrations that keep every row): a database migrated to the previous
 * release and filled as it fills one — a history of finished runs with their messages, steps,
 * attempts, keys and cleanup records, queued runs provisioned by its own function, a queued chat
 * message — then migrated to this release: every row of every table is still there with every value
 * it had, and the upgraded database takes this release's writes.
 */
describe('upgrading a database the previous release filled', function () {
  this.timeout(120_000);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `${url.pathname}_upgrade`;
  const databaseUrl = url.toString();
  let previous: string;

  before(async () => {
    previous = await mkdtemp(path.join(tmpdir(), 'runyard-migrations-'));
    for (const name of await readdir(MIGRATIONS_DIR)) {
      if (name <= PREVIOUS_RELEASE || name === 'migration_lock.toml') await cp(path.join(MIGRATIONS_DIR, name), path.join(previous, name), { recursive: true });
    }
    await dropDatabaseIfExists(databaseUrl);
  });
  after(async () => {
    await dropDatabaseIfExists(databaseUrl);
    await rm(previous, { recursive: true, force: true });
  });

  it('keeps every row and value, and the upgraded database works', async () => {
    const first = await migrateDatabase(databaseUrl, previous);
    expect(first.applied.at(-1)).to.equal(PREVIOUS_RELEASE);
    const database = createDatabase(databaseUrl, 2);
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      // Filled as the previous release fills it.
      const accountId = randomUUID();
      await client.query(`INSERT INTO accounts (id, name) VALUES ($1, 'upgraded')`, [accountId]);
      await seedHistory(database.db, accountId, 500, { agedDays: 3, steps: true });
      const queued = Array.from({ length: 5 }, (_, ord) => ({
        ord,
        session_id: randomUUID(),
        chat_id: randomUUID(),
        run_id: randomUUID(),
        model: 'local/echo',
        messages: [{ role: 'user', parts: [{ type: 'text', text: `queued ${ord}` }] }],
        key_id: randomUUID(),
        key_hash: `hash-${ord}-${randomUUID()}`,
        key_prefix: 'ry_ek_up',
        key_scopes: ['runs:read'],
        key_expires_at: new Date(Date.now() + 600_000).toISOString(),
        max_steps: 20,
      }));
      const provisioned = await client.query(`SELECT runyard_provision_runs($1::uuid, 50, $2::jsonb) AS id`, [accountId, JSON.stringify(queued)]);
      expect(provisioned.rowCount).to.equal(5);
      await client.query(
        `INSERT INTO queued_messages (id, chat_id, account_id, position, parts, run) VALUES ($1, $2, $3, 1, '[{"type":"text","text":"next"}]', '{"model":"local/echo"}')`,
        [randomUUID(), queued[0]!.chat_id, accountId],
      );

      const { rows: columnRows } = await client.query<{ table_name: string; column_name: string }>(
        `SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY table_name, ordinal_position`,
      );
      const columns = new Map<string, string[]>();
      for (const { table_name, column_name } of columnRows) columns.set(table_name, [...(columns.get(table_name) ?? []), column_name]);
      const before = await digests(client, columns);
      expect(before.runs!.rows).to.equal(505);
      expect(before.run_steps!.rows).to.equal(500);

      const upgrade = await migrateDatabase(databaseUrl);
      expect(upgrade.applied, 'this release’s migrations').to.include('20261203163510_flow_control');
      expect(await digests(client, columns), 'every row of every table, every value it had').to.deep.equal(before);

      // What the new columns say of the old rows, and a write of this release.
      const { rows: weights } = await client.query(`SELECT weight, max_running FROM accounts WHERE id = $1`, [accountId]);
      expect(weights[0]).to.deep.equal({ weight: 1, max_running: null });
      const next = {
        ...queued[0]!,
        ord: 0,
        run_id: randomUUID(),
        session_id: randomUUID(),
        chat_id: randomUUID(),
        key_id: randomUUID(),
        key_hash: `hash-new-${randomUUID()}`,
        priority: 'high',
      };
      await client.query(`SELECT runyard_provision_runs($1::uuid, 50, $2::jsonb)`, [accountId, JSON.stringify([next])]);
      const { rows: created } = await client.query(`SELECT priority, status::text FROM runs WHERE id = $1`, [next.run_id]);
      expect(created[0]).to.deep.equal({ priority: 'high', status: 'queued' });
    } finally {
      await client.end();
      await database.close();
    }
  });
});
