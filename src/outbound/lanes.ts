/**
 * One lane per partner, shared by both queue drivers: the partner's mTLS client, its circuit
 * breaker, its rate limit and its in-flight count, and the attempt itself (deliverOne, then
 * the breaker). `maintain()` runs the periodic work: probing open circuits, expiring messages
 * past their maximum age, and the oldest-queued gauges and warnings.
 */
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { log } from '../log.js';
import { sql } from '../store/sql.js';
import { CircuitBreaker, type CircuitSnapshot } from './breaker.js';
import { createPartnerClient, type PartnerClient } from './client.js';
import { type AttemptResult, deliverBatch, deliverOne, type OutboxRow, type Outcome } from './deliver.js';
import type { SharedCircuit, SharedState } from './shared-circuit.js';

/** A partner whose ping did not say whether it takes batches is asked again this much later (ms). */
const REDISCOVER_MS = 5_000;

export interface LaneOptions {
  /** Called after each attempt (the demo, tests and benches watch outcomes). */
  onOutcome?: (row: OutboxRow, outcome: Outcome) => void;
}

export interface Lane {
  partner: Partner;
  client: PartnerClient;
  breaker: CircuitBreaker;
  inFlight: number;
  tokens: number;
  tokensAt: number;
  /** The queued-age warning is on (said once when crossing, once when back under). */
  ageAlert: boolean;
  /**
   * Batches towards this partner: its path and the largest batch to send, once its ping
   * advertised them; null when it does not (or batching is off); undefined until asked.
   */
  batch: { path: string; max: number } | null | undefined;
  /** When `batch` was last asked for (ms since the epoch; 0: ask at the next chance). */
  batchAskedAt: number;
  /** The open circuit is known to the other replicas (the shared key was set, by us or them). */
  sharedOpen: boolean;
}

/** What `GET /api/partners` shows of a lane. */
export interface LaneStatus {
  country: string;
  circuit: CircuitSnapshot;
  inFlight: number;
}

/** What a driver shares with the other replicas (the BullMQ driver, through Redis). */
export interface Sharing {
  /** The rate is kept elsewhere (shared-rate.ts): the lanes count slots only. */
  rate?: boolean;
  /** The partners' circuits (shared-circuit.ts). */
  circuits?: SharedCircuit;
}

export class Lanes {
  private readonly lanes = new Map<string, Lane>();
  private lastSweep = 0;
  /** Peers with open messages that are not configured partners, as the last sweep saw them. */
  private readonly unconfigured = new Set<string>();

  /**
   * Alone (the embedded driver), each lane keeps its partner's rate with a bucket of this
   * process's own, and its circuit to itself. The BullMQ driver shares both with the other
   * replicas through Redis (`shared`).
   */
  constructor(
    private readonly ctx: GatewayContext,
    private readonly opts: LaneOptions = {},
    private readonly shared: Sharing = {},
  ) {}

  /** The lane of a registered partner; undefined for a country no longer in the registry. */
  get(country: string): Lane | undefined {
    let lane = this.lanes.get(country);
    if (!lane) {
      const partner = this.ctx.registry.byCountry(country);
      if (!partner) return undefined;
      const p = partner.delivery;
      lane = {
        partner,
        client: createPartnerClient(this.ctx.config, partner),
        breaker: new CircuitBreaker(p.circuitFailureThreshold, p.circuitProbeIntervalMs),
        inFlight: 0,
        tokens: p.ratePerSecond,
        tokensAt: performance.now(),
        ageAlert: false,
        batch: p.batchMaxMessages > 1 ? undefined : null,
        batchAskedAt: 0,
        sharedOpen: false,
      };
      this.lanes.set(country, lane);
    }
    return lane;
  }

  all(): Lane[] {
    return this.ctx.config.partners.map((p) => this.get(p.country)!);
  }

  /**
   * How many attempts may start towards this partner now: none while its circuit is open;
   * otherwise its free concurrency, and (with a local rate) no more than its rate allows.
   */
  capacity(lane: Lane): number {
    if (!lane.breaker.allows()) return 0;
    const free = lane.partner.delivery.concurrency - lane.inFlight;
    const rate = this.shared.rate ? 0 : lane.partner.delivery.ratePerSecond;
    if (rate === 0 || free <= 0) return Math.max(0, free);
    const t = performance.now();
    lane.tokens = Math.min(rate, lane.tokens + ((t - lane.tokensAt) / 1000) * rate);
    lane.tokensAt = t;
    return Math.max(0, Math.min(free, Math.floor(lane.tokens)));
  }

  /** Run one attempt of a claimed row and feed the breaker. Never throws. */
  async attempt(lane: Lane, row: OutboxRow): Promise<AttemptResult | undefined> {
    lane.inFlight += 1;
    if (!this.shared.rate && lane.partner.delivery.ratePerSecond > 0) lane.tokens -= 1;
    try {
      const result = await deliverOne(this.ctx, lane.partner, lane.client, row);
      this.opts.onOutcome?.(row, result.outcome);
      const changed = lane.breaker.record(result.kind);
      if (changed === 'open') await this.circuitChanged(lane, 'open');
      return result;
    } catch (err) {
      log.error('delivery attempt failed unexpectedly; the lease will expire and it is retried', {
        messageId: row.id,
        err: (err as Error).message,
      });
      return undefined;
    } finally {
      lane.inFlight -= 1;
    }
  }

  /**
   * Is it time to ask the partner whether it takes batches: not known yet, and not asked
   * within `REDISCOVER_MS` (a partner whose ping does not answer is not asked on every round)?
   */
  discoveryDue(lane: Lane): boolean {
    return lane.batch === undefined && Date.now() - lane.batchAskedAt >= REDISCOVER_MS;
  }

  /**
   * Ask the partner (`GET /v1/ping`) whether it takes batches: `capabilities.batch.path` and
   * `maxMessages`. No answer leaves it unknown (single messages meanwhile, asked again once
   * `discoveryDue`); an answer without the capability means single messages.
   */
  async discover(lane: Lane): Promise<void> {
    if (lane.batch !== undefined) return;
    lane.batchAskedAt = Date.now();
    try {
      const res = await lane.client.ping();
      if (res.status !== 200) return;
      const cap = (
        JSON.parse(res.body) as { capabilities?: { batch?: { path?: unknown; maxMessages?: unknown } } }
      ).capabilities?.batch;
      const path =
        typeof cap?.path === 'string' && /^\/[\x21-\x7e]{1,200}$/.test(cap.path) ? cap.path : undefined;
      const max = Math.min(
        lane.partner.delivery.batchMaxMessages,
        typeof cap?.maxMessages === 'number' && Number.isInteger(cap.maxMessages) ? cap.maxMessages : 0,
      );
      lane.batch = path && max > 1 ? { path, max } : null;
      log.info('partner capabilities', {
        partner: lane.partner.country,
        batch: lane.batch ? { path: lane.batch.path, maxMessages: lane.batch.max } : false,
      });
    } catch {
      // unreachable for now: stays unknown, single messages meanwhile
    }
  }

  /**
   * One batch request for several claimed rows (deliverBatch); feeds the breaker once. The
   * outcome of each row, in order (the BullMQ driver settles each row's job with it);
   * undefined when the attempt failed unexpectedly.
   */
  async attemptBatch(lane: Lane, rows: OutboxRow[]): Promise<AttemptResult[] | undefined> {
    lane.inFlight += 1;
    if (!this.shared.rate && lane.partner.delivery.ratePerSecond > 0) lane.tokens -= 1;
    try {
      const { results, status } = await deliverBatch(
        this.ctx,
        lane.partner,
        lane.client,
        lane.batch!.path,
        rows,
      );
      for (const [i, r] of results.entries()) this.opts.onOutcome?.(rows[i]!, r.outcome);
      // docs/protocol.md §13: no batch endpoint after all → single messages; too big → halve.
      if (status === 404 || status === 405 || status === 415) {
        log.warn('partner refused the batch endpoint; sending single messages', {
          partner: lane.partner.country,
          status,
        });
        lane.batch = null;
      } else if (status === 413 && lane.batch) {
        lane.batch = lane.batch.max > 2 ? { ...lane.batch, max: Math.floor(lane.batch.max / 2) } : null;
      }
      const kind = results.some((r) => r.kind === 'success' || r.kind === 'permanent')
        ? 'success'
        : 'transient';
      if (lane.breaker.record(kind) === 'open') await this.circuitChanged(lane, 'open');
      return results;
    } catch (err) {
      log.error('batch delivery failed unexpectedly; the leases will expire and they are retried', {
        partner: lane.partner.country,
        messages: rows.length,
        err: (err as Error).message,
      });
      return undefined;
    } finally {
      lane.inFlight -= 1;
    }
  }

  /** Periodic work; cheap when nothing is wrong. `sweepEveryMs` spaces the database sweeps. */
  async maintain(sweepEveryMs: number): Promise<void> {
    await this.syncCircuits();
    const { circuits } = this.shared;
    for (const lane of this.all()) {
      if (!lane.breaker.probeDue()) continue;
      const { country, delivery } = lane.partner;
      // One replica probes per interval; the others learn the outcome at their next sync.
      if (circuits && !(await circuits.mayProbe(country, delivery.circuitProbeIntervalMs))) continue;
      let error: string | undefined;
      try {
        const res = await lane.client.ping();
        if (res.status !== 200) error = `GET /v1/ping answered ${res.status}`;
      } catch (err) {
        error = (err as Error).message;
      }
      if (lane.breaker.probed(error) === 'closed') await this.circuitChanged(lane, 'closed');
    }
    const now = Date.now();
    if (now - this.lastSweep < sweepEveryMs) return;
    this.lastSweep = now;
    await this.expire();
    await this.watchAges();
  }

  /**
   * Open the circuits other replicas opened (as of their time), and close those a probe
   * elsewhere closed. Redis not answering: each keeps its own until it does.
   * Runs with each `maintain()`, and once before a BullMQ worker takes its first job.
   */
  async syncCircuits(): Promise<void> {
    const { circuits } = this.shared;
    if (!circuits) return;
    const lanes = this.all();
    let states: Map<string, SharedState>;
    try {
      states = await circuits.read(lanes.map((l) => l.partner.country));
    } catch {
      return;
    }
    for (const lane of lanes) {
      const country = lane.partner.country;
      const shared = states.get(country);
      if (typeof shared === 'number') {
        lane.sharedOpen = true;
        if (lane.breaker.adopt(shared) === 'open') await this.circuitChanged(lane, 'open', true);
      } else if (shared === 'closed' && lane.sharedOpen) {
        lane.sharedOpen = false;
        if (lane.breaker.reset() === 'closed') await this.circuitChanged(lane, 'closed', true);
      } else if (lane.breaker.openedSince !== undefined) {
        // Open here, and Redis does not say so: its key was lost (a flush, a restart without
        // persistence) or could not be set. Say it (again); a lost key closes nothing.
        lane.sharedOpen = await circuits.opened(country, lane.breaker.openedSince);
      }
    }
  }

  status(): LaneStatus[] {
    return this.all().map((l) => ({
      country: l.partner.country,
      circuit: l.breaker.snapshot(),
      inFlight: l.inFlight,
    }));
  }

  /**
   * After a reload (reload.ts): each lane takes its partner's new registry entry and a client
   * with the new TLS material; the old client finishes the requests it has, then closes. A
   * partner no longer registered loses its lane.
   */
  reload(): void {
    for (const [country, lane] of this.lanes) {
      const old = lane.client;
      const partner = this.ctx.registry.byCountry(country);
      if (partner) {
        lane.partner = partner;
        lane.client = createPartnerClient(this.ctx.config, partner);
      } else {
        this.lanes.delete(country);
      }
      void old.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.lanes.values()].map((l) => l.client.close()));
    this.lanes.clear();
  }

  /**
   * The circuit of `lane` opened or closed: here (this process's attempts or probe), or
   * `elsewhere` (another replica's, learnt from Redis), which that replica audited.
   */
  private async circuitChanged(lane: Lane, state: 'open' | 'closed', elsewhere = false): Promise<void> {
    const country = lane.partner.country;
    this.ctx.metrics.circuitOpen.set({ partner: country }, state === 'open' ? 1 : 0);
    const snap = lane.breaker.snapshot();
    const { circuits } = this.shared;
    if (state === 'open') {
      if (elsewhere) {
        log.warn('circuit open (opened by another replica): sending to this partner paused', {
          partner: country,
          openedAt: snap.openedAt,
        });
      } else {
        log.warn('circuit open: sending to this partner paused; probing GET /v1/ping', {
          partner: country,
          consecutiveFailures: lane.partner.delivery.circuitFailureThreshold,
          probeIntervalMs: lane.partner.delivery.circuitProbeIntervalMs,
        });
        if (circuits)
          lane.sharedOpen = await circuits.opened(country, lane.breaker.openedSince ?? Date.now());
      }
    } else {
      log.info(
        elsewhere
          ? "circuit closed by another replica's probe: sending resumes"
          : 'circuit closed: the partner answers again; sending resumes',
        { partner: country },
      );
      if (circuits && !elsewhere) await circuits.closed(country);
      lane.sharedOpen = false;
      // It may have been upgraded or reconfigured while away: ask for its capabilities again.
      if (lane.partner.delivery.batchMaxMessages > 1) {
        lane.batch = undefined;
        lane.batchAskedAt = 0;
      }
    }
    if (elsewhere) return;
    try {
      await this.ctx.tx.background.append((q) =>
        q.audit({
          actor: { kind: 'system', id: 'delivery' },
          action: state === 'open' ? 'partner.circuit.opened' : 'partner.circuit.closed',
          subject: { partner: country },
          detail:
            state === 'open'
              ? { threshold: lane.partner.delivery.circuitFailureThreshold }
              : { probe: 'ok', openedAt: snap.openedAt ?? null },
        }),
      );
    } catch (err) {
      log.error('cannot audit a circuit change', { partner: country, err: (err as Error).message });
    }
  }

  /**
   * Messages past their partner's maxAgeSeconds that are waiting (not being sent) die. A
   * partner taken out of the configuration leaves its open messages behind with nothing to
   * send them: they die at the default maxAgeSeconds (and a row whose lease ran out with
   * them), so none waits forever; putting the partner back and a redrive sends them.
   */
  private async expire(): Promise<void> {
    const targets = this.all().map((lane) => ({
      country: lane.partner.country,
      maxAgeSeconds: lane.partner.delivery.maxAgeSeconds,
      removed: false,
    }));
    // Found by the last sweep's watchAges, which reads the open messages of every peer.
    for (const country of this.unconfigured) {
      if (this.ctx.registry.byCountry(country)) continue;
      targets.push({ country, maxAgeSeconds: this.ctx.config.delivery.maxAgeSeconds, removed: true });
    }
    for (const { country, maxAgeSeconds, removed } of targets) {
      const problem = {
        code: 'MESSAGE_EXPIRED',
        detail: `not delivered within ${maxAgeSeconds} s of being queued${removed ? `; ${country} is no longer a configured partner` : ''}`,
      };
      try {
        await this.ctx.tx.background(async (q) => {
          const rows = await q.query<{ id: string; case_id: string | null; attempts: number }>(
            sql(removed ? 'expireUnconfigured' : 'expireOld'),
            [country, maxAgeSeconds, JSON.stringify(problem)],
          );
          for (const r of rows) {
            q.audit({
              actor: { kind: 'system', id: 'delivery' },
              action: 'message.dead',
              subject: { message: r.id, partner: country, ...(r.case_id ? { case: r.case_id } : {}) },
              detail: { attempt: r.attempts, code: problem.code, status: null },
            });
          }
          if (rows.length) {
            this.ctx.metrics.dead.inc({ partner: country, code: problem.code }, rows.length);
            log.warn('messages dead: older than the maximum age', {
              partner: country,
              count: rows.length,
              maxAgeSeconds,
              ...(removed ? { configured: false } : {}),
            });
          }
        });
      } catch (err) {
        log.error('cannot expire old messages; will try again', {
          partner: country,
          err: (err as Error).message,
        });
      }
    }
  }

  /** Gauges of open messages and the oldest one's age; a warning when past the threshold. */
  private async watchAges(): Promise<void> {
    let rows: { peer: string; open: number; oldest_age_s: number }[];
    try {
      rows = await this.ctx.db.query(sql('openByPartner'));
    } catch (err) {
      log.error('cannot read the outbox ages', { err: (err as Error).message });
      return;
    }
    const byPeer = new Map(rows.map((r) => [r.peer, r]));
    for (const lane of this.all()) {
      const country = lane.partner.country;
      const row = byPeer.get(country);
      const age = row ? Math.round(Number(row.oldest_age_s)) : 0;
      this.ctx.metrics.openMessages.set({ partner: country }, row?.open ?? 0);
      this.ctx.metrics.oldestQueuedSeconds.set({ partner: country }, age);
      const threshold = lane.partner.delivery.queuedAgeAlertSeconds;
      if (age > threshold && !lane.ageAlert) {
        lane.ageAlert = true;
        log.warn('oldest undelivered message is older than the alert threshold', {
          partner: country,
          oldestAgeSeconds: age,
          thresholdSeconds: threshold,
          open: row?.open ?? 0,
          circuit: lane.breaker.state,
        });
      } else if (age <= threshold && lane.ageAlert) {
        lane.ageAlert = false;
        log.info('oldest undelivered message is back under the alert threshold', { partner: country });
      }
    }
    // Open messages to a peer that is not configured: one warning (the gauges show them too).
    const orphans = rows.filter((r) => !this.ctx.registry.byCountry(r.peer));
    for (const row of orphans) {
      if (this.unconfigured.has(row.peer)) continue;
      this.unconfigured.add(row.peer);
      log.warn('open messages to a partner that is not configured: nothing sends them', {
        partner: row.peer,
        open: row.open,
        diesAfterSeconds: this.ctx.config.delivery.maxAgeSeconds,
      });
    }
    for (const peer of this.unconfigured)
      if (!orphans.some((r) => r.peer === peer)) this.unconfigured.delete(peer);
  }
}
