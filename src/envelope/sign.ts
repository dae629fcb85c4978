/**
 * Signing side of the envelope: a message or receipt becomes one JWS in compact
 * serialization over the RFC 8785 canonical JSON of its payload. The caller stores the
 * returned string as is; it is never re-signed (PS256/ES256 signatures are randomized).
 */
import { CompactSign } from 'jose';
import type { GatewayConfig } from '../config/load.js';
import { canonicalJson } from './json.js';

export const MESSAGE_TYP = 'icros-msg+jws';
export const RECEIPT_TYP = 'icros-receipt+jws';
export const CHECKPOINT_TYP = 'icros-checkpoint+jws';

export type Signer = Pick<GatewayConfig['signing'], 'alg' | 'kid' | 'key'>;

/** Sign `payload` with the gateway key; `kid` is the `x5t#S256` of the signing certificate. */
export async function signJws(payload: unknown, signer: Signer, typ: string): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(payload));
  return new CompactSign(bytes)
    .setProtectedHeader({ alg: signer.alg, typ, kid: signer.kid })
    .sign(signer.key);
}
