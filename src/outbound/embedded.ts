/**
 * Embedded delivery driver: an in-process loop over the outbox. For each partner whose lane
 * has room (circuit closed, concurrency and rate left) it claims due rows with `FOR UPDATE
 * SKIP LOCKED` and a lease (so two processes on one database never send the same row at the
 * same time, and a row whose sender died is owed again once its lease expires), and sleeps
 * until the next row is due, a poll interval passes, an attempt finishes, or `kick()`.
 */
import type { GatewayContext } from '../context.js';
import { log } from '../log.js';
import { sql } from '../store/sql.js';
import type { OutboxRow } from './deliver.js';
import { type LaneOptions, Lanes } from './lanes.js';
import type { DeliveryQueue } from './queue.js';

export type EmbeddedQueueOptions = LaneOptions;

export function createEmbeddedQueue(ctx: GatewayContext, opts: EmbeddedQueueOptions = {}): DeliveryQueue {
  const { pollIntervalMs, maintenanceIntervalMs } = ctx.config.delivery;
  const lanes = new Lanes(ctx, opts);
  const inFlight = new Set<Promise<unknown>>();
  let running = false;
  let wake: (() => void) | undefined;
  // Set by kick() and finished attempts between sleeps, so a wake-up is never lost.
  let pending = false;
  let loop: Promise<void> | undefined;
  let maintenance: NodeJS.Timeout | undefined;

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

  async function claimRound(): Promise<{ claimed: number; waiting: boolean }> {
    let claimed = 0;
    let waiting = false;
    for (const lane of lanes.all()) {
      const room = lanes.capacity(lane);
      // Under load, claim in batches (a quarter of the partner's slots at least) rather than
      // one row per finished attempt.
      const min = Math.max(1, Math.floor(lane.partner.delivery.concurrency / 4));
      if (room < min && !(room > 0 && lane.inFlight === 0)) {
        if (lane.inFlight > 0 || !lane.breaker.allows()) waiting = true;
        continue;
      }
      if (lanes.discoveryDue(lane)) await lanes.discover(lane);
      const lease = 2 * lane.partner.delivery.requestTimeoutMs + 30_000;
      // With batches, each free slot carries a whole batch.
      const per = lane.batch?.max ?? 1;
      const rows = await ctx.db.query<OutboxRow>(sql('claimDue'), [lane.partner.country, room * per, lease]);
      claimed += rows.length;
      const groups =
        lane.batch && rows.length > 1
          ? Array.from({ length: Math.ceil(rows.length / per) }, (_, i) => rows.slice(i * per, (i + 1) * per))
          : rows.map((r) => [r]);
      for (const group of groups) {
        const p = (
          group.length > 1 ? lanes.attemptBatch(lane, group) : lanes.attempt(lane, group[0]!)
        ).finally(() => {
          inFlight.delete(p);
          nudge();
        });
        inFlight.add(p);
      }
    }
    return { claimed, waiting };
  }

  async function run(): Promise<void> {
    while (running) {
      pending = false;
      let round: { claimed: number; waiting: boolean };
      try {
        round = await claimRound();
      } catch (err) {
        log.error('cannot claim outbox rows; retrying', { err: (err as Error).message });
        await sleep(pollIntervalMs);
        continue;
      }
      if (round.claimed > 0) continue;
      // Nothing claimable: a finishing attempt or a kick wakes us; otherwise sleep until the
      // next row is due.
      await sleep(round.waiting && inFlight.size > 0 ? pollIntervalMs : await untilNextDue());
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

  // Ticks at half the shortest probe interval, so a probe is never a whole tick late; the
  // database sweeps run every maintenanceIntervalMs.
  const tick = Math.min(
    maintenanceIntervalMs,
    ...ctx.config.partners.map((p) => p.delivery.circuitProbeIntervalMs / 2),
  );
  let maintaining: Promise<void> | undefined;
  const maintain = (every: number) => {
    maintaining ??= lanes
      .maintain(every)
      .then(nudge)
      .finally(() => {
        maintaining = undefined;
      });
    return maintaining;
  };

  return {
    driver: 'embedded',
    start() {
      if (running) return;
      running = true;
      loop = run();
      maintenance = setInterval(() => void maintain(maintenanceIntervalMs), tick);
      maintenance.unref();
    },
    kick: nudge,
    partners: async () => lanes.status(),
    maintain: () => maintain(0),
    reload: () => lanes.reload(),
    async stop() {
      running = false;
      clearInterval(maintenance);
      wake?.();
      await loop;
      await maintaining;
      await Promise.allSettled([...inFlight]);
      await lanes.close();
    },
  };
}
