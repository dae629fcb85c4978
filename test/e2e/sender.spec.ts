import type https from 'node:https';
import { expect } from 'chai';
import { type Gateway, startGateway } from '../../src/main.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { testDb } from '../helpers/db.js';
import { fakeDe, type Mode } from '../helpers/fake-partner.js';
import { freePort, testConfig, testPki } from '../helpers/federation.js';

describe('e2e sender: receipts are verified before a message counts as delivered (pglite)', () => {
  let fr: Gateway;
  let server: https.Server;
  let pki: string;
  const state = { mode: 'foreign-key' as Mode, requests: 0, pings: 0 };
  let dbClose: () => Promise<void>;

  before(async () => {
    pki = await testPki();
    const ports = {
      FR: { partner: await freePort(), admin: await freePort() },
      DE: { partner: await freePort(), admin: 1 },
    };
    server = await fakeDe(pki, ports.DE.partner, state);
    const { db } = await testDb('pglite');
    dbClose = () => db.close();
    fr = await startGateway(
      await testConfig('FR', ports, {
        delivery: {
          baseDelayMs: 20,
          maxDelayMs: 60,
          pollIntervalMs: 20,
          requestTimeoutMs: 3000,
          maxAttempts: 50,
          // These tests count attempts against a failing partner: keep its circuit closed.
          circuitFailureThreshold: 1000,
        },
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

  async function forward() {
    const c = sampleCase();
    expect((await admin(fr.adminUrl, token(pki, 'FR'), 'POST', '/api/reports', c)).status).to.equal(201);
    const fwd = await admin(fr.adminUrl, token(pki, 'FR'), 'POST', `/api/cases/${c.id}/forward`, {
      to: ['DE'],
      handling: HANDLING,
    });
    expect(fwd.status).to.equal(202);
    return fwd.json.messages[0].id as string;
  }

  async function message(id: string) {
    return (await admin(fr.adminUrl, token(pki, 'FR'), 'GET', `/api/messages/${id}`)).json;
  }

  async function until(id: string, pred: (m: { state: string; attempts: number }) => boolean) {
    const end = Date.now() + 15_000;
    for (;;) {
      const m = await message(id);
      if (pred(m)) return m;
      if (Date.now() > end) throw new Error(`message ${id} stuck: ${JSON.stringify(m)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  for (const [mode, code] of [
    ['foreign-key', 'RECEIPT_INVALID'],
    ['wrong-digest', 'RECEIPT_DIGEST_MISMATCH'],
    ['status-503', 'DELIVERY_REJECTED'],
  ] as const) {
    it(`keeps the message undelivered and retries on ${mode} (${code}), then delivers once the partner answers properly`, async () => {
      state.mode = mode;
      const id = await forward();
      const retrying = await until(id, (m) => m.attempts >= 3);
      expect(retrying.state).to.be.oneOf(['retrying', 'sending']);
      expect(retrying.receipt).to.equal(null);
      const history = (await message(id)).attempts_history as {
        outcome: string;
        problem: { code: string };
      }[];
      expect(history.length).to.be.greaterThanOrEqual(2);
      expect(history[0]!.outcome).to.equal('transient');
      expect(history[0]!.problem.code).to.equal(code);
      state.mode = 'honest';
      const done = await until(id, (m) => m.state === 'delivered');
      expect(done.receipt.message_digest).to.match(/^sha256:/);
    });
  }

  it('moves a message to dead at once on a permanent 4xx, with the partner problem stored', async () => {
    state.mode = 'status-400';
    const id = await forward();
    const dead = await until(id, (m) => m.state === 'dead');
    expect(dead.attempts).to.equal(1);
    expect(dead.last_error.code).to.equal('DELIVERY_REJECTED');
    expect(dead.last_error.partnerProblem.code).to.equal('ENVELOPE_INVALID');
    state.mode = 'honest';
  });
});
