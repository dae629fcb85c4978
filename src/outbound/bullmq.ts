/**
 * BullMQ delivery driver: several gateway processes on one PostgreSQL and one Redis share the
 * work. The outbox stays the source of truth; Redis only says when each row is attempted:
 * - one queue and one worker per partner (`icros-deliver-<GW>-<PARTNER>`); one job per
 *   outbox row, `jobId` = the message id, so adding a row twice (two relays, the reconciler)
 *   is a no-op;
 * - the **relay** hands rows not yet in Redis (`enqueued_at IS NULL`) to their partner's queue,
 *   delayed until `next_attempt_at`, on `kick()` and every `pollIntervalMs`;
 * - the **worker** claims its jobs' rows with `claimMany` (the same due, ordering
 *   and lease rules as the embedded driver's `claimDue`, `FOR UPDATE SKIP LOCKED`), so no row
 *   is sent twice at the same time whatever Redis holds, and attempts them through the shared
 *   lanes: the partner's concurrency (per process), its circuit and its rate (both kept in
 *   Redis for all replicas: shared-circuit.ts, shared-rate.ts) limit the requests, and each
 *   request carries a batch of jobs when the partner takes batches. A retry, a row not due
 *   yet or an open circuit puts the job back in Redis as delayed until it is due (never a
 *   busy loop);
 * - the **reconciler** (`maintain()`, every `maintenanceIntervalMs`) re-adds the jobs of open
 *   rows that Redis lost (flushed, restarted without persistence, failed over), so no message
 *   waits forever.
 */
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { GatewayContext } from '../context.js';
import { log } from '../log.js';
import { sql } from '../store/sql.js';
import type { AttemptResult, OutboxRow } from './deliver.js';
import { type Lane, type LaneOptions, Lanes } from './lanes.js';
import type { DeliveryQueue } from './queue.js';
import { type SharedState, sharedCircuit } from './shared-circuit.js';
import { type RateGrant, sharedRate } from './shared-rate.js';

export interface BullmqQueueOptions extends LaneOptions {
  /** Redis key prefix of the queues (default `bull`); tests use one per run. */
  redisPrefix?: string;
}

/** Rows per relay statement and per reconciler page. */
const BATCH = 500;
/**
 * Batches' worth of jobs one worker holds at once, for a partner that takes batches. BullMQ's
 * worker fetches jobs one at a time until it holds its concurrency, and only then hands them
 * to the processor: a window of 2,000 jobs delivered nothing of a burst of forwards for
 * seconds (the fetches took turns with the forwards on a busy event loop), then everything
 * at once. Four batches keep requests going out while the next jobs are fetched.
 */
const BATCHES_IN_WINDOW = 4;
/** A job whose row is due but locked by another claimer looks again this much later (ms). */
const LOCKED_RETRY_MS = 100;

interface PartnerQueue {
  lane: Lane;
  queue: Queue;
  worker: Worker;
  /** The worker is paused because this process's circuit to the partner is open. */
  paused: boolean;
  /** Jobs of this process waiting for a request slot, oldest first. */
  waiting: { id: string; resolve: (s: Settled) => void; reject: (err: Error) => void }[];
  pumping: boolean;
  tokenTimer?: NodeJS.Timeout;
  discovering?: Promise<void>;
}

/** What became of a job's row in the lane. */
type Settled =
  | { kind: 'attempted'; row: OutboxRow; result: AttemptResult | undefined }
  | { kind: 'unclaimed' }
  /** This process's circuit to the partner is open. */
  | { kind: 'circuit' }
  /** The driver is stopping: the job goes back to Redis for another worker or a restart. */
  | { kind: 'release' };

export function queueName(gateway: string, partner: string): string {
  return `icros-deliver-${gateway}-${partner}`;
}

export function createBullmqQueue(ctx: GatewayContext, opts: BullmqQueueOptions = {}): DeliveryQueue {
  const url = ctx.config.redis?.url;
  if (!url) throw new Error('the bullmq delivery driver needs redis.url (REDIS_URL)');
  const { pollIntervalMs, maintenanceIntervalMs } = ctx.config.delivery;
  const prefix = opts.redisPrefix ?? 'bull';
  let producer: Redis | undefined;
  // The partners' rate limits (`tokens`) and circuits are kept in Redis for all replicas.
  const buckets = sharedRate(() => producer, prefix, ctx.config.country);
  const circuits = sharedCircuit(() => producer, prefix, ctx.config.country);
  const lanes = new Lanes(ctx, opts, { rate: true, circuits });
  const byPartner = new Map<string, PartnerQueue>();
  const timers: NodeJS.Timeout[] = [];
  let consumer: Redis | undefined;
  let running = false;
  let lastReconcile = 0;

  // One connection for the queues, the relay and the reconciler; one for the workers, which
  // BullMQ requires to retry forever (each worker also opens its own blocking connection).
  const connect = (workers: boolean) => {
    const r = new Redis(url, { maxRetriesPerRequest: workers ? null : 3 });
    r.on('error', (err) => redisError(err));
    return r;
  };
  let lastRedisError = 0;
  function redisError(err: Error) {
    // ioredis reconnects by itself; say so once in a while, not on every retry.
    if (Date.now() - lastRedisError < 10_000) return;
    lastRedisError = Date.now();
    log.error('Redis connection error; delivery waits until Redis answers again', { err: err.message });
  }

  // --- the relay -------------------------------------------------------------------------

  let relaying: Promise<void> | undefined;
  let relayAgain = false;
  let relayTimer: NodeJS.Timeout | undefined;

  /** Run the relay within a few milliseconds, coalescing kicks (a burst of forwards: one run). */
  function relaySoon(ms = 2) {
    if (!running || relayTimer) return;
    relayTimer = setTimeout(() => {
      relayTimer = undefined;
      void relay();
    }, ms);
  }

  function relay(): Promise<void> {
    if (relaying) {
      relayAgain = true;
      return relaying;
    }
    relaying = (async () => {
      try {
        do {
          relayAgain = false;
          while (running && (await relayBatch()) === BATCH) {
            // a full batch: there may be more
          }
        } while (running && relayAgain);
      } catch (err) {
        log.error('cannot relay outbox rows to Redis; retrying', { err: (err as Error).message });
      } finally {
        relaying = undefined;
      }
    })();
    return relaying;
  }

  async function relayBatch(): Promise<number> {
    const rows = await ctx.db.query<{ id: string; peer: string; attempts: number; delay_ms: number }>(
      sql('relayPending'),
      [[...byPartner.keys()], BATCH],
    );
    if (rows.length === 0) return 0;
    const groups = new Map<string, typeof rows>();
    for (const r of rows) groups.set(r.peer, [...(groups.get(r.peer) ?? []), r]);
    for (const [peer, group] of groups) {
      const pq = byPartner.get(peer)!;
      try {
        // A row attempted before (redriven, or its job ended while it waited for an earlier
        // message of its case) may still have a stale job, e.g. delayed until a retry time
        // that no longer holds: replace it, or the new job would be a no-op duplicate.
        const seen = group.filter((r) => r.attempts > 0);
        if (seen.length) await removeFinishedOrWaiting(pq.queue, await existing(pq.queue, seen));
        await pq.queue.addBulk(group.map((r) => jobOf(r.id, r.delay_ms)));
      } catch (err) {
        log.error('cannot add delivery jobs to Redis; the rows are relayed again later', {
          partner: peer,
          count: group.length,
          err: (err as Error).message,
        });
        await ctx.db
          .query(sql('unrelay'), [group.map((r) => r.peer), group.map((r) => r.id)])
          .catch(() => undefined); // the reconciler re-adds them otherwise
      }
    }
    return rows.length;
  }

  const jobOf = (id: string, delayMs: number) => ({
    name: 'deliver',
    data: {},
    opts: { jobId: id, ...(delayMs > 0 ? { delay: delayMs } : {}) },
  });

  /** The ids among `rows` that have a job hash in Redis, and whether it is finished. */
  async function existing(queue: Queue, rows: { id: string }[]) {
    const pipe = producer!.pipeline();
    for (const r of rows) {
      pipe.exists(queue.toKey(r.id));
      pipe.zscore(queue.keys.completed!, r.id);
      pipe.zscore(queue.keys.failed!, r.id);
    }
    const res = (await pipe.exec()) ?? [];
    return rows.map((r, i) => {
      const [e1, exists] = res[3 * i]!;
      if (e1) throw e1;
      const finished = res[3 * i + 1]![1] !== null || res[3 * i + 2]![1] !== null;
      return { id: r.id, exists: exists === 1, finished };
    });
  }

  /** Remove these jobs unless one is being processed (its lock makes `remove` refuse it). */
  async function removeFinishedOrWaiting(queue: Queue, jobs: { id: string; exists: boolean }[]) {
    for (const j of jobs.filter((x) => x.exists)) {
      try {
        await queue.remove(j.id);
      } catch {
        // active: it ends by itself; the reconciler looks again
      }
    }
  }

  // --- the worker ------------------------------------------------------------------------
  //
  // The worker takes up to a few batches of jobs at once (its fetch window, `fitWindow`);
  // the lane decides how many requests go out: each free request slot (circuit closed, rate
  // token left) carries up to one batch of the jobs waiting here. Their rows are claimed with
  // one statement, sent as one batch (or one by one to a partner without batches), and each
  // job is settled with its own row's outcome.

  async function processJob(pq: PartnerQueue, job: Job, token: string | undefined): Promise<void> {
    const { lane } = pq;
    const id = job.id!;
    const peer = lane.partner.country;
    const lease = leaseOf(lane);
    try {
      const r = await dispatch(pq, id);
      if (r.kind === 'release') return await later(job, token, 0);
      if (r.kind === 'circuit') {
        pause(pq);
        return await later(job, token, untilProbe(lane));
      }
      if (r.kind === 'unclaimed') return await notClaimed(job, token, peer, id);
      if (!lane.breaker.allows()) pause(pq);
      // An unexpected failure left the row `sending`: it is owed again when its lease ends.
      if (!r.result) return await later(job, token, lease + 1_000);
      if (r.result.outcome === 'retrying') {
        const [w] = await ctx.db.query<{ wait_ms: number }>(sql('outboxWait'), [peer, id]);
        if (w) return await later(job, token, w.wait_ms + 5);
      }
      // A later message of the case may be due now: the relay hands it to Redis.
      if (r.result.outcome === 'delivered' && r.row.case_id) relaySoon(5);
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      log.error('delivery job failed unexpectedly; it is tried again', {
        partner: peer,
        messageId: id,
        err: (err as Error).message,
      });
      // If even this fails the job fails; the reconciler re-adds it.
      await later(job, token, Math.max(pollIntervalMs, 1_000));
    }
  }

  const leaseOf = (lane: Lane) => 2 * lane.partner.delivery.requestTimeoutMs + 30_000;

  /** Wait for this job's turn in the lane; resolves with what became of its row. */
  function dispatch(pq: PartnerQueue, id: string): Promise<Settled> {
    return new Promise((resolve, reject) => {
      pq.waiting.push({ id, resolve, reject });
      pump(pq);
    });
  }

  /**
   * Start as many requests as the lane allows, each with up to one batch of waiting jobs.
   * Runs when a job arrives (in the same turn as the others that arrive with it), when a
   * request ends, and when a rate token is due.
   */
  function pump(pq: PartnerQueue) {
    if (pq.pumping) return;
    pq.pumping = true;
    setImmediate(() => {
      pq.pumping = false;
      void pumpNow(pq);
    });
  }

  async function pumpNow(pq: PartnerQueue) {
    const { lane } = pq;
    if (pq.waiting.length === 0) return;
    if (!running) {
      for (const w of pq.waiting.splice(0)) w.resolve({ kind: 'release' });
      return;
    }
    if (!lane.breaker.allows()) {
      for (const w of pq.waiting.splice(0)) w.resolve({ kind: 'circuit' });
      return;
    }
    if (pq.discovering) return; // it pumps again when answered
    if (lanes.discoveryDue(lane)) {
      // Once per partner (and after its circuit closes): does it take batches? Until a ping
      // says, single messages.
      pq.discovering = lanes.discover(lane).finally(() => {
        pq.discovering = undefined;
        fitWindow(pq);
        pump(pq);
      });
      return;
    }
    fitWindow(pq);
    // No free slot: a finishing request pumps again.
    const room = lanes.capacity(lane);
    if (room < 1 || pq.tokenTimer) return;
    const per = lane.batch?.max ?? 1;
    const take = pq.waiting.splice(0, room * per);
    // Hold the slots over the rate tokens and the claim so the next pump does not hand them
    // out again; `attempt` / `attemptBatch` take them for good.
    let slots = Math.ceil(take.length / per);
    lane.inFlight += slots;
    if (lane.partner.delivery.ratePerSecond > 0) {
      const { granted, waitMs } = await tokens(lane, slots);
      if (granted < slots) {
        // The jobs without a token wait at the front for the next one.
        pq.waiting.unshift(...take.splice(granted * per));
        lane.inFlight -= slots - granted;
        slots = granted;
        pq.tokenTimer ??= setTimeout(() => {
          pq.tokenTimer = undefined;
          pump(pq);
        }, waitMs);
        if (slots === 0) return;
      }
    }
    let rows: OutboxRow[];
    try {
      rows = await claim(
        pq,
        take.map((w) => w.id),
      );
    } catch (err) {
      for (const w of take) w.reject(err as Error);
      return;
    } finally {
      lane.inFlight -= slots;
      if (pq.waiting.length) pump(pq);
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    const claimed = take.filter((w) => byId.has(w.id));
    for (const w of take) if (!byId.has(w.id)) w.resolve({ kind: 'unclaimed' });
    for (let i = 0; i < claimed.length; i += per) {
      const group = claimed.slice(i, i + per);
      const groupRows = group.map((w) => byId.get(w.id)!);
      const attempt =
        group.length > 1
          ? lanes.attemptBatch(lane, groupRows)
          : lanes.attempt(lane, groupRows[0]!).then((r) => (r ? [r] : undefined));
      void attempt.then((results) => {
        for (const [j, w] of group.entries())
          w.resolve({ kind: 'attempted', row: groupRows[j]!, result: results?.[j] });
        pump(pq);
      });
    }
  }

  /**
   * Up to `want` of the partner's rate tokens, from the bucket all replicas share. A Redis
   * that does not answer grants none (its jobs could not be settled either): ask again in 1 s.
   */
  async function tokens(lane: Lane, want: number): Promise<RateGrant> {
    const { country, delivery } = lane.partner;
    try {
      return await buckets.take(country, delivery.ratePerSecond, want);
    } catch (err) {
      redisError(err as Error);
      return { granted: 0, waitMs: 1_000 };
    }
  }

  /**
   * The worker's fetch window: the partner's concurrency, or, once it takes batches, up to
   * `BATCHES_IN_WINDOW` full batches (fewer when its concurrency is lower).
   */
  function fitWindow(pq: PartnerQueue) {
    const { concurrency } = pq.lane.partner.delivery;
    const batch = pq.lane.batch?.max ?? 1;
    const window = batch > 1 ? Math.min(concurrency, BATCHES_IN_WINDOW) * batch : concurrency;
    if (pq.worker.concurrency !== window) pq.worker.concurrency = window;
  }

  /** Claim the rows of these jobs in one statement (the same rules as `claimDue`). */
  function claim(pq: PartnerQueue, ids: string[]): Promise<OutboxRow[]> {
    return ctx.db.query<OutboxRow>(sql('claimMany'), [pq.lane.partner.country, ids, leaseOf(pq.lane)]);
  }

  /** The job claimed nothing: done, or look again when the row is due. */
  async function notClaimed(job: Job, token: string | undefined, peer: string, id: string) {
    const [w] = await ctx.db.query<{ state: string; wait_ms: number; blocked: boolean }>(sql('outboxWait'), [
      peer,
      id,
    ]);
    // Delivered, dead (a redrive relays it again), or gone: the job is done.
    if (!w || (w.state !== 'queued' && w.state !== 'retrying' && w.state !== 'sending')) return;
    if (w.wait_ms > 0) return later(job, token, w.wait_ms + 5);
    if (w.blocked) {
      // Waiting for an earlier message of its case, which may take long (retries, a dead
      // letter): the job ends and the relay brings the row back once that one is delivered.
      await ctx.db.query(sql('unrelayBlocked'), [peer, id]);
      return;
    }
    // Due but locked by another claimer for a moment.
    return later(job, token, LOCKED_RETRY_MS + Math.random() * LOCKED_RETRY_MS);
  }

  /** Put the job back in Redis as delayed by `ms` (0: at once, e.g. for another worker). */
  async function later(job: Job, token: string | undefined, ms: number): Promise<never> {
    await job.moveToDelayed(Date.now() + Math.max(0, Math.round(ms)), token);
    throw new DelayedError();
  }

  /** When the open circuit of `lane` is probed next (the probe may close it). */
  function untilProbe(lane: Lane): number {
    const snap = lane.breaker.snapshot();
    const last = Date.parse(snap.lastProbeAt ?? snap.openedAt ?? new Date().toISOString());
    const wait = last + lane.partner.delivery.circuitProbeIntervalMs - Date.now();
    return Math.max(50, wait) + 20 + Math.random() * 100;
  }

  /** This process's circuit to the partner opened: stop taking its jobs until it closes. */
  function pause(pq: PartnerQueue) {
    if (pq.paused) return;
    pq.paused = true;
    pq.worker.pause(true).catch(() => undefined);
  }

  function resumeClosed() {
    for (const pq of byPartner.values()) {
      if (pq.paused && pq.lane.breaker.allows()) {
        pq.paused = false;
        pq.worker.resume().catch(() => undefined);
      }
    }
  }

  // --- the reconciler --------------------------------------------------------------------

  async function reconcile(): Promise<void> {
    for (const pq of byPartner.values()) {
      const peer = pq.lane.partner.country;
      let after = '0';
      let readded = 0;
      try {
        for (;;) {
          const rows = await ctx.db.query<{ id: string; seq: string; delay_ms: number }>(
            sql('reconcileCandidates'),
            [peer, after, BATCH],
          );
          if (rows.length === 0) break;
          after = rows[rows.length - 1]!.seq;
          const state = await existing(pq.queue, rows);
          const lost = state.filter((s) => !s.exists || s.finished);
          if (lost.length) {
            await removeFinishedOrWaiting(
              pq.queue,
              lost.filter((s) => s.exists),
            );
            const delays = new Map(rows.map((r) => [r.id, r.delay_ms]));
            await pq.queue.addBulk(lost.map((s) => jobOf(s.id, delays.get(s.id)!)));
            readded += lost.length;
          }
          if (rows.length < BATCH) break;
        }
      } catch (err) {
        log.error('cannot reconcile the outbox with Redis; will try again', {
          partner: peer,
          err: (err as Error).message,
        });
      }
      if (readded) {
        log.warn('delivery jobs missing in Redis were added again from the outbox', {
          partner: peer,
          count: readded,
        });
      }
    }
  }

  // --- maintenance -----------------------------------------------------------------------

  let maintaining: Promise<void> | undefined;
  const maintain = (every: number) => {
    maintaining ??= (async () => {
      await lanes.maintain(every);
      resumeClosed();
      if (running && Date.now() - lastReconcile >= every) {
        lastReconcile = Date.now();
        await reconcile();
      }
    })().finally(() => {
      maintaining = undefined;
    });
    return maintaining;
  };
  // As the embedded driver: ticks at half the shortest probe interval so a probe (and the
  // worker's resume) is never a whole tick late; the sweeps and the reconciler run every
  // maintenanceIntervalMs.
  const tick = Math.min(
    maintenanceIntervalMs,
    ...ctx.config.partners.map((p) => p.delivery.circuitProbeIntervalMs / 2),
  );

  return {
    driver: 'bullmq',
    start() {
      if (running) return;
      running = true;
      producer ??= connect(false);
      consumer = connect(true);
      // A replica starting while a partner's circuit is open elsewhere knows it before its
      // first job of that partner.
      const synced = lanes.syncCircuits();
      for (const lane of lanes.all()) {
        const name = queueName(ctx.config.country, lane.partner.country);
        const queue = new Queue(name, {
          connection: producer,
          prefix,
          defaultJobOptions: { removeOnComplete: true, removeOnFail: { count: 1000 } },
        });
        queue.on('error', (err) => redisError(err));
        const pq: PartnerQueue = {
          lane,
          queue,
          worker: undefined as unknown as Worker,
          paused: false,
          waiting: [],
          pumping: false,
        };
        pq.worker = new Worker(name, (job, token) => processJob(pq, job, token), {
          connection: consumer,
          prefix,
          concurrency: lane.partner.delivery.concurrency,
          autorun: false,
          // A process that dies mid-attempt leaves its jobs active; another worker takes them
          // back once their lock (30 s) has run out, looking every 10 s; the row's lease
          // decides whether they are sent again.
          stalledInterval: 10_000,
          maxStalledCount: 10,
        });
        pq.worker.on('error', (err) => redisError(err));
        pq.worker.on('failed', (job, err) => {
          log.error('delivery job failed; the reconciler adds it again', {
            partner: lane.partner.country,
            messageId: job?.id,
            err: err.message,
          });
        });
        byPartner.set(lane.partner.country, pq);
        void synced.then(() => {
          if (running) pq.worker.run().catch((err) => redisError(err as Error));
        });
      }
      timers.push(setInterval(() => relaySoon(0), pollIntervalMs));
      timers.push(setInterval(() => void maintain(maintenanceIntervalMs), tick));
      for (const t of timers) t.unref();
      // The first tick reconciles: Redis may have lost jobs while this process was down.
      lastReconcile = 0;
      relaySoon(0);
    },
    kick: () => relaySoon(),
    async health() {
      if (!running || !producer) return { ok: false, detail: 'not started' };
      try {
        await withinASecond(producer.ping());
        return { ok: true };
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      }
    },
    async partners() {
      const local = lanes.status();
      if (running) return local;
      // An API-only replica (`--no-delivery`) sends nothing, so its own circuits never open:
      // it shows those the delivering replicas keep in Redis.
      producer ??= connect(false);
      let states: Map<string, SharedState>;
      try {
        states = await withinASecond(circuits.read(local.map((l) => l.country)));
      } catch {
        return local;
      }
      return local.map((l) => {
        const at = states.get(l.country);
        if (typeof at !== 'number') return l;
        return {
          ...l,
          circuit: { ...l.circuit, state: 'open' as const, openedAt: new Date(at).toISOString() },
        };
      });
    },
    reload: () => lanes.reload(),
    async maintain() {
      await maintain(0);
      // Rows found missing (or new) are in Redis once maintain() returns.
      if (running) await relay();
    },
    async stop() {
      const was = running;
      running = false;
      for (const t of timers) clearInterval(t);
      clearTimeout(relayTimer);
      await relaying;
      await maintaining;
      if (was) {
        // Jobs waiting here for a request slot go back to Redis; close() waits for the jobs
        // being processed: the attempts in flight finish.
        for (const pq of byPartner.values()) {
          clearTimeout(pq.tokenTimer);
          pump(pq);
        }
        await Promise.allSettled([...byPartner.values()].map((pq) => pq.worker.close()));
        await Promise.allSettled([...byPartner.values()].map((pq) => pq.queue.close()));
        byPartner.clear();
      }
      // An API-only replica may have opened the first to read the circuits.
      await Promise.allSettled([producer?.quit(), consumer?.quit()]);
      producer = undefined;
      consumer = undefined;
      await lanes.close();
    },
  };
}

/** `p`, or an error once it has not settled within a second (Redis not answering). */
function withinASecond<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer within 1 s')), 1_000);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
