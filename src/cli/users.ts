/**
 * `icros users …`: local API tokens of the admin API.
 *
 *   icros users add NAME --role analyst|auditor|admin   prints the token once (stdout)
 *   icros users list
 *   icros users revoke NAME
 *
 * Either through the admin API (`--server URL --token ADMIN_TOKEN`, or ICROS_SERVER /
 * ICROS_TOKEN) or on the gateway's database directly (`--config gateway.json`): that is how
 * an operator creates the first admin token; it is audited with actor kind `operator`
 * (stop a PGlite gateway first; PostgreSQL may stay up). Exit codes: 0 ok, 1 refused, 2 usage.
 */
import os from 'node:os';
import { type Actor, createToken, listTokens, revokeToken, type TokenInfo } from '../api/tokens.js';
import { createAuditWriter } from '../audit/writer.js';
import { type GatewayConfig, loadConfig, type Role } from '../config/load.js';
import { openDb } from '../store/db.js';
import { type ApiOptions, apiJson, resolveApi } from './api.js';
import { UsageError } from './usage.js';

interface Options extends ApiOptions {
  config?: string;
  json: boolean;
}

interface Created {
  name: string;
  role: Role;
  token: string;
  createdAt: string;
}

/** Run `fn` on the gateway's own database, as the operator at this console. */
async function offline<T>(
  configFile: string,
  fn: (d: { config: GatewayConfig; db: Awaited<ReturnType<typeof openDb>>; actor: Actor }) => Promise<T>,
): Promise<T> {
  const config = loadConfig(configFile);
  const db = await openDb(config.database);
  try {
    return await fn({ config, db, actor: { kind: 'user', id: operatorId() } });
  } finally {
    await db.close();
  }
}

function operatorId(): string {
  try {
    return `operator:${os.userInfo().username}@${os.hostname()}`.slice(0, 200);
  } catch {
    return `operator:uid ${process.getuid?.() ?? '?'}@${os.hostname()}`;
  }
}

function viaConfig(opts: Options): boolean {
  if (opts.config && (opts.server || opts.token))
    throw new UsageError('give either --config (offline) or --server/--token (through the API), not both');
  if (opts.config) return true;
  if (opts.server || process.env.ICROS_SERVER) return false;
  throw new UsageError('give --server URL with an admin --token, or --config gateway.json (offline)');
}

export async function runUsersAdd(name: string, opts: Options & { role: Role }): Promise<void> {
  const created = viaConfig(opts)
    ? await offline(opts.config!, ({ config, db, actor }) =>
        createToken(
          createAuditWriter(db, () => new Date()),
          config,
          { name, role: opts.role },
          actor,
        ),
      )
    : await apiJson<Created>(resolveApi(opts), 'POST', '/api/users', { name, role: opts.role });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(created)}\n`);
    return;
  }
  // The token alone on stdout (TOKEN=$(icros users add …)); the note on stderr.
  process.stderr.write(
    `token for ${created.name} (role ${created.role}) — shown only this once, store it now:\n`,
  );
  process.stdout.write(`${created.token}\n`);
}

export async function runUsersList(opts: Options): Promise<void> {
  const users = viaConfig(opts)
    ? await offline(opts.config!, ({ config, db }) => listTokens(db, config))
    : (await apiJson<{ users: TokenInfo[] }>(resolveApi(opts), 'GET', '/api/users')).users;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ users })}\n`);
    return;
  }
  const width = Math.max(4, ...users.map((u) => u.name.length));
  process.stdout.write(`${'NAME'.padEnd(width)}  ROLE     SOURCE  CREATED                   BY / STATE\n`);
  for (const u of users) {
    const state = u.revokedAt ? `revoked ${u.revokedAt}` : u.source === 'config' ? 'gateway.json' : 'active';
    process.stdout.write(
      `${u.name.padEnd(width)}  ${u.role.padEnd(7)}  ${u.source.padEnd(6)}  ${(u.createdAt ?? '-').padEnd(24)}  ${u.createdBy ? `${u.createdBy}, ` : ''}${state}\n`,
    );
  }
}

export async function runUsersRevoke(name: string, opts: Options): Promise<void> {
  const r = viaConfig(opts)
    ? await offline(opts.config!, ({ config, db, actor }) =>
        revokeToken(
          createAuditWriter(db, () => new Date()),
          config,
          name,
          actor,
        ),
      )
    : await apiJson<{ name: string; revokedAt: string }>(
        resolveApi(opts),
        'POST',
        `/api/users/${encodeURIComponent(name)}/revoke`,
      );
  process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `${r.name}: revoked at ${r.revokedAt}\n`);
}
