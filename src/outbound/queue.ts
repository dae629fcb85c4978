/**
 * The delivery queue interface. The outbox table is the source of truth; a driver only
 * decides when each due row is attempted: `embedded` polls the outbox in process, `bullmq`
 * shares the work between processes through Redis. Both attempt rows through the same
 * per-partner lanes (lanes.ts: client, circuit breaker, rate, policy).
 */
import type { LaneStatus } from './lanes.js';

export interface DeliveryQueue {
  readonly driver: 'embedded' | 'bullmq';
  start(): void;
  /** New rows were written (or redriven): look now rather than at the next poll. */
  kick(): void;
  /** Circuit and in-flight state per partner, for `GET /api/partners`. */
  partners(): Promise<LaneStatus[]>;
  /** Run the periodic work now (expiry, ages, probes); tests and the CLI use it. */
  maintain(): Promise<void>;
  /** Stop claiming; wait for the attempts in flight. */
  stop(): Promise<void>;
  /** Certificates or partners were reloaded (reload.ts): rebuild each partner's client from `ctx`. */
  reload?(): void;
  /** Whether the queue's backend answers (`/readyz`); absent when there is none (embedded). */
  health?(): Promise<{ ok: boolean; detail?: string }>;
}
