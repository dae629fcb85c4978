/**
 * Embedded delivery driver: an in-process loop over the outbox. It claims due rows with
 * `FOR UPDATE SKIP LOCKED` and a lease (so two processes on one database never send the same
 * row at the same time, and a row whose sender died is owed again once its lease expires),
 * runs up to `delivery.concurrency` attempts at once, and sleeps until the next row is due,
 * a poll interval passes, or `kick()` is called.
 */
import type { GatewayContext } from '../context.js';
import { log } from '../log.js';
import { sql } from '../store/sql.js';
import { createPartnerClient, type PartnerClient } from './client.js';
import { deliverOne, type OutboxRow, type Outcome } from './deliver.js';
import type { DeliveryQueue } from './queue.js';

export interface EmbeddedQueueOptions {
  /** Called after each attempt (the demo and tests watch outcomes). */
  onOutcome?: (row: OutboxRow, outcome: Outcome) => void;
}

export function createEmbeddedQueue(ctx: GatewayContext, opts: EmbeddedQueueOptions = {}): DeliveryQueue {
  const { concurrency, pollIntervalMs, requestTimeoutMs } = ctx.config.delivery;
  const leaseMs = 2 * requestTimeoutMs + 30_000;
  const minClaim = Math.max(1, Math.floor(concurrency / 4));
  const clients = new Map<string, PartnerClient>();
  const inFlight = new Set<Promise<void>>();
  let running = false;
  let wake: (() => void) | undefined;
  // Set by kick() and finished attempts between sleeps, so a wake-up is never lost.
  let pending = false;
  let loop: Promise<void> | undefined;

  const clientFor = (country: string) => {
    let c = clients.get(country);
    if (!c) {
      const partner = ctx.registry.byCountry(country);
      if (!partner) return undefined;
      c = createPartnerClient(ctx.config, partner);
      clients.set(country, c);
    }
    return c;
  };

  const attempt = async (row: OutboxRow) => {
    const partner = ctx.registry.byCountry(row.peer);
    const client = clientFor(row.peer);
    if (!partner || !client) {
      log.error('outbox row for a partner no longer in the registry; left queued', {
        partner: row.peer,
        messageId: row.id,
      });
      return;
    }
    const outcome = await deliverOne(ctx, partner, client, row);
    opts.onOutcome?.(row, outcome);
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (pending) {
        pending = false;
        resolve();
        return;
      }
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  async function run(): Promise<void> {
    while (running) {
      pending = false;
      const free = concurrency - inFlight.size;
      let claimed: OutboxRow[] = [];
      // Under load, claim in batches (one UPDATE and commit per quarter of the slots) rather
      // than one row per finished attempt.
      if (free >= minClaim || (free > 0 && inFlight.size === 0)) {
        try {
          claimed = await ctx.db.query<OutboxRow>(sql('claimDue'), [free, leaseMs]);
        } catch (err) {
          log.error('cannot claim outbox rows; retrying', { err: (err as Error).message });
          await sleep(pollIntervalMs);
          continue;
        }
      }
      for (const row of claimed) {
        const p = attempt(row)
          .catch((err) => {
            log.error('delivery attempt failed unexpectedly; the lease will expire and it is retried', {
              messageId: row.id,
              err: (err as Error).message,
            });
          })
          .finally(() => {
            inFlight.delete(p);
            nudge();
          });
        inFlight.add(p);
      }
      if (claimed.length > 0 && claimed.length === free) continue;
      // Slots busy (or too few free to claim): a finishing attempt wakes us. Otherwise sleep
      // until the next row is due.
      const idle = free - claimed.length;
      await sleep(idle < minClaim && inFlight.size > 0 ? pollIntervalMs : await untilNextDue());
    }
  }

  function nudge() {
    pending = true;
    wake?.();
  }

  async function untilNextDue(): Promise<number> {
    try {
      const [row] = await ctx.db.query<{ at: Date | null }>(sql('nextDueAt'));
      if (row?.at) return Math.max(5, Math.min(pollIntervalMs, row.at.getTime() - ctx.now().getTime()));
    } catch {
      // the poll interval is the fallback
    }
    return pollIntervalMs;
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    kick: nudge,
    async stop() {
      running = false;
      wake?.();
      await loop;
      await Promise.allSettled([...inFlight]);
      await Promise.all([...clients.values()].map((c) => c.close()));
      clients.clear();
    },
  };
}
