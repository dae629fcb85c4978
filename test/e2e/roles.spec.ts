/**
 * The role matrix of the admin API: every route × every kind of caller. One table of routes
 * (add a row per new route); each caller either passes (any status but 401/403, never a 5xx),
 * or is refused with exactly 401 (who are you?) or 403 (you may not).
 */
import { expect } from 'chai';
import type { Role } from '../../src/config/load.js';
import { admin, HANDLING, token } from '../helpers/clients.js';
import { type Federation, startFederation } from '../helpers/federation.js';
import { startIssuer, type TestIssuer } from '../helpers/oidc.js';

const SOME_UUID = '0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b';

interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** A body, or a function making one per request (names that must differ). */
  body?: unknown | (() => unknown);
  /** Roles allowed besides admin (admin passes everywhere). */
  roles: Role[];
}

let seq = 0;

/** Every admin route of this branch. */
const ROUTES: Route[] = [
  { method: 'POST', path: '/api/reports?format=icros-case', body: [], roles: ['analyst'] },
  { method: 'GET', path: '/api/cases', roles: ['analyst'] },
  { method: 'GET', path: `/api/cases/${SOME_UUID}`, roles: ['analyst'] },
  {
    method: 'POST',
    path: `/api/cases/${SOME_UUID}/withdraw`,
    body: { purpose: 'matrix' },
    roles: ['analyst'],
  },
  { method: 'GET', path: `/api/cases/${SOME_UUID}/export`, roles: ['analyst'] },
  {
    method: 'POST',
    path: `/api/cases/${SOME_UUID}/forward`,
    body: { to: ['DE'], handling: HANDLING },
    roles: ['analyst'],
  },
  { method: 'GET', path: '/api/messages', roles: ['analyst'] },
  { method: 'GET', path: `/api/messages/${SOME_UUID}`, roles: ['analyst'] },
  { method: 'POST', path: '/api/messages/redrive', body: { state: 'dead' }, roles: [] },
  { method: 'POST', path: `/api/messages/${SOME_UUID}/redrive`, roles: [] },
  { method: 'GET', path: '/api/partners', roles: ['analyst', 'auditor'] },
  { method: 'GET', path: '/api/audit', roles: ['auditor'] },
  { method: 'GET', path: '/api/audit/export', roles: ['auditor'] },
  { method: 'GET', path: '/api/audit/verify', roles: ['auditor'] },
  { method: 'GET', path: '/api/audit/checkpoints', roles: ['auditor'] },
  { method: 'GET', path: '/api/users', roles: [] },
  {
    method: 'POST',
    path: '/api/users',
    body: () => ({ name: `matrix-${++seq}`, role: 'analyst' }),
    roles: [],
  },
  { method: 'POST', path: '/api/users/nobody-by-that-name/revoke', roles: [] },
];

/** Who calls: a role (allowed per row), or a refusal with its status and code. */
type Expect = { role: Role } | { status: 401 | 403; code: string };

describe('e2e role matrix (pglite)', function () {
  this.timeout(120_000);
  let fed: Federation;
  let issuer: TestIssuer;
  let url: string;
  const callers: { name: string; token: string | undefined; expect: Expect }[] = [];

  before(async () => {
    issuer = await startIssuer();
    fed = await startFederation('pglite', ['FR'], {
      FR: { noWorker: true, overrides: { admin: { oidc: issuer.config } } },
    });
    url = fed.gateways.FR!.adminUrl;
    const adminToken = token(fed.pki, 'FR', 'admin');
    for (const role of ['analyst', 'auditor', 'admin'] as const) {
      callers.push({ name: `config ${role}`, token: token(fed.pki, 'FR', role), expect: { role } });
      const local = await admin(url, adminToken, 'POST', '/api/users', { name: `local-${role}`, role });
      expect(local.status, JSON.stringify(local.json)).to.equal(201);
      callers.push({ name: `local ${role}`, token: local.json.token, expect: { role } });
      callers.push({
        name: `OIDC ${role}`,
        token: await issuer.sign(`oidc-${role}`, { roles: [role] }),
        expect: { role },
      });
    }
    const doomed = await admin(url, adminToken, 'POST', '/api/users', { name: 'doomed', role: 'admin' });
    expect((await admin(url, adminToken, 'POST', '/api/users/doomed/revoke')).status).to.equal(200);
    callers.push(
      { name: 'no token', token: undefined, expect: { status: 401, code: 'AUTH_REQUIRED' } },
      { name: 'unknown token', token: 'icros_not-a-token', expect: { status: 401, code: 'AUTH_INVALID' } },
      {
        name: 'revoked admin token',
        token: doomed.json.token,
        expect: { status: 401, code: 'AUTH_INVALID' },
      },
      {
        name: 'OIDC token without a role',
        token: await issuer.sign('oidc-nobody', { roles: ['viewer'] }),
        expect: { status: 403, code: 'ROLE_FORBIDDEN' },
      },
    );
  });
  after(async () => {
    await fed?.stop();
    await issuer?.close();
  });

  for (const route of ROUTES) {
    it(`${route.method} ${route.path} (${['admin', ...route.roles].join(', ')})`, async () => {
      const failures: string[] = [];
      for (const c of callers) {
        const body = typeof route.body === 'function' ? (route.body as () => unknown)() : route.body;
        const r = await admin(url, c.token, route.method, route.path, body);
        const want =
          'role' in c.expect
            ? c.expect.role === 'admin' || route.roles.includes(c.expect.role)
              ? 'pass'
              : { status: 403, code: 'ROLE_FORBIDDEN' }
            : c.expect;
        const got = `${r.status} ${r.json?.code ?? ''}`;
        if (want === 'pass') {
          if (r.status === 401 || r.status === 403 || r.status >= 500) failures.push(`${c.name}: ${got}`);
        } else {
          if (r.status !== want.status || r.json?.code !== want.code)
            failures.push(`${c.name}: ${got}, expected ${want.status} ${want.code}`);
          if (r.headers.get('content-type') !== 'application/problem+json; charset=utf-8')
            failures.push(`${c.name}: content-type ${r.headers.get('content-type')}`);
          if (
            want.status === 401 &&
            !r.headers.get('www-authenticate')?.startsWith('Bearer realm="icros-admin"')
          )
            failures.push(`${c.name}: 401 without WWW-Authenticate`);
        }
        if (!r.headers.get('x-request-id')) failures.push(`${c.name}: no X-Request-Id`);
      }
      expect(failures, failures.join('\n')).to.deep.equal([]);
    });
  }
});
