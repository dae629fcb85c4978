/**
 * Verifying side: fails closed. The algorithm comes from the partner's allow-list, the key
 * from the partner registry by `kid` (never from `jwk`, `x5c`, `x5u` or `jku` in the
 * message: an embedded key is the attacker's key), and any `crit` entry is refused since
 * this gateway understands none (RFC 7515 §4.1.11).
 */
import type { Partner, SigningAlg } from '../config/load.js';
import { IcrosError } from '../errors.js';
import { parseUntrustedJson } from './json.js';
import { verifyBytes } from './jws-crypto.js';

const SUPPORTED: ReadonlySet<string> = new Set<SigningAlg>(['PS256', 'ES256', 'EdDSA']);
// The signature part may be empty so that `alg: none` is refused by name, not as malformed.
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

export interface Verified {
  header: { alg: SigningAlg; kid: string; typ: string };
  payload: unknown;
  /** The payload bytes as signed. */
  payloadBytes: Uint8Array;
}

/** Check header, key and signature of a compact JWS from `partner`; parse its JSON payload. */
export async function verifyJws(jws: string, partner: Partner, typ: string): Promise<Verified> {
  if (!COMPACT.test(jws)) {
    throw new IcrosError('JWS_MALFORMED', 'expected three base64url parts separated by dots (RFC 7515 §7.1)');
  }
  const header = parseHeader(jws.slice(0, jws.indexOf('.')));
  const alg = header.alg;
  if (typeof alg !== 'string' || !SUPPORTED.has(alg) || !partner.algorithms.includes(alg as SigningAlg)) {
    throw new IcrosError(
      'JWS_ALG_NOT_ALLOWED',
      `alg ${JSON.stringify(alg)} is not allowed for ${partner.country}; allowed: ${partner.algorithms.join(', ')}`,
    );
  }
  if (header.crit !== undefined) {
    throw new IcrosError(
      'JWS_CRIT_UNSUPPORTED',
      `crit ${JSON.stringify(header.crit)} names extensions this gateway does not support`,
    );
  }
  if (header.typ !== typ) {
    throw new IcrosError('JWS_HEADER_INVALID', `typ must be "${typ}", got ${JSON.stringify(header.typ)}`);
  }
  if (header.b64 !== undefined)
    throw new IcrosError('JWS_HEADER_INVALID', 'the b64 header parameter is not supported');
  const key = partner.signingKeys.find((k) => k.kid === header.kid);
  if (!key) {
    throw new IcrosError(
      'JWS_KID_UNKNOWN',
      `kid ${JSON.stringify(header.kid)} is not a registered signing key of ${partner.country}`,
    );
  }
  const cut = jws.lastIndexOf('.');
  const signingInput = Buffer.from(jws.slice(0, cut), 'latin1');
  const signature = Buffer.from(jws.slice(cut + 1), 'base64url');
  if (!(await verifyBytes(alg as SigningAlg, key.publicKey, signingInput, signature))) {
    throw new IcrosError(
      'JWS_SIGNATURE_INVALID',
      `the signature does not verify with ${partner.country}'s key ${key.kid}`,
    );
  }
  const payloadBytes = new Uint8Array(Buffer.from(jws.slice(jws.indexOf('.') + 1, cut), 'base64url'));
  return {
    header: { alg: alg as SigningAlg, kid: key.kid, typ },
    payload: parsePayload(payloadBytes),
    payloadBytes,
  };
}

function parsePayload(bytes: Uint8Array): unknown {
  try {
    return parseUntrustedJson(bytes, 'the JWS payload');
  } catch (err) {
    if (err instanceof IcrosError && err.code === 'BODY_MALFORMED') {
      throw new IcrosError('ENVELOPE_INVALID', err.message, { cause: err });
    }
    throw err;
  }
}

function parseHeader(b64: string): Record<string, unknown> {
  let header: unknown;
  try {
    header = parseUntrustedJson(Buffer.from(b64, 'base64url'), 'the JWS protected header');
  } catch (cause) {
    throw new IcrosError('JWS_MALFORMED', 'the protected header is not base64url-encoded JSON', { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new IcrosError('JWS_MALFORMED', 'the protected header is not a JSON object');
  }
  return header as Record<string, unknown>;
}
