/**
 * Statistics for a new outbox. Until PostgreSQL has column statistics on `messages`, it may
 * plan the claim of given messages (`claimMany`, the BullMQ workers' claim) as a scan of an
 * index of every open message, filtered by id, instead of the primary key: 2.6–3 ms per
 * claim of 4 rows with 5,000 open against ~0.7 ms, which made a new gateway's first burst
 * slower. Forwards suffer too: the outbox insert of a gateway whose delivery worker was not
 * running took 14–29 ms per statement (8 rows) once 60,000–100,000 rows were queued, against
 * 1.2 ms after an `ANALYZE`, so forwards slowed to 236/s. Autovacuum analyzes a new table
 * only at its next visit (`autovacuum_naptime`, 1 min by default, later when it is busy with
 * other tables), so every gateway process analyzes `messages` itself, once, as soon as it
 * holds `MIN_ROWS` rows without statistics, whether or not it runs a delivery worker. PGlite
 * has no autovacuum and no such load: nothing is done there.
 */
import { log } from '../log.js';
import type { Db } from './db.js';
import { sql } from './sql.js';

const MIN_ROWS = 500;

/**
 * Analyze `messages` if it holds rows but has no statistics yet. Resolves true when nothing
 * more is owed (statistics exist, were just made, or cannot be made here), false while the
 * table is still too small to be worth it or the database does not answer (ask again later).
 */
export async function analyzeNewOutbox(db: Db): Promise<boolean> {
  if (db.kind !== 'postgres') return true;
  let state: { analyzed: boolean; rows: number } | undefined;
  try {
    [state] = await db.query<{ analyzed: boolean; rows: number }>(sql('outboxStatsState'));
  } catch {
    return false; // the database does not answer now: the next tick asks again
  }
  if (!state || state.analyzed) return true;
  if (state.rows < MIN_ROWS) return false;
  try {
    await db.query('ANALYZE messages');
    log.info('analyzed the new messages table (it had no statistics yet)');
  } catch (err) {
    // Not the table's owner, say: autovacuum will do it.
    log.warn('cannot analyze the messages table; autovacuum will', { err: (err as Error).message });
  }
  return true;
}

/**
 * Ask `analyzeNewOutbox` every `everyMs` until nothing more is owed (at once on PGlite, or
 * on a database whose outbox has statistics already). Started with every gateway process.
 */
export function startOutboxStats(db: Db, everyMs = 5_000): { stop(): Promise<void> } {
  let running: Promise<unknown> | undefined;
  const tick = () => {
    running ??= analyzeNewOutbox(db)
      .then((finished) => {
        if (finished) clearInterval(timer);
      })
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  tick();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
