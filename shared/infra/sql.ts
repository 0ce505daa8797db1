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

/**
 * How long a pooled connection lives (it is closed when next released after that). A prepared
 * statement's plan is made once per connection from the table sizes of that moment, and Postgres
 * only makes a new one after an ANALYZE: a connection opened while `runs` was nearly empty would
 * keep scanning the whole table with it for as long as it lives (seen in the benchmark, with
 * autovacuum off). Renewing connections bounds how long a plan can be out of date.
 */
const CONNECTION_LIFETIME_SECONDS = 300;

export function createPool(databaseUrl: string, size: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: size,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    maxLifetimeSeconds: CONNECTION_LIFETIME_SECONDS,
  });
  // An idle connection that breaks (Postgres restarted) is dropped from the pool; without a
  // listener its 'error' would crash the process.
  pool.on('error', () => {});
  return pool;
}
