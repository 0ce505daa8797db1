import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { createPool, Sql } from './sql.js';

export type Db = PrismaClient;
/** What a store's raw statements need of the database or of a transaction in progress. */
export type SqlTx = Pick<Db, '$queryRaw' | '$executeRaw'>;
export { Prisma } from '../generated/prisma/client.js';

/** Prisma for most queries and `sql` for the hot path, on one connection pool. */
export type Database = { db: Db; sql: Sql; close: () => Promise<void> };

export function createDatabase(databaseUrl: string, poolSize = 10): Database {
  const pool = createPool(databaseUrl, poolSize);
  const db = new PrismaClient({ adapter: new PrismaPg(pool) });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= db.$disconnect().finally(() => pool.end());
    return closing;
  };
  return { db, sql: new Sql(pool), close };
}
