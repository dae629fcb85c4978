/**
 * OIDC bearer JWTs on the admin API against a local issuer (JWKS over http on 127.0.0.1):
 * valid tokens per role, and every way a token must be refused — each a 401 AUTH_INVALID that
 * says why, audited as `auth.failed` with that reason.
 */
import { createHmac, createPublicKey } from 'node:crypto';
import { expect } from 'chai';
import { oidcVerifier } from '../../src/api/oidc.js';
import { isIcrosError } from '../../src/errors.js';
import { admin, token } from '../helpers/clients.js';
import { type Federation, startFederation, testConfig } from '../helpers/federation.js';
import { handMadeJwt, startIssuer, type TestIssuer } from '../helpers/oidc.js';

describe('e2e OIDC bearer tokens (pglite)', function () {
  this.timeout(120_000);
  let fed: Federation;
  let issuer: TestIssuer;
  let url: string;
  let auditor: string;

  before(async () => {
    issuer = await startIssuer();
    fed = await startFederation('pglite', ['FR'], {
      FR: {
        noWorker: true,
        overrides: { admin: { oidc: { ...issuer.config, roleClaim: 'realm_access.roles' } } },
      },
    });
    url = fed.gateways.FR!.adminUrl;
    auditor = token(fed.pki, 'FR', 'auditor');
  });
  after(async () => {
    await fed?.stop();
    await issuer?.close();
  });

  const roles = (...r: string[]) => ({ realm_access: { roles: r } });

  /** The token is refused with 401 naming `words`, and the refusal is audited with `reason`. */
  async function refused(jwt: string, words: string, reason: string): Promise<void> {
    const r = await admin(url, jwt, 'GET', '/api/messages');
    expect(r.status, JSON.stringify(r.json)).to.equal(401);
    expect(r.json.code).to.equal('AUTH_INVALID');
    expect(r.json.detail).to.include(words);
    expect(r.headers.get('www-authenticate')).to.include('error="invalid_token"');
    const events = await admin(url, auditor, 'GET', '/api/audit?action=auth.failed&limit=1000');
    const last = events.json.events.at(-1);
    expect(last.detail.reason).to.equal(reason);
    expect(JSON.stringify(events.json)).to.not.include(jwt.split('.')[2] || jwt);
  }

  it('accepts a valid token per role, with the role from a nested claim', async () => {
    const analyst = await issuer.sign('alice', roles('analyst'));
    expect((await admin(url, analyst, 'GET', '/api/messages')).status).to.equal(200);
    expect((await admin(url, analyst, 'GET', '/api/audit')).status).to.equal(403);
    const aud = await issuer.sign('bob', roles('auditor'));
    expect((await admin(url, aud, 'GET', '/api/audit')).status).to.equal(200);
    expect((await admin(url, aud, 'GET', '/api/messages')).status).to.equal(403);
    const adm = await issuer.sign('carol', roles('admin'));
    expect((await admin(url, adm, 'GET', '/api/users')).status).to.equal(200);
  });

  it('applies every role of a token that carries several, and records preferred_username as the actor', async () => {
    const both = await issuer.sign('f3a9-opaque-sub', {
      ...roles('analyst', 'auditor', 'not-ours'),
      preferred_username: 'analyst.dupont',
    });
    expect((await admin(url, both, 'GET', '/api/messages')).status).to.equal(200);
    expect((await admin(url, both, 'GET', '/api/audit/verify')).status).to.equal(200);
    expect((await admin(url, both, 'GET', '/api/users')).json.code).to.equal('ROLE_FORBIDDEN');
    const verified = await admin(
      url,
      auditor,
      'GET',
      '/api/audit?action=audit.verified&actor=analyst.dupont',
    );
    expect(verified.json.events).to.have.length(1);
  });

  it('answers 403 with the claim named when the token carries no icros role', async () => {
    const r = await admin(url, await issuer.sign('dave', roles('viewer')), 'GET', '/api/messages');
    expect(r.status).to.equal(403);
    expect(r.json.code).to.equal('ROLE_FORBIDDEN');
    expect(r.json.detail).to.include('realm_access.roles').and.include('dave');
  });

  it('refuses a token of another issuer', async () => {
    await refused(
      await issuer.sign('alice', roles('analyst'), { iss: 'https://evil.example.test' }),
      'issuer',
      'oidc-wrong-issuer',
    );
  });

  it('refuses a token for another audience', async () => {
    await refused(
      await issuer.sign('alice', roles('analyst'), { aud: 'some-other-app' }),
      'audience',
      'oidc-wrong-audience',
    );
  });

  it('refuses an expired token (beyond the clock tolerance)', async () => {
    const exp = Math.floor(Date.now() / 1000) - 120;
    await refused(await issuer.sign('alice', roles('analyst'), { exp }), 'expired', 'oidc-expired');
  });

  it('refuses an unsigned token (alg: none)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = handMadeJwt(
      { alg: 'none', typ: 'JWT' },
      { iss: issuer.issuer, aud: issuer.audience, sub: 'mallory', exp: now + 300, ...roles('admin') },
    );
    await refused(jwt, 'algorithm', 'oidc-alg-not-allowed');
  });

  it('refuses a token whose kid is not in the JWKS', async () => {
    await refused(
      await issuer.sign('alice', roles('analyst'), { kid: 'rotated-away' }),
      'key id',
      'oidc-unknown-kid',
    );
  });

  it('refuses a token signed by another key under the known kid', async () => {
    await refused(
      await issuer.sign('mallory', roles('admin'), { key: await issuer.otherKey() }),
      'signature',
      'oidc-bad-signature',
    );
  });

  it('refuses HS256 keyed with the public key (algorithm confusion)', async () => {
    const jwks = (await (await fetch(issuer.jwksUrl)).json()) as { keys: object[] };
    const pem = createPublicKey({ key: jwks.keys[0] as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const now = Math.floor(Date.now() / 1000);
    const unsigned = handMadeJwt(
      { alg: 'HS256', typ: 'JWT', kid: 'test-key-1' },
      { iss: issuer.issuer, aud: issuer.audience, sub: 'mallory', exp: now + 300, ...roles('admin') },
    ).slice(0, -1);
    const jwt = `${unsigned}.${createHmac('sha256', pem).update(unsigned).digest('base64url')}`;
    await refused(jwt, 'algorithm', 'oidc-alg-not-allowed');
  });

  it('answers 503 AUTH_PROVIDER_UNAVAILABLE when the JWKS cannot be fetched', async () => {
    const verify = oidcVerifier({
      ...issuer.config,
      jwksUrl: 'http://127.0.0.1:1/jwks',
      roleClaim: 'roles',
      algorithms: ['RS256'],
      clockToleranceSeconds: 30,
    });
    const err = await verify(await issuer.sign('alice', { roles: ['analyst'] })).catch((e) => e);
    expect(isIcrosError(err, 'AUTH_PROVIDER_UNAVAILABLE'), String(err)).to.equal(true);
    expect(err.status).to.equal(503);
  });

  it('refuses an http JWKS URL that is not loopback, and HMAC algorithms, at config load', async () => {
    const ports = { FR: { partner: 1, admin: 1 } };
    const load = (oidc: object) =>
      testConfig('FR', ports, { admin: { oidc: { ...issuer.config, ...oidc } } }).then(
        () => undefined,
        (e) => e,
      );
    const http = await load({ jwksUrl: 'http://idp.example.test/jwks' });
    expect(http?.code).to.equal('CONFIG_INVALID');
    expect(http.message).to.include('/admin/oidc/jwksUrl');
    const hmac = await load({ algorithms: ['HS256'] });
    expect(hmac?.code).to.equal('CONFIG_INVALID');
    expect(hmac.message).to.include('/admin/oidc/algorithms');
    expect(await load({ jwksUrl: 'https://idp.example.test/jwks' })).to.equal(undefined);
  });
});
