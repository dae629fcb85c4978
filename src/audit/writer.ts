/**
 * Group commit for every write that appends to the audit chain. Appends serialize on the
 * chain head, so with one transaction each a gateway commits one write at a time. The
 * writer runs the writes that queue up while a batch commits together in the next single
 * transaction: each write does its own statements and hands its audit events to
 * `q.audit(...)`; the events of the whole batch are appended once, in order, at the end
 * (one head lock, one insert), then everything commits.
 *
 * A write that throws aborts the batch; the batch is then replayed one write per
 * transaction, so only the failing write fails and each caller gets its own outcome.
 * Resolved means committed, as with `db.tx`. Writes must do nothing but database work.
 *
 * Two lanes, each grouping its own writes: the writer itself, for what somebody waits on (a
 * forward, an ingest, a partner's message), and `background`, for the delivery outcomes of
 * the sender. The lanes' transactions run side by side and meet only at the chain head, which
 * each holds just for its append and commit: rows deferred before the append are written
 * before the head is locked, except those whose order the head decides (`insertOutboundMany`
 * takes each row's predecessor in the case). So a forward waits for, at most, the append of a
 * delivery batch, not for the whole batch.
 */
import type { Db, TxQueryable } from '../store/db.js';
import { sql } from '../store/sql.js';
import { type AuditHead, type AuditInput, beginAppend } from './append.js';

export interface AuditedTx extends TxQueryable {
  /** Queue audit events; they are appended with the batch, before it commits. */
  audit(...events: AuditInput[]): void;
  /**
   * Run `fn` once the batch's events are chained, still inside the transaction, with the
   * new head (a receipt names it). Hooks of one batch run concurrently, and while the events
   * are being written: a hook signs and defers rows, it does not read the audit log.
   */
  afterAppend(fn: (head: AuditHead) => Promise<void>): void;
  /**
   * Queue one row for the named bulk statement (`queries/*.sql`, taking a JSON array of rows
   * as `$1`); each such statement runs once per batch: before the chain head is locked, or
   * after the hooks for `insertOutboundMany` and for rows the hooks defer. Rows of independent
   * writes go in together: one round trip per batch instead of one per write.
   */
  defer(statement: string, row: Record<string, unknown>): void;
  /**
   * Run now the rows deferred so far for `statement` (by the writes before this one in the
   * batch), for a write that must read what they insert.
   */
  flush(statement: string): Promise<void>;
}

export type Write<T> = (q: AuditedTx) => Promise<T>;

export interface AuditLane {
  /** Run `fn` in a group-committed transaction. */
  <T>(fn: Write<T>): Promise<T>;
  /** The same, also returning the audit head after the batch (it includes this write's events). */
  withHead<T>(fn: Write<T>): Promise<{ value: T; head: AuditHead }>;
}

export interface AuditWriter extends AuditLane {
  /** The lane for background writes (delivery outcomes): same contract, its own batches. */
  background: AuditLane;
}

/** Deferred statements that must run under the chain head lock (their rows' order is the head's). */
const UNDER_HEAD_LOCK = new Set(['insertOutboundMany']);

interface Item {
  fn: Write<unknown>;
  resolve: (v: { value: unknown; head: AuditHead }) => void;
  reject: (e: unknown) => void;
}

export function createAuditWriter(db: Db, now: () => Date, maxBatch = 256): AuditWriter {
  const writer = createLane(db, now, maxBatch) as AuditWriter;
  writer.background = createLane(db, now, maxBatch);
  return writer;
}

function createLane(db: Db, now: () => Date, maxBatch: number): AuditLane {
  const queue: Item[] = [];
  let draining = false;

  /** Run `items` in one transaction; throws if any of them (or the commit) fails. */
  async function runTogether(items: Item[]): Promise<{ values: unknown[]; head: AuditHead }> {
    return db.tx(async (tx) => {
      const events: AuditInput[] = [];
      const hooks: ((head: AuditHead) => Promise<void>)[] = [];
      const deferred = new Map<string, Record<string, unknown>[]>();
      const q: AuditedTx = {
        query: tx.query,
        exec: tx.exec,
        audit: (...e) => void events.push(...e),
        afterAppend: (fn) => void hooks.push(fn),
        defer: (statement, row) => {
          const rows = deferred.get(statement);
          if (rows) rows.push(row);
          else deferred.set(statement, [row]);
        },
        flush: async (statement) => {
          const rows = deferred.get(statement);
          deferred.delete(statement);
          if (rows) await tx.query(sql(statement), [JSON.stringify(rows)]);
        },
      };
      const values: unknown[] = [];
      for (const item of items) values.push(await item.fn(q));
      for (const [statement, rows] of deferred) {
        if (UNDER_HEAD_LOCK.has(statement)) continue;
        deferred.delete(statement);
        await tx.query(sql(statement), [JSON.stringify(rows)]);
      }
      // The hooks (receipts, which name the head) are signed while the events are written.
      const { head, written } = await beginAppend(tx, events, now());
      await Promise.all([written, ...hooks.map((h) => h(head))]);
      for (const [statement, rows] of deferred) await tx.query(sql(statement), [JSON.stringify(rows)]);
      return { values, head };
    });
  }

  async function drain(): Promise<void> {
    draining = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, maxBatch);
        try {
          const { values, head } = await runTogether(batch);
          for (const [i, item] of batch.entries()) item.resolve({ value: values[i], head });
        } catch (err) {
          if (batch.length === 1) batch[0]!.reject(err);
          else
            for (const item of batch)
              await runTogether([item]).then(
                ({ values, head }) => item.resolve({ value: values[0], head }),
                item.reject,
              );
        }
      }
    } finally {
      draining = false;
    }
  }

  const withHead = <T>(fn: Write<T>) =>
    new Promise<{ value: T; head: AuditHead }>((resolve, reject) => {
      queue.push({ fn, resolve: resolve as Item['resolve'], reject });
      if (!draining) void drain();
    });
  const lane = (<T>(fn: Write<T>) => withHead(fn).then((r) => r.value)) as AuditLane;
  lane.withHead = withHead;
  return lane;
}
