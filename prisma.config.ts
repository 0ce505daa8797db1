import 'dotenv/config';
import { defineConfig } from 'prisma/config';

// Used by the prisma CLI (generate, and migrate deploy on machines that have the native
// schema engine). runyard's own `db migrate` does not need it.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/runyard',
  },
});
