import { expect } from 'chai';
import pg from 'pg';
import { loadDatabaseFunctions } from '../../prisma/functions/databaseFunction.js';
import { sourceDrift } from '../../scripts/dbFunctions.js';
import { TEST_DATABASE_URL } from '../support/testConfig.js';

describe('the database functions’ source files (prisma/functions/)', function () {
  this.timeout(60_000);

  it('are what the migrations leave: each function and its triggers, to the character (npm run db:functions writes the migration)', async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const functions = await loadDatabaseFunctions();
      expect(functions.length, 'the files were read').to.be.above(10);
      const drift = await sourceDrift(client, functions);
      expect(drift.changed, 'files that differ from the migrated database').to.deep.equal([]);
      expect(drift.withoutSource, 'functions without a file').to.deep.equal([]);
    } finally {
      await client.end();
    }
  });
});
