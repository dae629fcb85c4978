/**
 * One small database interface over the two drivers: PostgreSQL through a `pg.Pool`
 * (production, several replicas) and PGlite (embedded default, one data dir per gateway).
 * One SQL dialect serves both; the SQL itself lives in `.sql` files (see `sql.ts`).
 */
export type Row = Record<string, unknown>;

export interface Queryable {
  /** Run one statement with positional parameters (`$1`, …). */
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface TxQueryable extends Queryable {
  /** Run a script of several statements without parameters, inside the transaction. */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Run `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  tx<T>(fn: (q: TxQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DbOptions {
  url?: string;
  /** PostgreSQL schema (created if missing); lets several gateways share one database. */
  schema?: string;
  dir?: string;
  memory?: true;
  poolSize?: number;
}

/** Open the database the config names and bring its schema up to date. */
export async function openDb(opts: DbOptions): Promise<Db> {
  const db = opts.url
    ? await (await import('./postgres.js')).openPostgres(opts.url, opts.schema, opts.poolSize ?? 10)
    : await (await import('./pglite.js')).openPglite(opts.memory ? undefined : opts.dir);
  try {
    await (await import('./migrate.js')).migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}
