/**
 * Bearer-token authentication for the admin listener. Only SHA-256 hashes of local tokens
 * are configured; the presented token is hashed and compared in constant time with each.
 * Roles: analyst (cases, messages), auditor (audit), admin (everything).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { GatewayConfig, Role } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { IcrosError } from '../errors.js';
import { RateLimiter } from '../inbound/rate.js';

export interface Principal {
  name: string;
  role: Role;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function authenticate(config: GatewayConfig, ctx?: GatewayContext): RequestHandler {
  const known = config.admin.tokens.map((t) => ({ ...t, digest: Buffer.from(t.sha256, 'hex') }));
  const audit = ctx ? auditFailures(ctx) : () => {};
  return async (req, res, next) => {
    const header = req.get('authorization');
    if (!header) throw new IcrosError('AUTH_REQUIRED', 'send Authorization: Bearer <token>');
    const m = /^Bearer ([\x21-\x7e]{1,4096})$/.exec(header);
    if (!m) {
      await audit(req.method, req.originalUrl, 'malformed');
      throw new IcrosError('AUTH_INVALID', 'the Authorization header is not "Bearer <token>"');
    }
    const digest = Buffer.from(hashToken(m[1]!), 'hex');
    let found: Principal | undefined;
    for (const t of known)
      if (timingSafeEqual(t.digest, digest) && !found) found = { name: t.name, role: t.role };
    if (!found) {
      await audit(req.method, req.originalUrl, 'unknown-token');
      throw new IcrosError('AUTH_INVALID', 'the token is not known to this gateway');
    }
    res.locals.principal = found;
    next();
  };
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

/** Allow `roles` (admin always passes). */
export function requireRole(...roles: Role[]): RequestHandler {
  return (_req, res, next) => {
    const p = res.locals.principal as Principal | undefined;
    if (!p) throw new IcrosError('AUTH_REQUIRED', 'send Authorization: Bearer <token>');
    if (p.role !== 'admin' && !roles.includes(p.role)) {
      throw new IcrosError(
        'ROLE_FORBIDDEN',
        `role ${p.role} cannot do this; needs ${[...roles, 'admin'].join(' or ')}`,
      );
    }
    next();
  };
}
