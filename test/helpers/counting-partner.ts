/**
 * A stand-in partner gateway on real mTLS (the certificates and signing key of `country` from
 * the test PKI) that counts, per message id, the POSTs it received, the most it had in flight
 * at once, and when each arrived and succeeded. `plan` decides each answer, so a test can fail
 * one message transiently, refuse another for good, or slow everything down.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { messageDigest } from '../../src/envelope/digest.js';
import { RECEIPT_TYP, signJws } from '../../src/envelope/sign.js';
import { listen } from '../../src/inbound/server.js';
import { signingKey } from './clients.js';

/** What to answer the `n`-th POST (1-based) of message `id`: a status (201 = honest receipt). */
export type Plan = (id: string, n: number) => { status: number; delayMs?: number };

export interface PerMessage {
  requests: number;
  inFlight: number;
  maxInFlight: number;
  firstAt: number;
  /** When the first receipt was sent. */
  acceptedAt?: number;
}

export interface CountingPartner {
  url: string;
  messages: Map<string, PerMessage>;
  /** POST /v1/messages received in total, and answered with a receipt. */
  posts: number;
  accepted: number;
  /** GET /v1/ping answers this status (200 = up). */
  pingStatus: number;
  /** When each GET /v1/ping arrived (ms since the epoch). */
  pings: number[];
  plan: Plan;
  close(): Promise<void>;
}

export async function countingPartner(
  pki: string,
  country: string,
  port: number,
  plan: Plan = () => ({ status: 201 }),
): Promise<CountingPartner> {
  const read = (f: string) => readFileSync(path.join(pki, f), 'utf8');
  const signer = signingKey(pki, country);
  const state: CountingPartner = {
    url: `https://127.0.0.1:${port}`,
    messages: new Map(),
    posts: 0,
    accepted: 0,
    pingStatus: 200,
    pings: [],
    plan,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = https.createServer(
    {
      cert: read(`${country}/tls.crt`),
      key: read(`${country}/tls.key`),
      ca: read('ca.crt'),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        if (req.method === 'GET' && req.url === '/v1/ping') {
          state.pings.push(Date.now());
          res.writeHead(state.pingStatus, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ gateway: { country } }));
          return;
        }
        state.posts++;
        const jws = Buffer.concat(chunks).toString('latin1');
        const env = JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString('utf8'));
        const m = state.messages.get(env.id) ?? {
          requests: 0,
          inFlight: 0,
          maxInFlight: 0,
          firstAt: Date.now(),
        };
        state.messages.set(env.id, m);
        m.requests++;
        m.inFlight++;
        m.maxInFlight = Math.max(m.maxInFlight, m.inFlight);
        const { status, delayMs } = state.plan(env.id, m.requests);
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        if (status !== 201) {
          m.inFlight--;
          res.writeHead(status, { 'content-type': 'application/problem+json' });
          res.end(JSON.stringify({ code: status >= 500 ? 'INTERNAL' : 'ENVELOPE_INVALID', status }));
          return;
        }
        const receipt = {
          v: 1,
          id: crypto.randomUUID(),
          type: 'receipt',
          from: country,
          to: env.from,
          messageId: env.id,
          messageDigest: messageDigest(jws),
          receivedAt: new Date().toISOString(),
          status: 'accepted',
          auditHead: { seq: 1, hash: 'a'.repeat(64) },
        };
        const body = await signJws(receipt, signer, RECEIPT_TYP);
        m.inFlight--;
        m.acceptedAt ??= Date.now();
        state.accepted++;
        res.writeHead(201, { 'content-type': 'application/jose' });
        res.end(body);
      });
    },
  );
  await listen(server, '127.0.0.1', port);
  return state;
}
