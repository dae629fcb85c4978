import pg from 'pg';
import { IcrosError } from '../errors.js';
import type { Db, TxQueryable } from './db.js';

// int8 (audit seq, counts) as numbers: our values stay far below 2^53.
const types = {
  getTypeParser: (oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
};

export async function openPostgres(url: string, schema: string | undefined, max: number): Promise<Db> {
  if (schema) {
    const admin = new pg.Client({ connectionString: url });
    await connectOrExplain(admin, url);
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types,
    ...(schema ? { options: `-c search_path="${schema}"` } : {}),
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const client = await connectOrExplain(pool, url);
  client.release();

  // Named statements: PostgreSQL parses and plans each one once per connection instead of on
  // every call, which is most of the server's CPU for the gateway's short statements.
  const names = new Map<string, string>();
  const nameOf = (sql: string) => {
    let n = names.get(sql);
    if (!n) {
      n = `icros_${names.size}`;
      names.set(sql, n);
    }
    return n;
  };
  const run = async <T>(q: { query: pg.Pool['query'] }, sql: string, params?: readonly unknown[]) =>
    (await q.query({ name: nameOf(sql), text: sql, values: (params ?? []) as unknown[] })).rows as T[];

  return {
    kind: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    async tx(fn) {
      const c = await pool.connect();
      // A checked-out client is not covered by the pool's 'error' listener: without its own,
      // PostgreSQL going away mid-transaction crashes the process. The failing query rejects
      // anyway; the broken client is destroyed on release instead of going back to the pool.
      let broken: Error | undefined;
      const onError = (err: Error) => {
        broken = err;
      };
      c.on('error', onError);
      try {
        await c.query('BEGIN');
        const q: TxQueryable = {
          query: (sql, params) => run(c, sql, params),
          exec: async (sql) => {
            await c.query(sql);
          },
        };
        const result = await fn(q);
        await c.query('COMMIT');
        return result;
      } catch (err) {
        if (!broken) await c.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        c.off('error', onError);
        c.release(broken ?? undefined);
      }
    },
    close: () => pool.end(),
  };
}

async function connectOrExplain<T extends pg.Client | pg.Pool>(c: T, url: string) {
  try {
    return (await c.connect()) as T extends pg.Pool ? pg.PoolClient : undefined;
  } catch (cause) {
    const where = new URL(url);
    throw new IcrosError(
      'CONFIG_INVALID',
      `cannot connect to PostgreSQL at ${where.host}${where.pathname}: ${(cause as Error).message}`,
      { cause },
    );
  }
}
