/**
 * One contract for both delivery queue drivers (`embedded`, and `bullmq` when REDIS_URL is
 * set), on PGlite and on PostgreSQL (DATABASE_URL), with real gateways: FR sends to a real DE
 * gateway and to a counting stand-in for BE (test/helpers/counting-partner.ts) that records,
 * per message id, every POST and how many were in flight at once. Whatever the driver: every
 * message is delivered exactly once, transient failures are retried, dead letters can be
 * redriven, a case's messages arrive in order, two FR processes on one database (and one
 * Redis) share the work without sending a message twice at the same time, stopping loses
 * nothing, and for bullmq a Redis that lost its jobs is repaired from the outbox.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { GatewayConfig } from '../../src/config/load.js';
import { type Gateway, startGateway } from '../../src/main.js';
import type { OutboxRow } from '../../src/outbound/deliver.js';
import { type Db, openDb } from '../../src/store/db.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { type CountingPartner, countingPartner } from '../helpers/counting-partner.js';
import { dbKinds, testDb } from '../helpers/db.js';
import { freePort, testConfig, testPki } from '../helpers/federation.js';
import { dropKeys, queueDrivers, testPrefix } from '../helpers/redis.js';

type Ports = Record<string, { partner: number; admin: number }>;

async function until<T>(what: string, get: () => Promise<T>, pred: (v: T) => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (pred(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const kind of dbKinds()) {
  for (const driver of queueDrivers()) {
    describe(`delivery queue contract: ${driver} on ${kind}`, function () {
      this.timeout(60_000);
      const redisUrl = process.env.REDIS_URL;
      const prefix = testPrefix();
      let pki: string;
      let ports: Ports;
      let frDb: { db: Db; options: Record<string, unknown> };
      let deDb: { db: Db };
      let deConfig: GatewayConfig;
      let de: Gateway;
      let be: CountingPartner;
      let fr: Gateway;
      const extra: Gateway[] = [];
      const extraDbs: Db[] = [];
      /** Attempts per FR instance (by label), from the lanes' onOutcome hook. */
      const sentBy = new Map<string, string[]>();

      async function startFr(label: string, frPorts: Ports[string], db: Db): Promise<Gateway> {
        const doc = JSON.parse(readFileSync(path.join(pki, 'FR', 'gateway.json'), 'utf8')) as {
          partners: { country: string }[];
        };
        const p: Ports = { ...ports, FR: frPorts };
        const config = await testConfig('FR', p, {
          delivery: { baseDelayMs: 20, maxDelayMs: 100, pollIntervalMs: 50, requestTimeoutMs: 3000 },
          partners: doc.partners.map((x) => ({
            ...x,
            url: `https://127.0.0.1:${p[x.country]!.partner}`,
            // DE: a quick circuit and quick probes. BE: its circuit never opens (the tests
            // fail it on purpose), and few slots, so a backlog builds up.
            delivery:
              x.country === 'DE'
                ? { circuitFailureThreshold: 3, circuitProbeIntervalMs: 200 }
                : { circuitFailureThreshold: 1000, concurrency: 4 },
          })),
          ...(driver === 'bullmq' ? { redis: { url: redisUrl } } : {}),
        });
        sentBy.set(label, []);
        return startGateway(config, {
          db,
          driver,
          redisPrefix: prefix,
          onOutcome: (row: OutboxRow) => sentBy.get(label)!.push(row.id),
        });
      }
      const newPorts = async () => ({ partner: await freePort(), admin: await freePort() });

      before(async () => {
        pki = await testPki();
        ports = { FR: await newPorts(), DE: await newPorts(), BE: { partner: await freePort(), admin: 1 } };
        be = await countingPartner(pki, 'BE', ports.BE!.partner);
        deDb = await testDb(kind);
        deConfig = await testConfig('DE', ports);
        de = await startGateway(deConfig, { db: deDb.db });
        frDb = await testDb(kind);
        fr = await startFr('fr1', ports.FR!, frDb.db);
      });
      after(async () => {
        await Promise.allSettled([fr?.stop(), de?.stop(), ...extra.map((g) => g.stop())]);
        await be?.close();
        await Promise.allSettled([frDb?.db.close(), deDb?.db.close(), ...extraDbs.map((d) => d.close())]);
        if (driver === 'bullmq') await dropKeys(redisUrl!, prefix);
      });

      const t = () => token(pki, 'FR');
      /** Forward case `c` (a new one, ingested first, when not given); the message ids by partner. */
      async function forward(
        to: string[],
        given?: { id: string },
        via = fr,
      ): Promise<Record<string, string>> {
        const c = given ?? sampleCase();
        if (!given) expect((await admin(via.adminUrl, t(), 'POST', '/api/reports', c)).status).to.equal(201);
        const fwd = await admin(via.adminUrl, t(), 'POST', `/api/cases/${c.id}/forward`, {
          to,
          handling: HANDLING,
        });
        expect(fwd.status, JSON.stringify(fwd.json)).to.equal(202);
        return Object.fromEntries(fwd.json.messages.map((m: { to: string; id: string }) => [m.to, m.id]));
      }
      const states = async (ids: string[]) =>
        fr.ctx.db.query<{ id: string; state: string; attempts: number }>(
          "SELECT id, state, attempts FROM messages WHERE direction = 'out' AND id = ANY($1::uuid[])",
          [ids],
        );
      const allDelivered = (ids: string[], ms?: number) =>
        until(
          'delivered',
          async () => (await states(ids)).filter((r) => r.state !== 'delivered'),
          (open) => open.length === 0,
          ms,
        );
      // biome-ignore lint/suspicious/noExplicitAny: the API's JSON
      const message = async (id: string): Promise<any> =>
        (await admin(fr.adminUrl, t(), 'GET', `/api/messages/${id}`)).json;

      it('delivers every forwarded message exactly once (a real DE stores each once)', async () => {
        be.plan = () => ({ status: 201 });
        const fwds = [];
        for (let i = 0; i < 15; i++) fwds.push(await forward(['DE', 'BE']));
        const deIds = fwds.map((f) => f.DE!);
        const beIds = fwds.map((f) => f.BE!);
        await allDelivered([...deIds, ...beIds]);
        const stored = await de.ctx.db.query<{ id: string; n: number }>(
          "SELECT id, count(*)::int AS n FROM messages WHERE direction = 'in' AND peer = 'FR' AND id = ANY($1::uuid[]) GROUP BY id",
          [deIds],
        );
        expect(stored.map((r) => r.id)).to.have.members(deIds);
        expect(stored.every((r) => r.n === 1)).to.equal(true);
        for (const id of beIds) expect(be.messages.get(id)?.requests, id).to.equal(1);
        expect((await states([...deIds, ...beIds])).every((r) => r.attempts === 1)).to.equal(true);
        const ready = await admin(fr.adminUrl, undefined, 'GET', '/readyz');
        expect(ready.json.queue).to.deep.equal({ driver, status: 'ok' });
      });

      it('retries a message after transient failures and delivers it once', async () => {
        be.plan = (_id, n) => ({ status: n <= 2 ? 503 : 201 });
        const { BE: id } = await forward(['BE']);
        await allDelivered([id!]);
        const m = await message(id!);
        expect(m.attempts).to.equal(3);
        expect(m.attempts_history.map((a: { outcome: string }) => a.outcome)).to.deep.equal([
          'transient',
          'transient',
          'delivered',
        ]);
        expect(be.messages.get(id!)).to.include({ requests: 3, maxInFlight: 1 });
      });

      it('makes a refused message dead, and a redrive delivers it', async () => {
        be.plan = () => ({ status: 400 });
        const { BE: id } = await forward(['BE']);
        await until(
          'dead',
          () => message(id!),
          (m) => m.state === 'dead',
        );
        be.plan = () => ({ status: 201 });
        const r = await admin(fr.adminUrl, token(pki, 'FR', 'admin'), 'POST', `/api/messages/${id}/redrive`);
        expect(r.status, JSON.stringify(r.json)).to.equal(200);
        await allDelivered([id!]);
        expect(be.messages.get(id!)?.requests).to.equal(2);
      });

      it("sends a case's second message only once the first is delivered", async () => {
        let first: string | undefined;
        be.plan = (id, n) => {
          first ??= id;
          return { status: id === first && n <= 3 ? 503 : 201 };
        };
        const c = sampleCase();
        expect((await admin(fr.adminUrl, t(), 'POST', '/api/reports', c)).status).to.equal(201);
        const { BE: m1 } = await forward(['BE'], c);
        const { BE: m2 } = await forward(['BE'], c);
        await allDelivered([m1!, m2!]);
        expect(first).to.equal(m1);
        const a = be.messages.get(m1!)!;
        const b = be.messages.get(m2!)!;
        expect(a.requests).to.equal(4);
        expect(b.requests).to.equal(1);
        expect(b.firstAt).to.be.at.least(a.acceptedAt!);
      });

      it('shares the work between two FR processes on one database, never sending a message twice at once', async () => {
        const db2 = kind === 'pglite' ? frDb.db : await openDb({ ...frDb.options, poolSize: 5 });
        if (db2 !== frDb.db) extraDbs.push(db2);
        const fr2 = await startFr('fr2', await newPorts(), db2);
        extra.push(fr2);
        sentBy.set('fr1', []);
        // Every message fails once, slowly, so retries and claims of both processes interleave.
        be.plan = (_id, n) => ({ status: n === 1 ? 503 : 201, delayMs: 15 });
        const ids: string[] = [];
        for (let i = 0; i < 24; i++) ids.push((await forward(['BE'], undefined, i % 2 ? fr2 : fr)).BE!);
        await allDelivered(ids);
        for (const id of ids) expect(be.messages.get(id), id).to.include({ requests: 2, maxInFlight: 1 });
        const one = sentBy.get('fr1')!.filter((id) => ids.includes(id));
        const two = sentBy.get('fr2')!.filter((id) => ids.includes(id));
        expect(one.length + two.length).to.equal(48);
        expect(one.length, 'attempts made by the first process').to.be.greaterThan(0);
        expect(two.length, 'attempts made by the second process').to.be.greaterThan(0);
        await fr2.stop();
      });

      it(
        driver === 'bullmq'
          ? 'holds messages while the circuit is open; Redis loses their jobs; the reconciler re-adds them and they are delivered'
          : 'holds messages while the circuit is open and delivers them once the partner answers',
        async () => {
          await de.stop();
          const ids = [(await forward(['DE'])).DE!, (await forward(['DE'])).DE!, (await forward(['DE'])).DE!];
          const partners = async () =>
            (await admin(fr.adminUrl, t(), 'GET', '/api/partners')).json.partners.find(
              (p: { country: string }) => p.country === 'DE',
            );
          await until('circuit open', partners, (p) => p.circuit.state === 'open');
          const attempts = async () => (await states(ids)).reduce((n, r) => n + r.attempts, 0);
          const before = await attempts();
          await sleep(600);
          expect(await attempts(), 'nothing is attempted while the circuit is open').to.equal(before);
          if (driver === 'bullmq') {
            expect(await dropKeys(redisUrl!, prefix), 'keys dropped').to.be.greaterThan(0);
          }
          de = await startGateway(deConfig, { db: deDb.db });
          await until(
            'delivered after a restart of DE',
            async () => {
              await fr.queue.maintain();
              return (await states(ids)).filter((r) => r.state !== 'delivered');
            },
            (open) => open.length === 0,
          );
          const stored = await de.ctx.db.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM messages WHERE direction = 'in' AND id = ANY($1::uuid[])",
            [ids],
          );
          expect(stored[0]!.n).to.equal(3);
        },
      );

      it('loses nothing when stopped while sending: a fresh start finishes, each message sent once', async () => {
        be.plan = () => ({ status: 201, delayMs: 300 });
        const ids: string[] = [];
        for (let i = 0; i < 10; i++) ids.push((await forward(['BE'])).BE!);
        await until(
          'sending',
          async () => ids.filter((id) => (be.messages.get(id)?.inFlight ?? 0) > 0).length,
          (n) => n > 0,
        );
        await fr.stop();
        const after = await states(ids);
        expect(
          after.filter((r) => r.state === 'sending'),
          'attempts in flight finished',
        ).to.deep.equal([]);
        expect(after.filter((r) => r.state === 'delivered').length).to.be.within(1, 9);
        fr = await startFr('fr1', ports.FR!, frDb.db);
        be.plan = () => ({ status: 201 });
        await allDelivered(ids);
        for (const id of ids) expect(be.messages.get(id), id).to.include({ requests: 1, maxInFlight: 1 });
      });
    });
  }
}
