/**
 * A partner's circuit shared by every gateway process on one Redis, for the BullMQ driver.
 * Each replica keeps its own breaker (breaker.ts) and feeds it its own attempts; Redis holds
 * what they must agree on:
 * - `<prefix>:icros-circuit:<GW>:<PARTNER>`, present while the circuit is open: when it
 *   opened (ms since the epoch). The replica whose failures open it sets it; the others,
 *   at their next maintenance tick, open theirs as of that time and stop sending;
 * - `<prefix>:icros-probe:<GW>:<PARTNER>`, a lock held for one probe interval: one replica
 *   probes `GET /v1/ping` per interval, not each of them. The one whose probe answers closes
 *   its circuit and deletes the first key; the others close theirs at their next tick.
 * Redis not answering leaves each replica with its own breaker, as with the embedded driver.
 */
import type { Redis } from 'ioredis';

export interface SharedCircuit {
  /** The circuit opened here at `openedAt`; false when that could not be said to Redis. */
  opened(partner: string, openedAt: number): Promise<boolean>;
  /** A probe here closed the circuit. */
  closed(partner: string): Promise<void>;
  /** When each partner's circuit opened, for those open anywhere. Throws when Redis does not answer. */
  read(partners: string[]): Promise<Map<string, number>>;
  /** May this replica probe `partner` now (no other did within `intervalMs`)? */
  mayProbe(partner: string, intervalMs: number): Promise<boolean>;
}

/**
 * The circuits of gateway `gateway`'s partners, under `prefix` (that of its queues), on the
 * connection `connection()` returns (none before the driver starts: each replica alone).
 */
export function sharedCircuit(
  connection: () => Redis | undefined,
  prefix: string,
  gateway: string,
): SharedCircuit {
  const key = (what: 'circuit' | 'probe', partner: string) => `${prefix}:icros-${what}:${gateway}:${partner}`;
  const redis = () => {
    const r = connection();
    if (!r) throw new Error('not connected to Redis');
    return r;
  };
  return {
    async opened(partner, openedAt) {
      try {
        // NX: a circuit another replica opened first keeps its time.
        await redis().set(key('circuit', partner), String(openedAt), 'NX');
        return true;
      } catch {
        return false;
      }
    },
    async closed(partner) {
      try {
        await redis().del(key('circuit', partner));
      } catch {
        // the others keep theirs open until a probe of their own answers
      }
    },
    async read(partners) {
      const open = new Map<string, number>();
      if (partners.length === 0) return open;
      const values = await redis().mget(...partners.map((p) => key('circuit', p)));
      for (const [i, v] of values.entries()) {
        const at = Number(v);
        if (v !== null && Number.isFinite(at)) open.set(partners[i]!, at);
      }
      return open;
    },
    async mayProbe(partner, intervalMs) {
      try {
        return (await redis().set(key('probe', partner), '1', 'PX', Math.max(1, intervalMs), 'NX')) === 'OK';
      } catch {
        return true; // Redis does not answer: probe as if alone
      }
    },
  };
}
