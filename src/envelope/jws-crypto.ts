/**
 * The signature step of a JWS (RFC 7515 §5.1 step 5, §5.2 step 8) for the algorithms this
 * gateway uses (RFC 7518 §3.5 PS256, §3.4 ES256, RFC 8037 EdDSA), with Node's own crypto.
 * An RSA signature (~0.3 ms or more) runs on libuv's thread pool, not on the event loop
 * (WebCrypto, which jose uses, kept the loop busy about 0.4 ms per PS256 signature). The
 * cheap operations run inline: an ES256 or EdDSA signature and every check take 0.03–0.1 ms,
 * and the trip through the pool cost two to three times that in CPU (measured: PS256 check
 * 0.028 ms inline, 0.084 ms through the pool; ES256 signature 0.032 ms, 0.070 ms).
 * Everything around it (headers, serialization, the checks of verify.ts) stays with the
 * callers.
 */
import { constants, type KeyObject, sign, verify } from 'node:crypto';
import type { SigningAlg } from '../config/load.js';

interface Params {
  digest: string | null;
  /** Sign on the thread pool (the operation costs more than the trip there). */
  offload: boolean;
  options: { padding?: number; saltLength?: number; dsaEncoding?: 'ieee-p1363' };
  /** The key types an algorithm may use (a key of another type never verifies). */
  keyTypes: string[];
}

const PARAMS: Record<SigningAlg, Params> = {
  PS256: {
    digest: 'sha256',
    offload: true,
    options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
    keyTypes: ['rsa', 'rsa-pss'],
  },
  ES256: { digest: 'sha256', offload: false, options: { dsaEncoding: 'ieee-p1363' }, keyTypes: ['ec'] },
  EdDSA: { digest: null, offload: false, options: {}, keyTypes: ['ed25519'] },
};

/** Whether `key` may be used with `alg` at all: the right type, RSA of 2048 bits or more, EC on P-256. */
export function keyFitsAlg(key: KeyObject, alg: SigningAlg): boolean {
  const p = PARAMS[alg];
  if (!p || !key.asymmetricKeyType || !p.keyTypes.includes(key.asymmetricKeyType)) return false;
  const details = key.asymmetricKeyDetails ?? {};
  if (alg === 'PS256') return (details.modulusLength ?? 0) >= 2048;
  if (alg === 'ES256') return details.namedCurve === 'prime256v1';
  return true;
}

/** Every algorithm this gateway signs and verifies with, in the order `algFor` tries them. */
export const SIGNING_ALGS: readonly SigningAlg[] = Object.freeze(Object.keys(PARAMS) as SigningAlg[]);

/**
 * The one algorithm `key` (private or public) fits: RSA of 2048 bits or more → PS256,
 * EC P-256 → ES256, Ed25519 → EdDSA; undefined for any other key. The key types do not
 * overlap, so the answer is never ambiguous.
 */
export function algFor(key: KeyObject): SigningAlg | undefined {
  return SIGNING_ALGS.find((alg) => keyFitsAlg(key, alg));
}

/** The key in words for error messages: "RSA 2048-bit", "EC prime256v1", "ed25519". */
export function describeKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? key.type;
  const details = key.asymmetricKeyDetails ?? {};
  if (details.modulusLength !== undefined) return `${type.toUpperCase()} ${details.modulusLength}-bit`;
  if (details.namedCurve !== undefined) return `${type.toUpperCase()} ${details.namedCurve}`;
  return type;
}

/** The signature of `signingInput` (ASCII `header.payload`) with `key` under `alg`. */
export function signBytes(alg: SigningAlg, key: KeyObject, signingInput: Buffer): Promise<Buffer> {
  const p = PARAMS[alg];
  if (!p || !keyFitsAlg(key, alg))
    return Promise.reject(new TypeError(`the signing key does not fit ${alg}`));
  if (!p.offload) {
    try {
      return Promise.resolve(sign(p.digest, signingInput, { key, ...p.options }));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return new Promise((resolve, reject) =>
    sign(p.digest, signingInput, { key, ...p.options }, (err, signature) =>
      err ? reject(err) : resolve(signature),
    ),
  );
}

/** Whether `signature` over `signingInput` verifies with `key` under `alg`; false on any error. */
export function verifyBytes(
  alg: SigningAlg,
  key: KeyObject,
  signingInput: Buffer,
  signature: Buffer,
): Promise<boolean> {
  const p = PARAMS[alg];
  if (!p || !keyFitsAlg(key, alg)) return Promise.resolve(false);
  try {
    return Promise.resolve(verify(p.digest, signingInput, { key, ...p.options }, signature));
  } catch {
    return Promise.resolve(false);
  }
}
