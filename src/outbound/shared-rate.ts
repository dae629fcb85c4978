/**
 * A partner's rate limit (`ratePerSecond`) shared by every gateway process on one Redis, for
 * the BullMQ driver: one token bucket per partner in Redis, refilled at the rate and holding
 * at most one second's worth, as each process's own bucket does with the embedded driver.
 * Tokens are taken by a Lua script, atomically and on Redis's clock, so the replicas together
 * start at most what the partner allows, however many there are and whatever their clocks
 * say. One request (a single message or a batch) takes one token.
 */
import type { Redis } from 'ioredis';

/**
 * KEYS[1] the bucket (hash: tokens, at in ms); ARGV[1] the rate per second, ARGV[2] the
 * tokens wanted. Returns {granted, ms until the next whole token (0 if one is left)}. The
 * bucket expires once it would be full again, so an idle partner leaves no key behind.
 */
const TAKE = `
local rate = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = rate
  at = now
end
tokens = math.min(rate, tokens + math.max(0, now - at) * rate / 1000)
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((rate - tokens) * 1000 / rate) + 1000)
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
return {granted, wait}
`;

export interface RateGrant {
  /** Requests that may start now (0 to the number asked for). */
  granted: number;
  /** When none is left: milliseconds until the next one. */
  waitMs: number;
}

type WithTake = Redis & {
  icrosTakeTokens(key: string, rate: number, want: number): Promise<[number, number]>;
};

export interface SharedRate {
  /** Take up to `want` tokens of `partner`'s bucket (`rate` per second). */
  take(partner: string, rate: number, want: number): Promise<RateGrant>;
}

/**
 * The buckets of gateway `gateway`'s partners, under `prefix` (that of its queues), on the
 * connection `connection()` returns (none before the driver starts: `take` rejects).
 */
export function sharedRate(connection: () => Redis | undefined, prefix: string, gateway: string): SharedRate {
  return {
    async take(partner, rate, want) {
      if (want < 1) return { granted: 0, waitMs: 0 };
      const r = connection() as WithTake | undefined;
      if (!r) throw new Error('not connected to Redis');
      if (typeof r.icrosTakeTokens !== 'function')
        r.defineCommand('icrosTakeTokens', { numberOfKeys: 1, lua: TAKE });
      const [granted, waitMs] = await r.icrosTakeTokens(rateKey(prefix, gateway, partner), rate, want);
      return { granted, waitMs };
    },
  };
}

/** The Redis key of one partner's bucket. */
export function rateKey(prefix: string, gateway: string, partner: string): string {
  return `${prefix}:icros-rate:${gateway}:${partner}`;
}
