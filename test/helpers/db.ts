/**
 * Databases for tests. PGlite: a migrated in-memory template is built once per process
 * (initdb takes ~5 s) and each test database loads from it (~1.5 s). PostgreSQL: each test
 * database is a fresh schema of `DATABASE_URL`, dropped on close.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { wrapPglite } from '../../src/store/pglite.js';

export type DbKind = 'pglite' | 'postgres';

/** The kinds to run a suite on: PGlite always, PostgreSQL when DATABASE_URL is set. */
export function dbKinds(): DbKind[] {
  if (process.env.CI === 'true' && !process.env.DATABASE_URL) {
    throw new Error('CI=true but DATABASE_URL is not set: the PostgreSQL suites may not skip in CI');
  }
  return process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];
}

let template: Promise<Blob> | undefined;

async function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const db = new PGlite();
    await db.waitReady;
    await migrate(wrapPglite(db));
    const blob = await db.dumpDataDir('none');
    await db.close();
    return blob;
  })();
  return template;
}

/** A fresh, migrated database of `kind`, plus the options that reach the same database. */
export async function testDb(kind: DbKind): Promise<{ db: Db; options: Record<string, unknown> }> {
  if (kind === 'pglite') {
    const pglite = new PGlite({ loadDataDir: await pgliteTemplate() });
    await pglite.waitReady;
    return { db: wrapPglite(pglite), options: {} };
  }
  const url = process.env.DATABASE_URL!;
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const db = await openDb({ url, schema, poolSize: 10 });
  const close = db.close;
  const wrapped: Db = {
    ...db,
    async close() {
      await close();
      await dropSchema(url, schema);
    },
  };
  return { db: wrapped, options: { url, schema } };
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}
