import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The database's functions and triggers as source (issue 33): one file per function in
 * prisma/functions/, named for it, holding its `CREATE OR REPLACE FUNCTION` and the triggers that
 * call it, with the status lists and defaults taken from shared/runs/lifecycle.ts. Migrations are
 * made from these files (`npm run db:functions -- <name>` writes one with what changed), and
 * test/integration/databaseFunctions.test.ts fails when the files and what the migrations leave
 * differ. prisma/current-state.sql is the database's own rendering of the same definitions.
 */
export type DatabaseFunction = { name: string; sql: string; triggers: string[] };

export const databaseFunction = (name: string, sql: string, triggers: string[] = []): DatabaseFunction => ({ name, sql, triggers });

/** `('a', 'b')`: a list for `IN`. */
export const sqlIn = (values: readonly string[]) => `(${values.map((value) => `'${value}'`).join(', ')})`;

/** `ARRAY['a'::run_status, ...]`: as Postgres renders a trigger's `IN` over run statuses. */
export const sqlStatusArray = (values: readonly string[]) => `ARRAY[${values.map((value) => `'${value}'::run_status`).join(', ')}]`;

export const FUNCTIONS_DIR = import.meta.dirname;

/** Every function's source, by name. */
export async function loadDatabaseFunctions(): Promise<DatabaseFunction[]> {
  const files = (await readdir(FUNCTIONS_DIR)).filter((name) => name.endsWith('.sql.ts')).sort();
  return Promise.all(
    files.map(async (file) => {
      const loaded = ((await import(pathToFileURL(path.join(FUNCTIONS_DIR, file)).href)) as { default: DatabaseFunction }).default;
      if (`${loaded.name}.sql.ts` !== file) throw new Error(`${file} defines ${loaded.name}: a function's file is named for it`);
      return loaded;
    }),
  );
}

/** The statements that put a function and its triggers in place (each trigger replaced as a whole). */
export const statementsOf = (fn: DatabaseFunction): string[] => [fn.sql, ...fn.triggers];
