/**
 * OIDC bearer JWTs on the admin API (`admin.oidc`): verified with jose against the issuer's
 * JWKS, with the issuer, the audience and an explicit algorithm allow-list (an unsigned
 * `alg: none` token or an HMAC token keyed with the public key never reaches a key). The
 * principal is `preferred_username` or `sub`; roles come from the configured claim.
 */
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';
import type { OidcConfig, Role } from '../config/load.js';
import { IcrosError } from '../errors.js';
import { ROLES } from './tokens.js';

/** Three base64url parts (the last empty for `alg: none`): a JWS compact serialization. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
}

/** Why a token was refused: `reason` goes into the audit log, `detail` to the caller. */
export class OidcRejection extends IcrosError {
  constructor(
    readonly reason: string,
    detail: string,
    cause?: unknown,
  ) {
    super('AUTH_INVALID', `OIDC token refused: ${detail}`, { cause });
  }
}

export interface OidcPrincipal {
  name: string;
  /** The icros roles the token carries; empty when it carries none. */
  roles: Role[];
}

export type OidcVerifier = (jwt: string) => Promise<OidcPrincipal>;

export function oidcVerifier(config: OidcConfig): OidcVerifier {
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5000 });
  return async (jwt) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, jwks, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: config.clockToleranceSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw rejection(err, config);
    }
    const name = [payload.preferred_username, payload.sub].find(
      (v): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200,
    );
    if (!name) throw new OidcRejection('oidc-no-subject', 'the token has no sub or preferred_username');
    return { name, roles: rolesOf(claim(payload, config.roleClaim)) };
  };
}

/** The claim named `path`: taken literally first (`https://example.org/roles`), else as a dotted path. */
function claim(payload: JWTPayload, path: string): unknown {
  if (path in payload) return payload[path];
  let v: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function rolesOf(v: unknown): Role[] {
  const names = typeof v === 'string' ? v.split(/[\s,]+/) : Array.isArray(v) ? v : [];
  return ROLES.filter((r) => names.includes(r));
}

function rejection(err: unknown, config: OidcConfig): IcrosError {
  if (err instanceof errors.JWTExpired) return new OidcRejection('oidc-expired', 'it has expired', err);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss')
      return new OidcRejection('oidc-wrong-issuer', `the issuer is not ${config.issuer}`, err);
    if (err.claim === 'aud')
      return new OidcRejection(
        'oidc-wrong-audience',
        `the audience does not include ${config.audience}`,
        err,
      );
    if (err.claim === 'nbf') return new OidcRejection('oidc-not-yet-valid', 'it is not valid yet (nbf)', err);
    return new OidcRejection('oidc-claim-invalid', `claim ${err.claim} is not valid (${err.reason})`, err);
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new OidcRejection(
      'oidc-alg-not-allowed',
      `the algorithm is not allowed (allowed: ${config.algorithms.join(', ')})`,
      err,
    );
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return new OidcRejection('oidc-unknown-kid', "its key id (kid) is not in the issuer's JWKS", err);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new OidcRejection('oidc-bad-signature', 'the signature does not verify', err);
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
    return new OidcRejection('oidc-malformed', 'it is not a well-formed signed JWT', err);
  }
  // JWKS unreachable, timed out, not JSON, not a key set: the issuer's fault, not the caller's.
  return new IcrosError('AUTH_PROVIDER_UNAVAILABLE', `cannot fetch the JWKS at ${config.jwksUrl}`, {
    cause: err,
  });
}
