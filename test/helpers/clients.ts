/** Clients for e2e tests: the admin API with a dev token, and raw mTLS requests as a partner. */

import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { CompactSign } from 'jose';
import { v7 as uuidv7 } from 'uuid';
import type { SigningAlg } from '../../src/config/load.js';
import { canonicalJson } from '../../src/envelope/json.js';
import { algFor, signBytes } from '../../src/envelope/jws-crypto.js';
import { thumbprintS256 } from '../../src/pki/issue.js';
import { conformance, type Exchange, warmConformance } from './openapi.js';

export function token(pki: string, cc: string, role: 'analyst' | 'auditor' | 'admin' = 'analyst'): string {
  return JSON.parse(readFileSync(path.join(pki, cc, 'admin-tokens.json'), 'utf8'))[role];
}

export async function admin(
  baseUrl: string,
  tok: string | undefined,
  method: string,
  p: string,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API returned
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${baseUrl}${p}`, {
    method,
    headers: {
      ...(tok ? { authorization: `Bearer ${tok}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  const exchange: Exchange = {
    method,
    path: p,
    ...(body !== undefined
      ? {
          requestContentType: 'application/json',
          requestBody: typeof body === 'string' ? body : JSON.stringify(body),
        }
      : {}),
    status: res.status,
    responseHeaders: res.headers,
    responseBody: text,
  };
  adminExchanges.push({ method: method.toUpperCase(), path: p, status: res.status });
  // Every exchange with the admin API must conform to its OpenAPI document: the test that made
  // it fails here, naming each difference.
  const violations = conformance(exchange);
  if (violations.length > 0) {
    throw new Error(
      `the admin API answered off its OpenAPI document (/api/openapi.json):\n  ${violations.join('\n  ')}`,
    );
  }
  return { status: res.status, json, headers: res.headers };
}

/** Every exchange `admin()` made in this test process (method, path with query, status). */
export const adminExchanges: { method: string; path: string; status: number }[] = [];

// A root-level hook (registered when a spec first imports this module) builds the checker before
// any test runs, so its set-up never shifts the timing of the test that makes the first request.
if (typeof before === 'function') before(warmConformance);

export interface TlsIdentity {
  cert: string;
  key: string;
  ca: string;
}

export function tlsIdentity(pki: string, cc: string): TlsIdentity {
  return {
    cert: readFileSync(path.join(pki, cc, 'tls.crt'), 'utf8'),
    key: readFileSync(path.join(pki, cc, 'tls.key'), 'utf8'),
    ca: readFileSync(path.join(pki, 'ca.crt'), 'utf8'),
  };
}

/** One request over a fresh mTLS connection (no agent: each test sees its own handshake). */
export function partnerRequest(
  url: string,
  id: Partial<TlsIdentity> & { ca: string },
  opts: {
    method?: string;
    path?: string;
    body?: string | Buffer;
    contentType?: string;
    tls?: https.RequestOptions;
  } = {},
): Promise<{ status: number; body: string; contentType: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/v1/messages',
        cert: id.cert,
        key: id.key,
        ca: id.ca,
        agent: false,
        minVersion: 'TLSv1.3',
        headers:
          opts.contentType === undefined
            ? { 'content-type': 'application/jose' }
            : opts.contentType
              ? { 'content-type': opts.contentType }
              : {},
        ...opts.tls,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            contentType: String(res.headers['content-type'] ?? ''),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** `cc`'s signing key in `pki`, its `kid`, and the one JWS `alg` it fits (the dev PKI issues all three). */
export function signingKey(pki: string, cc: string): { key: KeyObject; kid: string; alg: SigningAlg } {
  const certPem = readFileSync(path.join(pki, cc, 'sign.crt'), 'utf8');
  const key = createPrivateKey(readFileSync(path.join(pki, cc, 'sign.key'), 'utf8'));
  const alg = algFor(key);
  if (!alg) throw new Error(`${cc}/sign.key fits no JWS algorithm of the gateway`);
  return { key, kid: thumbprintS256(certPem), alg };
}

export const HANDLING = {
  tlp: 'AMBER',
  code: 'H1',
  purpose: 'Fraud investigation',
  legalBasis: 'Budapest Convention Art. 25',
} as const;

export function sampleCase(overrides: Record<string, unknown> = {}) {
  const c = JSON.parse(
    readFileSync(new URL('../../schemas/icros-case/samples/phishing-bank.json', import.meta.url), 'utf8'),
  );
  return { ...c, id: crypto.randomUUID(), ...overrides };
}

export function envelope(from: string, to: string, overrides: Record<string, unknown> = {}) {
  return {
    v: 1,
    id: uuidv7(),
    type: 'case.transfer',
    from,
    to,
    sentAt: new Date().toISOString(),
    handling: HANDLING,
    case: sampleCase(),
    ...overrides,
  };
}

/** Sign `payload` as `cc` with the alg of its key, with header overrides; raw bytes if a string. */
export async function signAs(
  pki: string,
  cc: string,
  payload: unknown,
  header: Record<string, unknown> = {},
): Promise<string> {
  const { key, kid, alg } = signingKey(pki, cc);
  const bytes = new TextEncoder().encode(typeof payload === 'string' ? payload : canonicalJson(payload));
  return new CompactSign(bytes)
    .setProtectedHeader({ alg, typ: 'icros-msg+jws', kid, ...header } as never)
    .sign(key);
}

/**
 * A JWS put together by hand, signed with the alg of `cc`'s key: jose refuses to sign an
 * unknown `crit`, which is what a test must send. Only the signature step is the gateway's.
 */
export async function rawSign(
  pki: string,
  cc: string,
  header: Record<string, unknown>,
  payload: unknown,
): Promise<string> {
  const { key, kid, alg } = signingKey(pki, cc);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg, typ: 'icros-msg+jws', kid, ...header })}.${b64(payload)}`;
  const sig = await signBytes(alg, key, Buffer.from(input));
  return `${input}.${sig.toString('base64url')}`;
}
