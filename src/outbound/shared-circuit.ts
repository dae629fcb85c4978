/**
 * A partner's circuit shared by every gateway process on one Redis, for the BullMQ driver.
 * Each replica keeps its own breaker (breaker.ts) and feeds it its own attempts; Redis holds
 * what they must agree on:
 * - `<prefix>:icros-circuit:<GW>:<PARTNER>`: while the circuit is open, when it opened (ms
 *   since the epoch). The replica whose failures open it sets it; the others, at their next
 *   maintenance tick, open theirs as of that time and stop sending. When a probe closes it,
 *   `closed` for a while (`CLOSED_MARK_MS`): the others close theirs at their next tick. A
 *   key that is gone while a replica's circuit is open (Redis flushed or restarted) is set
 *   again by that replica, so a lost key neither closes a circuit nor leaves it unaudited;
 * - `<prefix>:icros-probe:<GW>:<PARTNER>`, a lock held for one probe interval: one replica
 *   probes `GET /v1/ping` per interval, not each of them.
 * Redis not answering leaves each replica with its own breaker, as with the embedded driver.
 */
import type { Redis } from 'ioredis';

/** How long the `closed` mark stays: far more than a maintenance tick (half a probe interval). */
const CLOSED_MARK_MS = 5 * 60_000;

/**
 * KEYS[1] the circuit key, ARGV[1] when it opened here. Sets it unless it already holds an
 * opening (another replica's, which stays); returns the opening it holds now.
 */
const OPEN = `
local v = redis.call('GET', KEYS[1])
if v and v ~= 'closed' then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

/** A partner's circuit as Redis has it: open since (ms since the epoch), or closed by a probe. */
export type SharedState = number | 'closed';

export interface SharedCircuit {
  /** The circuit opened here at `openedAt`; false when that could not be said to Redis. */
  opened(partner: string, openedAt: number): Promise<boolean>;
  /** A probe here closed the circuit. */
  closed(partner: string): Promise<void>;
  /** What Redis holds for each partner (none: nothing, or lost). Throws when Redis does not answer. */
  read(partners: string[]): Promise<Map<string, SharedState>>;
  /** May this replica probe `partner` now (no other did within `intervalMs`)? */
  mayProbe(partner: string, intervalMs: number): Promise<boolean>;
}

type WithOpen = Redis & { icrosOpenCircuit(key: string, openedAt: string): Promise<string> };

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
    const r = connection() as WithOpen | undefined;
    if (!r) throw new Error('not connected to Redis');
    if (typeof r.icrosOpenCircuit !== 'function')
      r.defineCommand('icrosOpenCircuit', { numberOfKeys: 1, lua: OPEN });
    return r;
  };
  return {
    async opened(partner, openedAt) {
      try {
        await redis().icrosOpenCircuit(key('circuit', partner), String(openedAt));
        return true;
      } catch {
        return false;
      }
    },
    async closed(partner) {
      try {
        await redis().set(key('circuit', partner), 'closed', 'PX', CLOSED_MARK_MS);
      } catch {
        // the others keep theirs open until a probe of their own answers
      }
    },
    async read(partners) {
      const states = new Map<string, SharedState>();
      if (partners.length === 0) return states;
      const values = await redis().mget(...partners.map((p) => key('circuit', p)));
      for (const [i, v] of values.entries()) {
        if (v === 'closed') states.set(partners[i]!, 'closed');
        else if (v !== null && Number.isFinite(Number(v))) states.set(partners[i]!, Number(v));
      }
      return states;
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
