import { createHash } from 'node:crypto';

/** `sha256:<base64url>` over the exact bytes (DESIGN §4 `messageDigest`). */
export function messageDigest(bytes: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('base64url')}`;
}

/** Lowercase hex SHA-256 (audit hashes). */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
