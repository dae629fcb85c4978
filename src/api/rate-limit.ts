/**
 * Per-token rate limit of the admin API: a token bucket per key holding up to `burst`
 * requests, refilled at `perSecond`. (The partner listener's RateLimiter in inbound/rate.ts
 * has no separate burst and does not say when to retry, which a 429 must.) Per process: with
 * several replicas each applies the limit on its own.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
    /** Above this many keys, full buckets (idle callers) are forgotten. */
    private readonly maxKeys = 10_000,
  ) {}

  /** Take one request for `key`: 0 when allowed, else the seconds to wait before the next. */
  take(key: string): number {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    if (!this.buckets.has(key)) {
      if (this.buckets.size >= this.maxKeys) this.prune(t);
      this.buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }

  private prune(t: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
    }
  }
}
