/**
 * Signing side of the envelope: a message or receipt becomes one JWS in compact
 * serialization over the RFC 8785 canonical JSON of its payload. The caller stores the
 * returned string as is; it is never re-signed (PS256/ES256 signatures are randomized).
 */
import type { GatewayConfig } from '../config/load.js';
import { canonicalJson } from './json.js';
import { signBytes } from './jws-crypto.js';

export const MESSAGE_TYP = 'icros-msg+jws';
export const RECEIPT_TYP = 'icros-receipt+jws';
export const CHECKPOINT_TYP = 'icros-checkpoint+jws';

export type Signer = Pick<GatewayConfig['signing'], 'alg' | 'kid' | 'key'>;

/** Sign `payload` with the gateway key; `kid` is the `x5t#S256` of the signing certificate. */
export async function signJws(payload: unknown, signer: Signer, typ: string): Promise<string> {
  const header = Buffer.from(JSON.stringify({ alg: signer.alg, typ, kid: signer.kid })).toString('base64url');
  const signingInput = `${header}.${Buffer.from(canonicalJson(payload)).toString('base64url')}`;
  const signature = await signBytes(signer.alg, signer.key, Buffer.from(signingInput, 'latin1'));
  return `${signingInput}.${signature.toString('base64url')}`;
}
