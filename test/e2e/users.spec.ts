/**
 * Local tokens through the admin API (`/api/users`), revocation taking effect at once, the
 * per-token rate limit and the body limit.
 */
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { authenticate } from '../../src/api/auth.js';
import { errorHandler, requestId } from '../../src/http/common.js';
import { admin, token } from '../helpers/clients.js';
import { type Federation, startFederation, testConfig } from '../helpers/federation.js';
import { handMadeJwt } from '../helpers/oidc.js';

describe('e2e local tokens: /api/users (pglite)', function () {
  this.timeout(120_000);
  let fed: Federation;
  let url: string;
  let boss: string;

  before(async () => {
    fed = await startFederation('pglite', ['FR'], { FR: { noWorker: true } });
    url = fed.gateways.FR!.adminUrl;
    boss = token(fed.pki, 'FR', 'admin');
  });
  after(async () => fed?.stop());

  it('creates a token that works at once for its role only, shown once', async () => {
    const r = await admin(url, boss, 'POST', '/api/users', { name: 'analyst-martin', role: 'analyst' });
    expect(r.status).to.equal(201);
    expect(Object.keys(r.json).sort()).to.deep.equal(['createdAt', 'name', 'role', 'token']);
    expect(r.json.token).to.match(/^icros_[A-Za-z0-9_-]{43}$/);
    expect((await admin(url, r.json.token, 'GET', '/api/messages')).status).to.equal(200);
    expect((await admin(url, r.json.token, 'GET', '/api/audit')).json.code).to.equal('ROLE_FORBIDDEN');
    const list = await admin(url, boss, 'GET', '/api/users');
    const listed = list.json.users.find((u: { name: string }) => u.name === 'analyst-martin');
    expect(listed).to.deep.equal({
      name: 'analyst-martin',
      role: 'analyst',
      source: 'local',
      createdAt: r.json.createdAt,
      createdBy: 'dev-admin',
      revokedAt: null,
    });
    expect(JSON.stringify(list.json)).to.not.include(r.json.token);
    expect(list.json.users.filter((u: { source: string }) => u.source === 'config')).to.have.length(3);
  });

  it('refuses a taken name (409), a bad body (400) and an oversized one (413)', async () => {
    const dup = await admin(url, boss, 'POST', '/api/users', { name: 'analyst-martin', role: 'auditor' });
    expect([dup.status, dup.json.code]).to.deep.equal([409, 'USER_NAME_TAKEN']);
    const extra = await admin(url, boss, 'POST', '/api/users', { name: 'x', role: 'analyst', token: 'mine' });
    expect([extra.status, extra.json.code, extra.json.errors[0].location]).to.deep.equal([
      400,
      'REQUEST_INVALID',
      '/token',
    ]);
    const role = await admin(url, boss, 'POST', '/api/users', { name: 'x', role: 'root' });
    expect(role.json.errors[0].location).to.equal('/role');
    const big = await admin(url, boss, 'POST', '/api/users', {
      name: 'x',
      role: 'analyst',
      pad: 'x'.repeat(5000),
    });
    expect([big.status, big.json.code]).to.deep.equal([413, 'PAYLOAD_TOO_LARGE']);
    expect((await admin(url, boss, 'POST', '/api/users', '{"name":')).json.code).to.equal('BODY_MALFORMED');
  });

  it('revokes: the token is refused at once saying so, audited; revoke again 409, unknown 404, config 409', async () => {
    const t = (await admin(url, boss, 'POST', '/api/users', { name: 'leaver', role: 'auditor' })).json.token;
    expect((await admin(url, t, 'GET', '/api/audit')).status).to.equal(200);
    const r = await admin(url, boss, 'POST', '/api/users/leaver/revoke');
    expect(r.status).to.equal(200);
    expect(Object.keys(r.json).sort()).to.deep.equal(['name', 'revokedAt']);
    const refused = await admin(url, t, 'GET', '/api/audit');
    expect([refused.status, refused.json.code]).to.deep.equal([401, 'AUTH_INVALID']);
    expect(refused.json.detail).to.include('revoked');
    expect(refused.headers.get('www-authenticate')).to.include('error="invalid_token"');
    const again = await admin(url, boss, 'POST', '/api/users/leaver/revoke');
    expect([again.status, again.json.code]).to.deep.equal([409, 'USER_ALREADY_REVOKED']);
    const unknown = await admin(url, boss, 'POST', '/api/users/nobody/revoke');
    expect([unknown.status, unknown.json.code]).to.deep.equal([404, 'USER_NOT_FOUND']);
    const inConfig = await admin(url, boss, 'POST', '/api/users/dev-analyst/revoke');
    expect([inConfig.status, inConfig.json.code]).to.deep.equal([409, 'USER_IN_CONFIG']);

    const audit = await admin(url, boss, 'GET', '/api/audit?limit=1000');
    const events = audit.json.events as {
      action: string;
      actor: { id: string };
      detail: Record<string, unknown>;
    }[];
    const mine = events.filter((e) => e.action.startsWith('user.') && e.detail.name === 'leaver');
    expect(mine.map((e) => [e.action, e.actor.id, e.detail.role])).to.deep.equal([
      ['user.created', 'dev-admin', 'auditor'],
      ['user.revoked', 'dev-admin', 'auditor'],
    ]);
    const failed = events.filter((e) => e.action === 'auth.failed').at(-1);
    expect(failed?.detail.reason).to.equal('revoked-token');
    expect(JSON.stringify(audit.json)).to.not.include(t);
  });

  it('refuses a JWT when no OIDC issuer is configured, and accepts the scheme in any case', async () => {
    const jwt = handMadeJwt({ alg: 'RS256' }, { sub: 'x' }, 'c2ln');
    const r = await admin(url, jwt, 'GET', '/api/messages');
    expect([r.status, r.json.code]).to.deep.equal([401, 'AUTH_INVALID']);
    expect(r.json.detail).to.include('admin.oidc');
    const lower = await fetch(`${url}/api/messages`, {
      headers: { authorization: `bearer ${token(fed.pki, 'FR')}` },
    });
    expect(lower.status).to.equal(200);
  });

  it('limits requests per token: 429 with Retry-After past the burst, other tokens unaffected', async () => {
    const config = await testConfig(
      'FR',
      { FR: { partner: 1, admin: 1 } },
      {
        admin: { rateLimit: { perSecond: 0.5, burst: 3 } },
      },
    );
    const app = express();
    app.use(requestId, authenticate(config));
    app.get('/x', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(errorHandler);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A bare app with a route of its own: plain fetch, not the admin() client that checks the
    // admin API's OpenAPI document.
    const get = (tok: string) => fetch(`${base}/x`, { headers: { authorization: `Bearer ${tok}` } });
    try {
      const analyst = token(fed.pki, 'FR', 'analyst');
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await get(analyst)).status);
      expect(statuses).to.deep.equal([200, 200, 200, 429]);
      const limited = await get(analyst);
      expect(((await limited.json()) as { code: string }).code).to.equal('ADMIN_RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 2);
      expect((await get(token(fed.pki, 'FR', 'auditor'))).status).to.equal(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
