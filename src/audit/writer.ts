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
 *
 * A write that only queues events and rows (`lane.append`: a forward, an audited read, a
 * delivery outcome) needs no transaction: a batch of such writes is one statement in which
 * PostgreSQL writes the rows, locks the head, chains, writes the events and commits
 * (migrations 009 and 010), one round trip instead of five to seven. The head is then held
 * only inside PostgreSQL, never while this process gets round to sending the next statement,
 * so a forward does not wait for a busy event loop's delivery batch.
 */

import { IcrosError } from '../errors.js';
import type { Db, TxQueryable } from '../store/db.js';
import { sql } from '../store/sql.js';
import { type AuditHead, type AuditInput, appendInOneStatement, beginAppend } from './append.js';

/** What a write given to `lane.append` may do: queue events and rows, nothing else. */
export interface AppendOnly {
  /** Queue audit events; they are appended with the batch, before it commits. */
  audit(...events: AuditInput[]): void;
  /**
   * Queue one row for the named bulk statement (`queries/*.sql`, taking a JSON array of rows
   * as `$1`); each such statement runs once per batch: before the chain head is locked, or
   * after the hooks for `insertOutboundMany` and for rows the hooks defer. Rows of independent
   * writes go in together: one round trip per batch instead of one per write. A write given to
   * `lane.append` may defer only the statements the one-statement append takes along (`ALONG`).
   */
  defer(statement: string, row: Record<string, unknown>): void;
}

export interface AuditedTx extends TxQueryable, AppendOnly {
  /**
   * Run `fn` once the batch's events are chained, still inside the transaction, with the
   * new head (a receipt names it). Hooks of one batch run concurrently, and while the events
   * are being written: a hook signs and defers rows, it does not read the audit log.
   */
  afterAppend(fn: (head: AuditHead) => Promise<void>): void;
  /**
   * Run now the rows deferred so far for `statement` (by the writes before this one in the
   * batch), for a write that must read what they insert.
   */
  flush(statement: string): Promise<void>;
}

export type Write<T> = (q: AuditedTx) => Promise<T>;
export type AppendWrite<T> = (q: AppendOnly) => T | Promise<T>;

export interface AuditLane {
  /** Run `fn` in a group-committed transaction. */
  <T>(fn: Write<T>): Promise<T>;
  /** The same, also returning the audit head after the batch (it includes this write's events). */
  withHead<T>(fn: Write<T>): Promise<{ value: T; head: AuditHead }>;
  /**
   * Run `fn`, which only queues events and rows (outbox rows, receipts, delivered states,
   * attempts), with the lane's batch. When every write of a batch is such a write, the batch
   * commits in one statement without a transaction.
   */
  append<T>(fn: AppendWrite<T>): Promise<T>;
}

export interface AuditWriter extends AuditLane {
  /** The lane for background writes (delivery outcomes): same contract, its own batches. */
  background: AuditLane;
}

/**
 * The one deferred statement that runs under the chain head lock (each row's predecessor is
 * decided there).
 */
const OUTBOX_ROWS = 'insertOutboundMany';

/**
 * What an append-only write may defer: the statements the one-statement append takes along,
 * the outbox rows after the head lock, the others before it (migrations 009 and 010).
 */
const ALONG = new Set([
  OUTBOX_ROWS,
  'insertReceipts',
  'markDeliveredMany',
  'insertAttempts',
  'insertBatchReceipts',
]);

interface Item {
  fn: Write<unknown>;
  appendOnly: boolean;
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

  /** Run `items` in one statement or one transaction; throws if any of them (or the commit) fails. */
  async function runTogether(items: Item[]): Promise<{ values: unknown[]; head: AuditHead }> {
    const run = async (batch: Batch) => {
      const values: unknown[] = [];
      for (const item of items) values.push(await item.fn(batch.q));
      return values;
    };
    if (!items.every((item) => item.appendOnly)) {
      return db.tx(async (tx) => {
        const batch = newBatch(tx);
        const values = await run(batch);
        return { values, head: await finish(tx, batch) };
      });
    }
    const batch = newBatch(undefined);
    const values = await run(batch);
    const { [OUTBOX_ROWS]: outbox, ...before } = Object.fromEntries(batch.deferred);
    return { values, head: await appendInOneStatement(db, batch.events, { before, outbox }, now()) };
  }

  /** The rows deferred before the append, the append (with the hooks), the rows after it. */
  async function finish(tx: TxQueryable, batch: Batch): Promise<AuditHead> {
    const { events, hooks, deferred } = batch;
    for (const [statement, rows] of deferred) {
      if (statement === OUTBOX_ROWS) continue;
      deferred.delete(statement);
      await tx.query(sql(statement), [JSON.stringify(rows)]);
    }
    // The hooks (receipts, which name the head) are signed while the events are written.
    const { head, written } = await beginAppend(tx, events, now());
    await Promise.all([written, ...hooks.map((h) => h(head))]);
    for (const [statement, rows] of deferred) await tx.query(sql(statement), [JSON.stringify(rows)]);
    return head;
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

  const enqueue = <T>(fn: Write<T>, appendOnly: boolean) =>
    new Promise<{ value: T; head: AuditHead }>((resolve, reject) => {
      queue.push({ fn, appendOnly, resolve: resolve as Item['resolve'], reject });
      if (!draining) void drain();
    });
  const lane = (<T>(fn: Write<T>) => enqueue(fn, false).then((r) => r.value)) as AuditLane;
  lane.withHead = (fn) => enqueue(fn, false);
  lane.append = <T>(fn: AppendWrite<T>) => enqueue(async (q) => fn(q), true).then((r) => r.value);
  return lane;
}

interface Batch {
  q: AuditedTx;
  events: AuditInput[];
  hooks: ((head: AuditHead) => Promise<void>)[];
  deferred: Map<string, Record<string, unknown>[]>;
}

/**
 * What the writes of one batch queue up. Without `tx` (a batch of `append` writes, which are
 * typed not to), anything that needs the transaction is a programming error.
 */
function newBatch(tx: TxQueryable | undefined): Batch {
  const noTx = (what: string) => () => {
    throw new IcrosError('INTERNAL', `an append-only audit write called ${what}`);
  };
  const batch: Batch = { events: [], hooks: [], deferred: new Map(), q: undefined as never };
  batch.q = {
    query: tx ? tx.query : noTx('query'),
    exec: tx ? tx.exec : noTx('exec'),
    audit: (...e) => void batch.events.push(...e),
    afterAppend: tx ? (fn) => void batch.hooks.push(fn) : noTx('afterAppend'),
    defer: (statement, row) => {
      if (!tx && !ALONG.has(statement)) {
        throw new IcrosError(
          'INTERNAL',
          `an append-only audit write deferred ${statement}, which it cannot take along`,
        );
      }
      const rows = batch.deferred.get(statement);
      if (rows) rows.push(row);
      else batch.deferred.set(statement, [row]);
    },
    flush: tx
      ? async (statement) => {
          const rows = batch.deferred.get(statement);
          batch.deferred.delete(statement);
          if (rows) await tx.query(sql(statement), [JSON.stringify(rows)]);
        }
      : noTx('flush'),
  };
  return batch;
}
