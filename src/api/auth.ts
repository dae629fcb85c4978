/**
 * Bearer authentication of the admin listener, then a per-token rate limit. A bearer is one of:
 *   - a config token (`admin.tokens`: name, role, SHA-256 — what `icros pki init` writes),
 *   - a local token (`icros users add`, table `api_tokens`: looked up by its SHA-256; a
 *     revoked one is refused at once, on every replica, since every request reads the row),
 *   - an OIDC JWT when `admin.oidc` is configured (oidc.ts).
 * Roles: analyst (cases, messages), auditor (audit), admin (everything). 401 (with
 * `WWW-Authenticate`, RFC 6750 §3) means "who are you?"; 403 means "you may not".
 */
import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { GatewayConfig, Role } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { IcrosError } from '../errors.js';
import { RateLimiter } from '../inbound/rate.js';
import { looksLikeJwt, OidcRejection, oidcVerifier } from './oidc.js';
import { TokenBuckets } from './rate-limit.js';
import { findToken, hashToken } from './tokens.js';

export { hashToken } from './tokens.js';

export interface Principal {
  /** What the audit log records as the actor: the token's name, or the OIDC subject. */
  name: string;
  /** The strongest of `roles` (admin, else the first): kept for code that reads one role. */
  role: Role;
  /** Every role that applies (an OIDC token may carry several). */
  roles: Role[];
  source: 'config' | 'local' | 'oidc';
}

const REALM = 'icros-admin';

export function authenticate(config: GatewayConfig, ctx?: GatewayContext): RequestHandler {
  const known = config.admin.tokens.map((t) => ({ ...t, digest: Buffer.from(t.sha256, 'hex') }));
  const audit = ctx ? auditFailures(ctx) : async () => {};
  const oidc = config.admin.oidc ? oidcVerifier(config.admin.oidc) : undefined;
  const limits = new TokenBuckets(config.admin.rateLimit.perSecond, config.admin.rateLimit.burst);

  /** Audit why, answer 401 with a challenge naming the error (RFC 6750 §3.1). */
  const refuse = async (
    req: Parameters<RequestHandler>[0],
    res: Response,
    reason: string,
    err: IcrosError,
  ) => {
    await audit(req.method, req.originalUrl, reason);
    challenge(res, 'invalid_token', err.message);
    return err;
  };

  return async (req, res, next) => {
    const header = req.get('authorization');
    if (!header) {
      challenge(res);
      throw new IcrosError('AUTH_REQUIRED', 'send Authorization: Bearer <token>');
    }
    const m = /^Bearer +([\x21-\x7e]{1,16384})$/i.exec(header);
    if (!m) {
      throw await refuse(
        req,
        res,
        'malformed',
        new IcrosError('AUTH_INVALID', 'the Authorization header is not "Bearer <token>"'),
      );
    }
    const bearer = m[1]!;
    let principal: Principal;
    let bucket: string;
    if (looksLikeJwt(bearer)) {
      if (!oidc) {
        throw await refuse(
          req,
          res,
          'oidc-not-configured',
          new IcrosError(
            'AUTH_INVALID',
            'the token is a JWT but this gateway accepts no OIDC tokens (admin.oidc)',
          ),
        );
      }
      let found: Awaited<ReturnType<typeof oidc>>;
      try {
        found = await oidc(bearer);
      } catch (err) {
        if (err instanceof OidcRejection) throw await refuse(req, res, err.reason, err);
        throw err;
      }
      if (found.roles.length === 0) {
        await audit(req.method, req.originalUrl, 'oidc-no-role');
        challenge(res, 'insufficient_scope');
        throw new IcrosError(
          'ROLE_FORBIDDEN',
          `${found.name} is authenticated but the token's "${config.admin.oidc!.roleClaim}" claim names no icros role (analyst, auditor or admin)`,
        );
      }
      principal = { name: found.name, role: strongest(found.roles), roles: found.roles, source: 'oidc' };
      bucket = `oidc:${found.name}`;
    } else {
      const hex = hashToken(bearer);
      const digest = Buffer.from(hex, 'hex');
      let hit: Principal | undefined;
      for (const t of known) {
        if (timingSafeEqual(t.digest, digest) && !hit)
          hit = { name: t.name, role: t.role, roles: [t.role], source: 'config' };
      }
      if (!hit && ctx) {
        const row = await findToken(ctx.db, hex);
        if (row && timingSafeEqual(Buffer.from(row.sha256, 'hex'), digest)) {
          if (row.revoked) {
            throw await refuse(
              req,
              res,
              'revoked-token',
              new IcrosError(
                'AUTH_INVALID',
                `this token (${row.name}) was revoked; ask an admin for a new one`,
              ),
            );
          }
          hit = { name: row.name, role: row.role, roles: [row.role], source: 'local' };
        }
      }
      if (!hit) {
        throw await refuse(
          req,
          res,
          'unknown-token',
          new IcrosError('AUTH_INVALID', 'the token is not known to this gateway'),
        );
      }
      principal = hit;
      bucket = hex;
    }
    const wait = limits.take(bucket);
    if (wait > 0) {
      res.set('Retry-After', String(wait));
      throw new IcrosError(
        'ADMIN_RATE_LIMITED',
        `more than ${config.admin.rateLimit.perSecond} requests per second (bursts of ${config.admin.rateLimit.burst}) with this token; retry in ${wait} s`,
      );
    }
    res.locals.principal = principal;
    next();
  };
}

function strongest(roles: Role[]): Role {
  return roles.includes('admin') ? 'admin' : roles[0]!;
}

/** `WWW-Authenticate: Bearer realm=…[, error=…, error_description=…]` (RFC 6750 §3). */
function challenge(
  res: Response,
  error?: 'invalid_token' | 'insufficient_scope',
  description?: string,
): void {
  const parts = [`realm="${REALM}"`];
  if (error) parts.push(`error="${error}"`);
  // error_description: %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
  if (description)
    parts.push(
      `error_description="${description.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, "'").slice(0, 300)}"`,
    );
  res.set('WWW-Authenticate', `Bearer ${parts.join(', ')}`);
}

/**
 * Failed authentications go into the audit chain (`auth.failed`: method, path, why — never the
 * token), at most 10 per second: beyond that they are counted, and the next one audited says
 * how many were left out, so a flood of bad tokens cannot flood the chain.
 */
function auditFailures(ctx: GatewayContext) {
  const limiter = new RateLimiter();
  let suppressed = 0;
  return async (method: string, url: string, reason: string) => {
    if (!limiter.take('auth', 10)) {
      suppressed++;
      return;
    }
    const left = suppressed;
    suppressed = 0;
    await ctx
      .tx(async (q) =>
        q.audit({
          actor: { kind: 'user', id: 'unauthenticated' },
          action: 'auth.failed',
          subject: {},
          detail: {
            method,
            path: url.split('?')[0]!.slice(0, 200),
            reason,
            ...(left ? { suppressedBefore: left } : {}),
          },
        }),
      )
      .catch(() => {});
  };
}

/** Allow `roles` (admin always passes); a principal with any of them passes. */
export function requireRole(...roles: Role[]): RequestHandler {
  return (_req, res, next) => {
    const p = res.locals.principal as Principal | undefined;
    if (!p) {
      challenge(res);
      throw new IcrosError('AUTH_REQUIRED', 'send Authorization: Bearer <token>');
    }
    const has = p.roles ?? [p.role];
    if (!has.includes('admin') && !roles.some((r) => has.includes(r))) {
      challenge(res, 'insufficient_scope');
      throw new IcrosError(
        'ROLE_FORBIDDEN',
        `role ${has.join(', ')} cannot do this; needs ${[...roles, 'admin'].join(' or ')}`,
      );
    }
    next();
  };
}
