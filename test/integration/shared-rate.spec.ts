/**
 * The partner rate limit with the BullMQ driver holds across replicas: one token bucket per
 * partner in Redis (src/outbound/shared-rate.ts). First the bucket itself, then two FR
 * processes on one database and one Redis sending to a counting stand-in for BE whose
 * `ratePerSecond` is 5: together they start no more than 5 requests a second (bursts of 5),
 * where two buckets of their own would let through twice that. Runs only with REDIS_URL
 * (the BullMQ suites may not skip in CI: `queueDrivers` throws there without it).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { type Gateway, startGateway } from '../../src/main.js';
import type { OutboxRow } from '../../src/outbound/deliver.js';
import { rateKey, sharedRate } from '../../src/outbound/shared-rate.js';
import { type Db, openDb } from '../../src/store/db.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { type CountingPartner, countingPartner } from '../helpers/counting-partner.js';
import { testDb } from '../helpers/db.js';
import { freePort, testConfig, testPki } from '../helpers/federation.js';
import { dropKeys, queueDrivers, testPrefix } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Without REDIS_URL there is no BullMQ driver to test (outside CI only; see above).
if (queueDrivers().includes('bullmq')) {
  describe('partner rate limit shared by BullMQ replicas', function () {
    this.timeout(60_000);
    const url = process.env.REDIS_URL!;
    const prefix = testPrefix();
    after(async () => {
      await dropKeys(url, prefix);
    });

    it('grants at most the bucket, refills at the rate, says how long to wait, and leaves no key when idle', async () => {
      const redis = new Redis(url, { maxRetriesPerRequest: 3 });
      const redis2 = new Redis(url, { maxRetriesPerRequest: 3 });
      try {
        // Gateway "XX": buckets of their own, apart from the processes' below.
        const rate = sharedRate(redis, prefix, 'XX');
        const first = await rate.take('DE', 5, 8);
        expect(first.granted, 'a full bucket holds one second').to.equal(5);
        expect(first.waitMs).to.be.within(150, 200);
        const none = await rate.take('DE', 5, 1);
        expect(none.granted).to.equal(0);
        expect(none.waitMs).to.be.within(100, 200);
        expect((await rate.take('BE', 5, 2)).granted, 'each partner has its own bucket').to.equal(2);
        // Another process (another connection) takes from the same bucket.
        const other = sharedRate(redis2, prefix, 'XX');
        await sleep(450);
        const refilled = await other.take('DE', 5, 8);
        expect(refilled.granted, '450 ms (and the calls) at 5/s').to.be.within(2, 3);
        expect((await rate.take('DE', 5, 0)).granted).to.equal(0);
        const ttl = await redis.pttl(rateKey(prefix, 'XX', 'DE'));
        expect(ttl, 'expires once it would be full again').to.be.within(1_000, 2_000);
      } finally {
        redis.disconnect();
        redis2.disconnect();
      }
    });

    describe('two FR processes sending to one partner', () => {
      const RATE = 5;
      const N = 20;
      let pki: string;
      let be: CountingPartner;
      const dbs: Db[] = [];
      const frs: Gateway[] = [];
      const sentBy = new Map<string, string[]>();

      before(async () => {
        pki = await testPki();
        const bePort = await freePort();
        be = await countingPartner(pki, 'BE', bePort);
        const kind = process.env.DATABASE_URL ? 'postgres' : 'pglite';
        const first = await testDb(kind);
        dbs.push(first.db);
        // Two processes on one database: a second pool on PostgreSQL, the same PGlite otherwise.
        const second = kind === 'postgres' ? await openDb({ ...first.options, poolSize: 5 }) : first.db;
        if (second !== first.db) dbs.unshift(second);
        const doc = JSON.parse(readFileSync(path.join(pki, 'FR', 'gateway.json'), 'utf8')) as {
          partners: { country: string }[];
        };
        const nowhere = await freePort();
        for (const [label, db] of [
          ['fr1', first.db],
          ['fr2', second],
        ] as const) {
          const ports = {
            FR: { partner: await freePort(), admin: await freePort() },
            DE: { partner: nowhere, admin: 1 },
            BE: { partner: bePort, admin: 1 },
          };
          const config = await testConfig('FR', ports, {
            delivery: { pollIntervalMs: 50 },
            partners: doc.partners.map((x) => ({
              ...x,
              url: `https://127.0.0.1:${ports[x.country as 'DE' | 'BE'].partner}`,
              delivery: { ratePerSecond: RATE, concurrency: 4, circuitFailureThreshold: 1000 },
            })),
            redis: { url },
          });
          sentBy.set(label, []);
          frs.push(
            await startGateway(config, {
              db,
              driver: 'bullmq',
              redisPrefix: prefix,
              onOutcome: (row: OutboxRow) => sentBy.get(label)!.push(row.id),
            }),
          );
        }
      });
      after(async () => {
        await Promise.allSettled(frs.map((g) => g.stop()));
        await be?.close();
        for (const db of dbs) await db.close();
      });

      it(`start no more than ${RATE} requests a second together`, async () => {
        const t = token(pki, 'FR');
        const ids: string[] = [];
        // No token is taken before this: the bounds below hold however late requests arrive.
        const started = Date.now();
        for (let i = 0; i < N; i++) {
          const via = frs[i % 2]!;
          const c = sampleCase();
          expect((await admin(via.adminUrl, t, 'POST', '/api/reports', c)).status).to.equal(201);
          const fwd = await admin(via.adminUrl, t, 'POST', `/api/cases/${c.id}/forward`, {
            to: ['BE'],
            handling: HANDLING,
          });
          expect(fwd.status, JSON.stringify(fwd.json)).to.equal(202);
          ids.push(fwd.json.messages[0].id);
        }
        const end = Date.now() + 30_000;
        while (be.accepted < N && Date.now() < end) await sleep(50);
        expect(be.accepted, 'every message delivered').to.equal(N);
        for (const id of ids) expect(be.messages.get(id)?.requests, id).to.equal(1);
        const one = sentBy.get('fr1')!.length;
        const two = sentBy.get('fr2')!.length;
        expect(one + two).to.equal(N);
        expect(one, 'requests sent by the first process').to.be.greaterThan(0);
        expect(two, 'requests sent by the second process').to.be.greaterThan(0);

        const at = ids.map((id) => be.messages.get(id)!.firstAt).sort((a, b) => a - b);
        // A bucket of RATE tokens refilled at RATE a second: the k-th token (0-based) exists
        // (k - RATE + 1) / RATE seconds after the first was taken at the earliest, and a
        // request arrives after its token (10 ms for rounding to whole milliseconds).
        for (let k = RATE; k < N; k++) {
          expect(at[k]! - started, `request ${k}`).to.be.at.least(((k - RATE + 1) * 1000) / RATE - 10);
        }
        // In the first second, a bucket and a second's refill at most (two buckets: all 20).
        expect(at.filter((x) => x < started + 1000).length).to.be.at.most(2 * RATE);
      });
    });
  });
}
