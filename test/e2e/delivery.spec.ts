/**
 * Durable delivery against a misbehaving partner (a fake DE on real mTLS): the circuit
 * breaker, dead letters and redrive, the maximum age, and what an operator sees of it in
 * `GET /api/partners`, `GET /api/messages` and `GET /metrics`.
 */
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import path from 'node:path';
import { expect } from 'chai';
import { type Gateway, startGateway } from '../../src/main.js';
import { icros } from '../helpers/cli.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { conformingProxy } from '../helpers/conforming-proxy.js';
import { testDb } from '../helpers/db.js';
import { type FakeState, fakeDe } from '../helpers/fake-partner.js';
import { freePort, testConfig, testPki } from '../helpers/federation.js';

describe('e2e delivery: circuit breaker, dead letters, redrive, expiry (pglite)', () => {
  let fr: Gateway;
  let server: https.Server;
  let pki: string;
  const state: FakeState = { mode: 'honest', requests: 0, pings: 0 };
  let dbClose: () => Promise<void>;
  // Redrive needs the admin role (DESIGN §5); admin passes every route.
  const t = () => token(pki, 'FR', 'admin');

  before(async () => {
    pki = await testPki();
    const ports = {
      FR: { partner: await freePort(), admin: await freePort() },
      DE: { partner: await freePort(), admin: 1 },
    };
    server = await fakeDe(pki, ports.DE.partner, state);
    const { db } = await testDb('pglite');
    dbClose = () => db.close();
    const doc = JSON.parse(readFileSync(path.join(pki, 'FR', 'gateway.json'), 'utf8')) as {
      partners: { country: string }[];
    };
    fr = await startGateway(
      await testConfig('FR', ports, {
        delivery: { baseDelayMs: 20, maxDelayMs: 60, pollIntervalMs: 20, requestTimeoutMs: 3000 },
        // DE gets its own policy: few attempts, a quick circuit and quick probes.
        partners: doc.partners.map((p) => ({
          ...p,
          url: `https://127.0.0.1:${ports[p.country as 'DE']?.partner ?? 1}`,
          ...(p.country === 'DE'
            ? {
                delivery: {
                  maxAttempts: 4,
                  circuitFailureThreshold: 3,
                  circuitProbeIntervalMs: 200,
                  maxAgeSeconds: 60,
                },
              }
            : {}),
        })),
      }),
      { db },
    );
  });
  after(async () => {
    await fr?.stop();
    server?.close();
    server?.closeAllConnections();
    await dbClose?.();
  });

  async function forward(): Promise<string> {
    const c = sampleCase();
    expect((await admin(fr.adminUrl, t(), 'POST', '/api/reports', c)).status).to.equal(201);
    const fwd = await admin(fr.adminUrl, t(), 'POST', `/api/cases/${c.id}/forward`, {
      to: ['DE'],
      handling: HANDLING,
    });
    expect(fwd.status).to.equal(202);
    return fwd.json.messages[0].id as string;
  }
  // biome-ignore lint/suspicious/noExplicitAny: the API's JSON
  const message = async (id: string): Promise<any> =>
    (await admin(fr.adminUrl, t(), 'GET', `/api/messages/${id}`)).json;
  // biome-ignore lint/suspicious/noExplicitAny: the API's JSON
  const partnerDe = async (): Promise<any> =>
    (await admin(fr.adminUrl, t(), 'GET', '/api/partners')).json.partners.find(
      (p: { country: string }) => p.country === 'DE',
    );
  async function until<T>(
    what: string,
    get: () => Promise<T>,
    pred: (v: T) => boolean,
    ms = 15_000,
  ): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await get();
      if (pred(v)) return v;
      if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const audit = async (action: string) =>
    fr.ctx.db.query<{ subject: Record<string, string> }>(
      'SELECT subject FROM audit_events WHERE action = $1',
      [action],
    );

  it('opens the circuit after 3 transient failures, sends nothing but probes, and resumes when DE answers', async () => {
    state.mode = 'status-503';
    const id = await forward();
    const open = await until('circuit', partnerDe, (p) => p.circuit.state === 'open');
    expect(open.circuit.consecutiveFailures).to.equal(3);
    expect(open.delivery).to.deep.include({ maxAttempts: 4, circuitFailureThreshold: 3 });
    const posts = state.requests;
    const pings = state.pings;
    await new Promise((r) => setTimeout(r, 700));
    expect(state.requests, 'no message is sent while the circuit is open').to.equal(posts);
    expect(state.pings - pings, 'the partner is probed every 200 ms').to.be.within(2, 5);
    expect((await message(id)).state).to.equal('retrying');
    expect((await partnerDe()).circuit.lastProbeError).to.contain('503');

    state.mode = 'honest';
    await until(
      'delivered',
      () => message(id),
      (m) => m.state === 'delivered',
    );
    expect((await partnerDe()).circuit.state).to.equal('closed');
    expect(await audit('partner.circuit.opened')).to.have.length(1);
    expect(await audit('partner.circuit.closed')).to.have.length(1);
  });

  it('makes a message dead when its attempts run out, and a redrive gives it a new budget', async () => {
    state.mode = 'wrong-digest'; // transient, but the partner is up: the circuit stays closed
    const id = await forward();
    const dead = await until(
      'dead',
      () => message(id),
      (m) => m.state === 'dead',
    );
    expect(dead.attempts).to.equal(4);
    expect(dead.last_error.code).to.equal('RECEIPT_DIGEST_MISMATCH');
    const listed = await admin(fr.adminUrl, t(), 'GET', '/api/messages?state=dead&partner=DE');
    expect(listed.json.messages.map((m: { id: string }) => m.id)).to.include(id);

    state.mode = 'honest';
    const r = await admin(fr.adminUrl, t(), 'POST', `/api/messages/${id}/redrive`);
    expect(r.status).to.equal(200);
    expect(r.json).to.deep.equal({ id, partner: 'DE', state: 'queued' });
    const done = await until(
      'delivered',
      () => message(id),
      (m) => m.state === 'delivered',
    );
    expect(done.attempts).to.equal(5);
    expect(done.attempts_history.map((a: { outcome: string }) => a.outcome)).to.deep.equal([
      'transient',
      'transient',
      'transient',
      'transient',
      'delivered',
    ]);
    expect((await audit('message.redriven')).map((e) => e.subject.message)).to.include(id);

    const again = await admin(fr.adminUrl, t(), 'POST', `/api/messages/${id}/redrive`);
    expect(again.status).to.equal(409);
    expect(again.json.code).to.equal('MESSAGE_NOT_DEAD');
    expect(again.json.detail).to.contain('delivered');
    const unknown = await admin(fr.adminUrl, t(), 'POST', `/api/messages/${crypto.randomUUID()}/redrive`);
    expect(unknown.json.code).to.equal('MESSAGE_NOT_FOUND');
  });

  it('redrives every dead message of a partner at once', async () => {
    state.mode = 'status-400'; // permanent: dead at the first attempt
    const ids = [await forward(), await forward()];
    for (const id of ids)
      await until(
        'dead',
        () => message(id),
        (m) => m.state === 'dead',
      );
    expect(
      (await admin(fr.adminUrl, t(), 'POST', '/api/messages/redrive', { state: 'queued' })).json.code,
    ).to.equal('REQUEST_INVALID');
    expect(
      (await admin(fr.adminUrl, t(), 'POST', '/api/messages/redrive', { state: 'dead', partner: 'XX' })).json
        .code,
    ).to.equal('REQUEST_INVALID');
    state.mode = 'honest';
    const r = await admin(fr.adminUrl, t(), 'POST', '/api/messages/redrive', {
      state: 'dead',
      partner: 'DE',
    });
    expect(r.status).to.equal(200);
    expect(r.json.messages.map((m: { id: string }) => m.id)).to.include.members(ids);
    for (const id of ids)
      await until(
        'delivered',
        () => message(id),
        (m) => m.state === 'delivered',
      );
  });

  it('icros messages list / redrive: the same through the CLI, with its exit codes', async () => {
    state.mode = 'status-400';
    const id = await forward();
    await until(
      'dead',
      () => message(id),
      (m) => m.state === 'dead',
    );
    // The CLI talks to FR through a proxy that holds each exchange to the OpenAPI document.
    const proxy = await conformingProxy(fr.adminUrl);
    const env = { ICROS_SERVER: proxy.url, ICROS_TOKEN: t() };
    const list = await icros(['messages', 'list', '--state', 'dead', '--partner', 'DE', '--json'], env);
    expect(list.status, list.stderr).to.equal(0);
    expect(JSON.parse(list.stdout).messages.map((m: { id: string }) => m.id)).to.include(id);
    state.mode = 'honest';
    const one = await icros(['messages', 'redrive', id], env);
    expect(one.status, one.stderr).to.equal(0);
    expect(one.stdout).to.contain(`${id} → DE: queued again`);
    await until(
      'delivered',
      () => message(id),
      (m) => m.state === 'delivered',
    );
    const again = await icros(['messages', 'redrive', id], env);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.contain('MESSAGE_NOT_DEAD (409)');
    const all = await icros(['messages', 'redrive', '--state', 'dead', '--partner', 'DE'], env);
    expect(all.status, all.stderr).to.equal(0);
    expect(all.stdout).to.match(/^\d+ dead message\(s\) queued again for DE/);
    expect((await icros(['messages', 'redrive', '--state', 'queued'], env)).status).to.equal(2);
    expect((await icros(['messages', 'redrive', id, '--state', 'dead'], env)).status).to.equal(2);
    await proxy.close();
    expect(proxy.violations, 'exchanges off the OpenAPI document').to.deep.equal([]);
  });

  /** A message that DE keeps refusing with 503: it waits as `retrying`. */
  async function retryingAgainstFailingDe(): Promise<string> {
    // A test before may have left the circuit open: DE answers until a probe closes it.
    state.mode = 'honest';
    await until('circuit closed', partnerDe, (p) => p.circuit.state === 'closed');
    state.mode = 'status-503';
    const id = await forward();
    await until(
      'retrying',
      () => message(id),
      (m) => m.state === 'retrying',
    );
    return id;
  }

  /** Run the maintenance sweep until message `id` is dead; the message. */
  async function untilExpired(id: string) {
    await until(
      'expired',
      async () => {
        await fr.queue.maintain();
        return message(id);
      },
      (m) => m.state === 'dead',
    );
    return message(id);
  }

  it('makes a waiting message dead once it is older than maxAgeSeconds (MESSAGE_EXPIRED)', async () => {
    const id = await retryingAgainstFailingDe();
    // Two minutes old, as if DE had been down that long.
    await fr.ctx.db.query("UPDATE messages SET created_at = now() - interval '2 minutes' WHERE id = $1", [
      id,
    ]);
    const dead = await untilExpired(id);
    expect(dead.last_error.code).to.equal('MESSAGE_EXPIRED');
    const metrics = await (await fetch(`${fr.adminUrl}/metrics`)).text();
    expect(metrics).to.match(
      /icros_messages_dead_total\{partner="DE",code="MESSAGE_EXPIRED",gateway="FR"\} [1-9]/,
    );
    expect(metrics).to.match(/icros_messages_delivered_total\{partner="DE",gateway="FR"\} [1-9]/);
    expect(metrics).to.contain('icros_delivery_latency_seconds_bucket');
    state.mode = 'honest';
  });

  it('lets open messages to a partner taken out of the configuration die at the default maximum age', async () => {
    const id = await retryingAgainstFailingDe();
    // As if IT had been a partner and was removed from the configuration since. Moved while it
    // waits for its next attempt: an attempt in flight (its retry comes 20-60 ms after the
    // last) would record its outcome for DE and find no such row, leaving it `sending`.
    await until(
      'moved to IT while retrying',
      async () =>
        (
          await fr.ctx.db.query(
            "UPDATE messages SET peer = 'IT' WHERE id = $1 AND state = 'retrying' RETURNING id",
            [id],
          )
        ).length,
      (moved) => moved === 1,
    );
    await fr.queue.maintain();
    const open = await (await fetch(`${fr.adminUrl}/metrics`)).text();
    expect(open).to.match(/icros_open_messages\{partner="IT",gateway="FR"\} 1\b/);
    expect(open).to.match(/icros_oldest_queued_seconds\{partner="IT",gateway="FR"\} \d/);
    expect((await message(id)).state, 'younger than the maximum age: kept').to.equal('retrying');
    await fr.ctx.db.query("UPDATE messages SET created_at = now() - interval '400 days' WHERE id = $1", [id]);
    const dead = await untilExpired(id);
    expect(dead.last_error.code).to.equal('MESSAGE_EXPIRED');
    expect(dead.last_error.detail).to.contain('IT is no longer a configured partner');
    const after = await (await fetch(`${fr.adminUrl}/metrics`)).text();
    expect(after).to.match(
      /icros_messages_dead_total\{partner="IT",code="MESSAGE_EXPIRED",gateway="FR"\} 1\b/,
    );
    expect(after, 'its gauges go once nothing is open').to.not.match(
      /icros_(open_messages|oldest_queued_seconds)\{partner="IT"/,
    );
    state.mode = 'honest';
  });

  it('shows per partner: circuit, message counts by state, the oldest open message, the policy', async () => {
    const de = await partnerDe();
    expect(de.messages.delivered).to.be.greaterThan(0);
    expect(de).to.have.keys([
      'country',
      'agency',
      'url',
      'circuit',
      'inFlight',
      'messages',
      'oldestOpenAgeSeconds',
      'delivery',
    ]);
    const auditor = await admin(fr.adminUrl, token(pki, 'FR', 'auditor'), 'GET', '/api/partners');
    expect(auditor.status).to.equal(200);
    expect(auditor.json.driver).to.equal('embedded');
  });
});
