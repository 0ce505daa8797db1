import pg from 'pg';

/**
 * The hot path's statements go to `pg` directly rather than through Prisma: one prepared statement
 * per query (parsed and planned once per connection, then only bound and executed), no ORM layer
 * in between. Prisma shares the same pool for everything else.
 */
export type Statement = { readonly name: string; readonly text: string };

/** Names a statement so each pooled connection prepares it once. The name must be unique. */
export const statement = (name: string, text: string): Statement => ({ name: `runyard_${name}`, text });

export class Sql {
  constructor(readonly pool: pg.Pool) {}

  async rows<Row>(query: Statement, values: unknown[]): Promise<Row[]> {
    const result = await this.pool.query<Row & pg.QueryResultRow>({ name: query.name, text: query.text, values });
    return result.rows;
  }
}

export function createPool(databaseUrl: string, size: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: size, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000 });
  // An idle connection that breaks (Postgres restarted) is dropped from the pool; without a
  // listener its 'error' would crash the process.
  pool.on('error', () => {});
  return pool;
}
