/**
 * A local OIDC issuer for tests: an RS256 key pair made with jose, its JWKS served over
 * node:http on 127.0.0.1, and tokens signed with it (or deliberately wrong).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

export interface TestIssuer {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** The `admin.oidc` config block for this issuer. */
  config: { issuer: string; audience: string; jwksUrl: string };
  /** A valid token for `sub` with `claims` (roles etc.), overridable piece by piece. */
  sign(
    sub: string,
    claims?: JWTPayload,
    opts?: { iss?: string; aud?: string; exp?: number | string; kid?: string; key?: CryptoKey },
  ): Promise<string>;
  /** A key pair the JWKS does not hold (a forged signature). */
  otherKey(): Promise<CryptoKey>;
  /** Requests the JWKS endpoint has served. */
  fetches: number;
  close(): Promise<void>;
}

export async function startIssuer(): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
  const state = { fetches: 0 };
  const server = http.createServer((req, res) => {
    if (req.url === '/jwks') {
      state.fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = 'https://idp.example.test/realms/icros';
  const audience = 'icros-gateway-fr';
  const jwksUrl = `http://127.0.0.1:${port}/jwks`;
  return {
    issuer,
    audience,
    jwksUrl,
    config: { issuer, audience, jwksUrl },
    get fetches() {
      return state.fetches;
    },
    async sign(sub, claims = {}, opts = {}) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? jwk.kid, typ: 'JWT' })
        .setIssuer(opts.iss ?? issuer)
        .setAudience(opts.aud ?? audience)
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(opts.exp ?? '5m')
        .sign(opts.key ?? privateKey);
    },
    async otherKey() {
      return (await generateKeyPair('RS256')).privateKey;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A JWT by hand: header and payload as given, signature as given (empty for `alg: none`). */
export function handMadeJwt(header: object, payload: object, signature = ''): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64(header)}.${b64(payload)}.${signature}`;
}
