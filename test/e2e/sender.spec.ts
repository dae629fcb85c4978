import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { expect } from 'chai';
import { messageDigest } from '../../src/envelope/digest.js';
import { RECEIPT_TYP, signJws } from '../../src/envelope/sign.js';
import { listen } from '../../src/inbound/server.js';
import { type Gateway, startGateway } from '../../src/main.js';
import { admin, HANDLING, sampleCase, signingKey, token } from '../helpers/clients.js';
import { testDb } from '../helpers/db.js';
import { freePort, testConfig, testPki } from '../helpers/federation.js';

type Mode = 'foreign-key' | 'wrong-digest' | 'status-503' | 'status-400' | 'honest';

/** A stand-in for DE on real mTLS with DE's certificates, answering as `mode` says. */
async function fakeDe(pki: string, port: number, state: { mode: Mode; requests: number }) {
  const read = (f: string) => readFileSync(path.join(pki, f), 'utf8');
  const server = https.createServer(
    {
      cert: read('DE/tls.crt'),
      key: read('DE/tls.key'),
      ca: read('ca.crt'),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        state.requests++;
        const jws = Buffer.concat(chunks).toString('latin1');
        const env = JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString('utf8'));
        if (state.mode === 'status-503' || state.mode === 'status-400') {
          res.writeHead(Number(state.mode.slice(7)), { 'content-type': 'application/problem+json' });
          res.end(
            JSON.stringify({
              code: state.mode === 'status-400' ? 'ENVELOPE_INVALID' : 'INTERNAL',
              status: Number(state.mode.slice(7)),
            }),
          );
          return;
        }
        const signer = state.mode === 'foreign-key' ? signingKey(pki, 'BE') : signingKey(pki, 'DE');
        const receipt = {
          v: 1,
          id: crypto.randomUUID(),
          type: 'receipt',
          from: 'DE',
          to: 'FR',
          messageId: env.id,
          messageDigest: state.mode === 'wrong-digest' ? messageDigest(`${jws}x`) : messageDigest(jws),
          receivedAt: new Date().toISOString(),
          status: 'accepted',
          auditHead: { seq: 1, hash: 'a'.repeat(64) },
        };
        const body = await signJws(receipt, { alg: 'PS256', ...signer }, RECEIPT_TYP);
        res.writeHead(201, { 'content-type': 'application/jose' });
        res.end(body);
      });
    },
  );
  await listen(server, '127.0.0.1', port);
  return server;
}

describe('e2e sender: receipts are verified before a message counts as delivered (pglite)', () => {
  let fr: Gateway;
  let server: https.Server;
  let pki: string;
  const state = { mode: 'foreign-key' as Mode, requests: 0 };
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
