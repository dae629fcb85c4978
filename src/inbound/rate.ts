/** Per-partner token bucket: `ratePerSecond` sustained, bursts of one second's worth. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Take one token for `key`; false when the bucket is empty. */
  take(key: string, perSecond: number): boolean {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: perSecond, at: t };
    b.tokens = Math.min(perSecond, b.tokens + ((t - b.at) / 1000) * perSecond);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
