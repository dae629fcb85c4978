/**
 * A stand-in for the DE gateway on real mTLS with DE's certificates, misbehaving as its
 * `mode` says: receipts signed by the wrong key or for other bytes, 503s, 400s, or honest.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { messageDigest } from '../../src/envelope/digest.js';
import { RECEIPT_TYP, signJws } from '../../src/envelope/sign.js';
import { listen } from '../../src/inbound/server.js';
import { signingKey } from './clients.js';

export type Mode = 'foreign-key' | 'wrong-digest' | 'status-503' | 'status-400' | 'honest';

export interface FakeState {
  mode: Mode;
  /** POST /v1/messages requests seen. */
  requests: number;
  /** GET /v1/ping requests seen (answered 503 in mode status-503, 200 otherwise). */
  pings: number;
}

export async function fakeDe(pki: string, port: number, state: FakeState) {
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
        if (req.method === 'GET' && req.url === '/v1/ping') {
          state.pings++;
          res.writeHead(state.mode === 'status-503' ? 503 : 200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ gateway: { country: 'DE' } }));
          return;
        }
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
        const body = await signJws(receipt, signer, RECEIPT_TYP);
        res.writeHead(201, { 'content-type': 'application/jose' });
        res.end(body);
      });
    },
  );
  await listen(server, '127.0.0.1', port);
  return server;
}
