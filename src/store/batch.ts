/**
 * Group commit for the writes that append to the audit chain. Every such write serializes
 * on the chain head, so with one transaction each the gateway commits (and fsyncs) one
 * write at a time. The batcher runs the writes that queue up while a batch commits in the
 * next single transaction, each under its own savepoint: a write that fails is rolled back
 * alone and its caller gets its error; the others commit together. Callers see the same
 * contract as `db.tx`: resolved means committed.
 */
import type { Db, TxQueryable } from './db.js';

type Work = (q: TxQueryable) => Promise<unknown>;

interface Item {
  fn: Work;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

export type TxRunner = <T>(fn: (q: TxQueryable) => Promise<T>) => Promise<T>;

export function createTxBatcher(db: Db, maxBatch = 256): TxRunner {
  const queue: Item[] = [];
  let draining = false;

  async function drain(): Promise<void> {
    draining = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, maxBatch);
        try {
          await db.tx(async (q) => {
            for (const item of batch) {
              await q.query('SAVEPOINT batch_item');
              try {
                item.outcome = { ok: true, value: await item.fn(q) };
                await q.query('RELEASE SAVEPOINT batch_item');
              } catch (error) {
                await q.query('ROLLBACK TO SAVEPOINT batch_item');
                item.outcome = { ok: false, error };
              }
            }
          });
          for (const item of batch) {
            if (item.outcome?.ok) item.resolve(item.outcome.value);
            else item.reject(item.outcome?.error);
          }
        } catch (commitError) {
          // Nothing of this batch committed: every caller learns it.
          for (const item of batch)
            item.reject(item.outcome && !item.outcome.ok ? item.outcome.error : commitError);
        }
      }
    } finally {
      draining = false;
    }
  }

  return <T>(fn: (q: TxQueryable) => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!draining) void drain();
    });
}
