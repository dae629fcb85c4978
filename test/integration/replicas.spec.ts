/**
 * BullMQ replicas share a partner's rate limit and circuit through Redis
 * (src/outbound/shared-rate.ts, shared-circuit.ts). First the rate bucket itself; then two FR
 * processes on one database and one Redis sending to a counting stand-in for BE:
 * - with BE's `ratePerSecond` at 5 they start no more than 5 requests a second together
 *   (bursts of 5), where two buckets of their own would let through twice that;
 * - a circuit one of them opened is open in the other before it sends anything, stays open
 *   when Redis loses its key, is probed by one of them per interval, and a probe that
 *   answers closes it in both; the opening and the closing are each audited once.
 * Runs only with REDIS_URL (the BullMQ suites may not skip in CI: `queueDrivers` throws there
 * without it).
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
import { countingPartner } from '../helpers/counting-partner.js';
import { testDb } from '../helpers/db.js';
import { freePort, testConfig, testPki } from '../helpers/federation.js';
import { dropKeys, queueDrivers, testPrefix } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Without REDIS_URL there is no BullMQ driver to test (outside CI only; see above).
if (queueDrivers().includes('bullmq')) {
  describe("BullMQ replicas share a partner's rate limit and circuit through Redis", function () {
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
        const rate = sharedRate(() => redis, prefix, 'XX');
        const first = await rate.take('DE', 5, 8);
        expect(first.granted, 'a full bucket holds one second').to.equal(5);
        expect(first.waitMs).to.be.within(150, 200);
        const none = await rate.take('DE', 5, 1);
        expect(none.granted).to.equal(0);
        expect(none.waitMs).to.be.within(100, 200);
        expect((await rate.take('BE', 5, 2)).granted, 'each partner has its own bucket').to.equal(2);
        // Another process (another connection) takes from the same bucket.
        const other = sharedRate(() => redis2, prefix, 'XX');
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

    /** Two FR processes on one database and one Redis, sending to BE with `policy`. */
    async function pair(policy: Record<string, unknown>) {
      const pki = await testPki();
      const bePort = await freePort();
      const be = await countingPartner(pki, 'BE', bePort);
      const kind = process.env.DATABASE_URL ? 'postgres' : 'pglite';
      const first = await testDb(kind);
      // A second pool on PostgreSQL; one PGlite is one process's, so the same one there.
      const second = kind === 'postgres' ? await openDb({ ...first.options, poolSize: 5 }) : first.db;
      const dbs = second === first.db ? [first.db] : [second, first.db];
      const doc = JSON.parse(readFileSync(path.join(pki, 'FR', 'gateway.json'), 'utf8')) as {
        partners: { country: string }[];
      };
      const nowhere = await freePort();
      const sentBy = new Map<string, string[]>();
      const frs: Gateway[] = [];
      const start = async (label: string, db: Db, noWorker = false) => {
        const ports = {
          FR: { partner: await freePort(), admin: await freePort() },
          DE: { partner: nowhere, admin: 1 },
          BE: { partner: bePort, admin: 1 },
        };
        const config = await testConfig('FR', ports, {
          delivery: { baseDelayMs: 20, maxDelayMs: 100, pollIntervalMs: 50 },
          partners: doc.partners.map((x) => ({
            ...x,
            url: `https://127.0.0.1:${ports[x.country as 'DE' | 'BE'].partner}`,
            delivery: x.country === 'BE' ? policy : {},
          })),
          redis: { url },
        });
        sentBy.set(label, []);
        const fr = await startGateway(config, {
          db,
          driver: 'bullmq',
          redisPrefix: prefix,
          noWorker,
          onOutcome: (row: OutboxRow) => sentBy.get(label)!.push(row.id),
        });
        frs.push(fr);
        return fr;
      };
      const t = token(pki, 'FR');
      return {
        be,
        frs,
        sentBy,
        /** A delivering replica: `fr1` on the first pool, the next ones on the second. */
        start: () => {
          const n = [...sentBy.keys()].filter((k) => k.startsWith('fr')).length + 1;
          return start(`fr${n}`, n === 1 ? first.db : second);
        },
        /** An API-only replica (`--no-delivery`) on the second pool. */
        apiOnly: () => start('api', second, true),
        /** Ingest a case at `via` and forward it to BE: the message id. */
        async forward(via: Gateway): Promise<string> {
          const c = sampleCase();
          expect((await admin(via.adminUrl, t, 'POST', '/api/reports', c)).status).to.equal(201);
          const fwd = await admin(via.adminUrl, t, 'POST', `/api/cases/${c.id}/forward`, {
            to: ['BE'],
            handling: HANDLING,
          });
          expect(fwd.status, JSON.stringify(fwd.json)).to.equal(202);
          return fwd.json.messages[0].id;
        },
        // biome-ignore lint/suspicious/noExplicitAny: the API's JSON
        async circuit(via: Gateway): Promise<any> {
          const res = await admin(via.adminUrl, t, 'GET', '/api/partners');
          return res.json.partners.find((p: { country: string }) => p.country === 'BE').circuit;
        },
        async close() {
          await Promise.allSettled(frs.map((g) => g.stop()));
          await be.close();
          for (const db of dbs) await db.close();
        },
      };
    }

    describe('two FR processes sending to one partner with a rate limit', () => {
      const RATE = 5;
      const N = 20;
      let p: Awaited<ReturnType<typeof pair>>;
      before(async () => {
        p = await pair({ ratePerSecond: RATE, concurrency: 4, circuitFailureThreshold: 1000 });
        await p.start();
        await p.start();
      });
      after(async () => {
        await p?.close();
      });

      it(`start no more than ${RATE} requests a second together`, async () => {
        const { be, frs, sentBy } = p;
        const ids: string[] = [];
        // No token is taken before this: the bounds below hold however late requests arrive.
        const started = Date.now();
        for (let i = 0; i < N; i++) ids.push(await p.forward(frs[i % 2]!));
        // Delivered: BE stored each, and FR recorded each outcome (after the receipt).
        const outcomes = () => sentBy.get('fr1')!.length + sentBy.get('fr2')!.length;
        const end = Date.now() + 30_000;
        while ((be.accepted < N || outcomes() < N) && Date.now() < end) await sleep(50);
        expect(be.accepted, 'every message delivered').to.equal(N);
        for (const id of ids) expect(be.messages.get(id)?.requests, id).to.equal(1);
        const one = sentBy.get('fr1')!.length;
        const two = sentBy.get('fr2')!.length;
        expect(one + two, 'outcomes recorded').to.equal(N);
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

    describe('two FR processes and one circuit', () => {
      const PROBE_MS = 200;
      let p: Awaited<ReturnType<typeof pair>>;
      before(async () => {
        p = await pair({ circuitFailureThreshold: 3, circuitProbeIntervalMs: PROBE_MS, concurrency: 4 });
      });
      after(async () => {
        await p?.close();
      });

      it('opens in a replica that sent nothing, survives a lost key, is probed by one replica at a time, and closes in both', async () => {
        const { be, sentBy } = p;
        be.plan = () => ({ status: 503 });
        be.pingStatus = 503;
        const fr1 = await p.start();
        const api = await p.apiOnly();
        const ids = [await p.forward(fr1), await p.forward(fr1), await p.forward(fr1)];
        const until = async (what: string, ok: () => Promise<boolean> | boolean, ms = 15_000) => {
          const end = Date.now() + ms;
          while (!(await ok())) {
            if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
            await sleep(25);
          }
        };
        await until('circuit open at fr1', async () => (await p.circuit(fr1)).state === 'open');
        // A ping that fails leaves batches unknown: single messages meanwhile (which open the
        // circuit), and no asking again on every job.
        expect(be.pings.length, 'pings before the circuit opened').to.be.at.most(2);
        const opened = (await p.circuit(fr1)).openedAt;
        // The API-only replica sends nothing but shows the circuit its peers keep in Redis.
        expect(await p.circuit(api)).to.deep.include({ state: 'open', openedAt: opened });

        // A replica started now: open as of fr1's opening, learnt before its workers take a
        // job, so it never sends (it answers the API a moment before that).
        const fr2 = await p.start();
        await until('circuit open at fr2', async () => (await p.circuit(fr2)).state === 'open', 2_000);
        expect((await p.circuit(fr2)).openedAt).to.equal(opened);
        const pingsFrom = be.pings.length;
        await sleep(6 * PROBE_MS);
        expect(sentBy.get('fr2'), 'fr2 sent nothing').to.deep.equal([]);
        const pings = be.pings.slice(pingsFrom);
        expect(pings.length, 'probes while open').to.be.at.least(3);
        const gaps = pings.slice(1).map((at, i) => at - pings[i]!);
        // Two replicas probing on their own would come within half an interval of each other.
        expect(Math.min(...gaps), `gaps between probes: ${gaps}`).to.be.at.least(PROBE_MS - 20);

        // Redis loses the key (flushed): the open replicas say it again, as of the same time.
        const redis = new Redis(url, { maxRetriesPerRequest: 3 });
        const key = `${prefix}:icros-circuit:FR:BE`;
        try {
          expect(await redis.get(key)).to.equal(String(Date.parse(opened)));
          await redis.del(key);
          await until('the key set again', async () => (await redis.get(key)) !== null, 3_000);
          expect(await redis.get(key)).to.equal(String(Date.parse(opened)));
          expect((await p.circuit(fr1)).state).to.equal('open');
          expect((await p.circuit(fr2)).state).to.equal('open');

          be.plan = () => ({ status: 201 });
          be.pingStatus = 200;
          await until('both circuits closed', async () => {
            const [a, b] = [await p.circuit(fr1), await p.circuit(fr2)];
            return a.state === 'closed' && b.state === 'closed';
          });
          expect(await redis.get(key), 'marked closed for the others').to.equal('closed');
          expect((await p.circuit(api)).state).to.equal('closed');
          expect(sentBy.get('api'), 'the API-only replica sent nothing').to.deep.equal([]);
        } finally {
          redis.disconnect();
        }
        await until('delivered', () => ids.every((id) => be.messages.get(id)?.acceptedAt !== undefined));
        const events = await fr1.ctx.db.query<{ action: string; n: number }>(
          `SELECT action, count(*)::int AS n FROM audit_events
           WHERE action LIKE 'partner.circuit.%' GROUP BY action ORDER BY action`,
        );
        expect(events, 'each change audited once, by the replica that made it').to.deep.equal([
          { action: 'partner.circuit.closed', n: 1 },
          { action: 'partner.circuit.opened', n: 1 },
        ]);
      });
    });
  });
}
