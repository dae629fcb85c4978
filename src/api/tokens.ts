/**
 * Local API tokens: issued by `icros users add` or `POST /api/users`, shown once, stored only
 * as their SHA-256 (table `api_tokens`, migration 007). Tokens from the gateway config
 * (`admin.tokens`) are listed beside them but live in gateway.json, not here.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ActorKind } from '../audit/append.js';
import type { AuditWriter } from '../audit/writer.js';
import type { GatewayConfig, Role } from '../config/load.js';
import { IcrosError } from '../errors.js';
import type { Queryable } from '../store/db.js';
import { sql } from '../store/sql.js';

export const ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];

/** A token name: what the audit log records as the actor. */
export const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

export interface TokenInfo {
  name: string;
  role: Role;
  source: 'config' | 'local';
  createdAt: string | null;
  createdBy: string | null;
  revokedAt: string | null;
}

export interface Actor {
  kind: ActorKind;
  id: string;
}

/** Lowercase hex SHA-256 of a token, as stored (and as `admin.tokens[].sha256`). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** 256 random bits, base64url, with a prefix that secret scanners can recognise. */
export function newToken(): string {
  return `icros_${randomBytes(32).toString('base64url')}`;
}

/** The stored token with this hash, revoked or not. */
export async function findToken(
  db: Queryable,
  sha256: string,
): Promise<{ name: string; role: Role; sha256: string; revoked: boolean } | undefined> {
  const [row] = await db.query<{ name: string; role: Role; sha256: string; revoked_at: Date | null }>(
    sql('findApiToken'),
    [sha256],
  );
  return row
    ? { name: row.name, role: row.role, sha256: row.sha256, revoked: row.revoked_at !== null }
    : undefined;
}

/** Every config token, then every local token ever issued (revoked ones with `revokedAt`). */
export async function listTokens(db: Queryable, config: GatewayConfig): Promise<TokenInfo[]> {
  const rows = await db.query<{
    name: string;
    role: Role;
    created_at: Date;
    created_by: string;
    revoked_at: Date | null;
  }>(sql('listApiTokens'));
  return [
    ...config.admin.tokens.map((t) => ({
      name: t.name,
      role: t.role,
      source: 'config' as const,
      createdAt: null,
      createdBy: null,
      revokedAt: null,
    })),
    ...rows.map((r) => ({
      name: r.name,
      role: r.role,
      source: 'local' as const,
      createdAt: iso(r.created_at),
      createdBy: r.created_by,
      revokedAt: r.revoked_at ? iso(r.revoked_at) : null,
    })),
  ];
}

/**
 * Issue a token named `name` with `role`, audited as `user.created` (actor, name, role —
 * never the token). The token is returned once and not kept.
 */
export async function createToken(
  tx: AuditWriter,
  config: GatewayConfig,
  input: { name: unknown; role: unknown },
  actor: Actor,
): Promise<{ name: string; role: Role; token: string; createdAt: string }> {
  const { name, role } = checkInput(input);
  if (config.admin.tokens.some((t) => t.name === name)) {
    throw new IcrosError('USER_NAME_TAKEN', `a token named ${name} is defined in the gateway config`);
  }
  const token = newToken();
  const row = await tx(async (q) => {
    const [r] = await q.query<{ name: string; role: Role; created_at: Date }>(sql('insertApiToken'), [
      name,
      role,
      hashToken(token),
      actor.id,
    ]);
    if (r) q.audit({ actor, action: 'user.created', subject: {}, detail: { name, role } });
    return r;
  });
  if (!row)
    throw new IcrosError('USER_NAME_TAKEN', `an active token is already named ${name}; revoke it first`);
  return { name: row.name, role: row.role, token, createdAt: iso(row.created_at) };
}

/** Revoke the active local token `name`, audited as `user.revoked`; refused at once from then on. */
export async function revokeToken(
  tx: AuditWriter,
  config: GatewayConfig,
  name: string,
  actor: Actor,
): Promise<{ name: string; revokedAt: string }> {
  const outcome = await tx(async (q) => {
    const [r] = await q.query<{ name: string; role: Role; revoked_at: Date }>(sql('revokeApiToken'), [
      name,
      actor.id,
    ]);
    if (r) {
      q.audit({ actor, action: 'user.revoked', subject: {}, detail: { name, role: r.role } });
      return r;
    }
    return (await q.query(sql('apiTokenNameExists'), [name])).length > 0 ? 'revoked' : 'unknown';
  });
  if (typeof outcome === 'object') return { name: outcome.name, revokedAt: iso(outcome.revoked_at) };
  if (outcome === 'revoked')
    throw new IcrosError('USER_ALREADY_REVOKED', `the token ${name} is already revoked`);
  if (config.admin.tokens.some((t) => t.name === name)) {
    throw new IcrosError(
      'USER_IN_CONFIG',
      `the token ${name} is defined in the gateway config: remove it from admin.tokens and restart`,
    );
  }
  throw new IcrosError('USER_NOT_FOUND', `no local token named ${JSON.stringify(name.slice(0, 100))}`);
}

function checkInput(input: { name: unknown; role: unknown }): { name: string; role: Role } {
  const errors = [];
  if (typeof input.name !== 'string' || !TOKEN_NAME.test(input.name)) {
    errors.push({
      location: '/name',
      rule: 'pattern',
      message: 'must be 1–100 characters of A-Z a-z 0-9 . _ @ -, starting with a letter or digit',
    });
  }
  if (typeof input.role !== 'string' || !ROLES.includes(input.role as Role)) {
    errors.push({ location: '/role', rule: 'enum', message: `must be one of ${ROLES.join(', ')}` });
  }
  if (errors.length) {
    throw new IcrosError('REQUEST_INVALID', errors.map((e) => `${e.location} ${e.message}`).join('; '), {
      errors,
    });
  }
  return { name: input.name as string, role: input.role as Role };
}

function iso(d: Date | string): string {
  return (d instanceof Date ? d : new Date(d)).toISOString();
}
