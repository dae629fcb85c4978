/**
 * Local API tokens through the admin API (role `admin` only):
 *
 *   GET  /api/users               {users: [{name, role, source, createdAt, createdBy, revokedAt}]}
 *   POST /api/users {name, role}  201 {name, role, token, createdAt} — the token, once
 *   POST /api/users/:name/revoke  {name, revokedAt}; refused at once from then on
 *
 * Creations and revocations are audited (`user.created`, `user.revoked`: actor, name, role).
 */
import express from 'express';
import type { GatewayContext } from '../context.js';
import { parseUntrustedJson } from '../envelope/json.js';
import { IcrosError } from '../errors.js';
import { bodyOf, rawBody } from '../http/common.js';
import { type Principal, requireRole } from './auth.js';
import { createToken, listTokens, revokeToken, TOKEN_NAME } from './tokens.js';

/** `{name, role}` is small: a larger body is refused before it is read. */
const MAX_BODY = 4096;

export function usersRouter(ctx: GatewayContext): express.Router {
  const r = express.Router();
  const actor = (res: express.Response) => ({
    kind: 'user' as const,
    id: (res.locals.principal as Principal).name,
  });

  r.get('/', requireRole('admin'), async (_req, res) => {
    res.json({ users: await listTokens(ctx.db, ctx.config) });
  });

  r.post(
    '/',
    requireRole('admin'),
    rawBody(Math.min(MAX_BODY, ctx.config.admin.maxBodyBytes)),
    async (req, res) => {
      const body = bodyOf(req);
      const input = parseUntrustedJson(body, 'the user request');
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new IcrosError('REQUEST_INVALID', 'expected {"name": "...", "role": "analyst|auditor|admin"}');
      }
      const unknown = Object.keys(input).filter((k) => k !== 'name' && k !== 'role');
      if (unknown.length) {
        throw new IcrosError(
          'REQUEST_INVALID',
          `unknown member ${JSON.stringify(unknown[0])}; send name and role`,
          {
            errors: unknown.map((k) => ({
              location: `/${k}`,
              rule: 'additionalProperties',
              message: 'is not allowed',
            })),
          },
        );
      }
      const { name, role } = input as { name?: unknown; role?: unknown };
      res.status(201).json(await createToken(ctx.tx, ctx.config, { name, role }, actor(res)));
    },
  );

  r.post('/:name/revoke', requireRole('admin'), async (req, res) => {
    const name = req.params.name;
    if (typeof name !== 'string' || !TOKEN_NAME.test(name))
      throw new IcrosError(
        'USER_NOT_FOUND',
        `no local token named ${JSON.stringify(String(name).slice(0, 100))}`,
      );
    res.json(await revokeToken(ctx.tx, ctx.config, name, actor(res)));
  });

  return r;
}
