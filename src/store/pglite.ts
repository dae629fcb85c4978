import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Db, TxQueryable } from './db.js';

/**
 * Embedded PostgreSQL (WASM). One connection: PGlite queues concurrent callers itself, and a
 * transaction holds the connection until it ends, so transactions never interleave.
 * `dir` undefined = in memory. `template` (a `dumpDataDir` blob) skips the ~5 s initdb.
 */
export async function openPglite(dir?: string, template?: Blob): Promise<Db> {
  if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = new PGlite({ ...(dir ? { dataDir: dir } : {}), ...(template ? { loadDataDir: template } : {}) });
  await db.waitReady;
  return wrapPglite(db);
}

export function wrapPglite(db: PGlite): Db {
  return {
    kind: 'pglite',
    query: async (sql, params) => (await db.query(sql, params as unknown[])).rows as never[],
    tx: (fn) =>
      db.transaction(async (t) => {
        const q: TxQueryable = {
          query: async (sql, params) => (await t.query(sql, params as unknown[])).rows as never[],
          exec: async (sql) => {
            await t.exec(sql);
          },
        };
        return fn(q);
      }),
    close: () => db.close(),
  };
}
