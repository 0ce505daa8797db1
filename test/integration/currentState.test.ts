import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
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
});
