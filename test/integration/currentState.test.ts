import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import pg from 'pg';
import { CURRENT_STATE_FILE, renderCurrentState } from '../../scripts/dbCurrentState.js';
import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import { TEST_DATABASE_URL } from '../support/testConfig.js';

describe('the database’s current state in one file (prisma/current-state.sql)', () => {
  it('is what the migrations produce (regenerate with npm run db:current-state after a migration)', async () => {
    const fromMigrations = await renderCurrentState(TEST_DATABASE_URL);
    expect(await readFile(CURRENT_STATE_FILE, 'utf8')).to.equal(fromMigrations);
  });

  it('keeps the active-run triggers on the lifecycle’s ACTIVE_STATUSES (a new active status needs a migration)', async () => {
    const text = await readFile(CURRENT_STATE_FILE, 'utf8');
    const trigger = text.split('\n').find((line) => line.startsWith('CREATE TRIGGER runs_count_active_delete'))!;
    const listed = [...trigger.matchAll(/'([a-z_]+)'::run_status/g)].map((match) => match[1]);
    expect(listed).to.deep.equal([...ACTIVE_STATUSES]);
  });

  it('indexes every foreign key on its referencing side (an erasure deleting a row must not scan the referencing table for each)', async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ key: string }>(`
        SELECT c.conrelid::regclass::text || '.' || a.attname AS key
        FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])`);
      expect(rows.map((row) => row.key)).to.deep.equal([]);
    } finally {
      await client.end();
    }
  });
});
