/**
 * Redis for tests. The BullMQ suites run only when REDIS_URL is set, and must not skip in CI
 * (as DATABASE_URL in db.ts). Each test run uses its own key prefix, so parallel or repeated
 * runs on one Redis never see each other's queues, and `dropKeys` removes exactly its keys —
 * which is also how a test makes Redis "lose" every job without touching anyone else's data.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export type Driver = 'embedded' | 'bullmq';

/** The drivers to run a suite on: embedded always, bullmq when REDIS_URL is set. */
export function queueDrivers(): Driver[] {
  if (process.env.CI === 'true' && !process.env.REDIS_URL) {
    throw new Error('CI=true but REDIS_URL is not set: the BullMQ suites may not skip in CI');
  }
  return process.env.REDIS_URL ? ['embedded', 'bullmq'] : ['embedded'];
}

/** A key prefix of its own for one gateway set-up. */
export function testPrefix(): string {
  return `icros-test-${randomBytes(6).toString('hex')}`;
}

/** Delete every key under `prefix` (SCAN, never FLUSHALL: the Redis is shared). */
export async function dropKeys(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return n;
}
