/**
 * Numbered migrations (`migrations/NNN_name.sql`), applied in order at start-up, each in its
 * own transaction under an advisory lock so that replicas starting together on one
 * PostgreSQL apply each migration once.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { IcrosError } from '../errors.js';
import type { Db } from './db.js';

const dir = new URL('./migrations/', import.meta.url);
const MIGRATION_LOCK = 7_244_201; // arbitrary, constant: the advisory lock key of migrations

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(new URL(f, dir), 'utf8') }));
}

/** Apply the migrations this database has not seen; returns the names applied. */
export async function migrate(db: Db): Promise<string[]> {
  await db.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  const applied: string[] = [];
  for (const m of listMigrations()) {
    const done = await db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const seen = await q.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (seen.length) return false;
      try {
        await q.exec(m.sql);
      } catch (cause) {
        throw new IcrosError('INTERNAL', `migration ${m.name} failed: ${(cause as Error).message}`, {
          cause,
        });
      }
      await q.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (done) applied.push(m.name);
  }
  return applied;
}
