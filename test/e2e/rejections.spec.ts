import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { readAuditEvents } from '../../src/audit/append.js';
import { createRootCa, issueTlsCert } from '../../src/pki/issue.js';
import {
  envelope,
  partnerRequest,
  rawSign,
  sampleCase,
  signAs,
  signingKey,
  tlsIdentity,
} from '../helpers/clients.js';
import { type Federation, startFederation } from '../helpers/federation.js';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('e2e partner listener rejections (pglite)', () => {
  let fed: Federation;
  let deUrl: string;
  let fr: ReturnType<typeof tlsIdentity>;

  before(async () => {
    fed = await startFederation('pglite', ['FR', 'DE']);
    deUrl = fed.gateways.DE!.partnerUrl;
    fr = tlsIdentity(fed.pki, 'FR');
  });
  after(async () => fed?.stop());

  const counts = async () => {
    const db = fed.gateways.DE!.ctx.db;
    const [m] = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM messages WHERE direction = 'in'",
    );
    const [c] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM cases');
    const rejected = (await readAuditEvents(db, 0, 100_000)).filter((e) => e.action === 'message.rejected');
    return { messages: m!.n, cases: c!.n, rejected: rejected.length, lastCode: rejected.at(-1)?.detail.code };
  };

  /** Send `body` as FR and expect `status`/`code`, nothing stored, the rejection audited. */
  async function expectRejected(
    body: string | Buffer,
    status: number,
    code: string,
    opts: { contentType?: string } = {},
  ) {
    const before = await counts();
    const res = await partnerRequest(deUrl, fr, { body, ...opts });
    expect(res.status, res.body).to.equal(status);
    expect(res.contentType).to.match(/application\/problem\+json/);
    const problem = JSON.parse(res.body);
    expect(problem.code).to.equal(code);
    expect(problem.status).to.equal(status);
    expect(problem.detail).to.be.a('string').and.not.equal('');
    const after = await counts();
    expect(after.messages, 'messages stored').to.equal(before.messages);
    expect(after.cases, 'cases stored').to.equal(before.cases);
    expect(after.rejected, 'rejection audited').to.equal(before.rejected + 1);
    expect(after.lastCode).to.equal(code);
    return problem;
  }

  describe('at the TLS handshake', () => {
    it('refuses a client without a certificate', async () => {
      const err = await partnerRequest(deUrl, { ca: fr.ca }, { body: 'x' }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err, 'handshake must fail').to.be.instanceOf(Error);
    });

    it('refuses a certificate from another CA', async () => {
      const rogueCa = createRootCa({ commonName: 'Rogue CA' });
      const rogue = issueTlsCert(rogueCa, { commonName: 'FR gateway', country: 'FR' });
      const err = await partnerRequest(
        deUrl,
        { ca: fr.ca, cert: rogue.certPem, key: rogue.keyPem },
        { body: 'x' },
      ).then(
        () => null,
        (e: Error) => e,
      );
      expect(err, 'handshake must fail').to.be.instanceOf(Error);
    });

    it('refuses a TLS 1.2-only client', async () => {
      const err = await partnerRequest(deUrl, fr, {
        body: 'x',
        tls: { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' },
      }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err, 'handshake must fail').to.be.instanceOf(Error);
    });
  });

  it('answers 403 PARTNER_UNKNOWN to a certificate of the right CA that is not registered', async () => {
    const ca = {
      certPem: readFileSync(path.join(fed.pki, 'ca.crt'), 'utf8'),
      keyPem: readFileSync(path.join(fed.pki, 'ca.key'), 'utf8'),
    };
    const stranger = issueTlsCert(ca, { commonName: 'FR gateway', country: 'FR' });
    const before = await counts();
    const res = await partnerRequest(
      deUrl,
      { ca: fr.ca, cert: stranger.certPem, key: stranger.keyPem },
      { body: 'x' },
    );
    expect(res.status).to.equal(403);
    expect(JSON.parse(res.body).code).to.equal('PARTNER_UNKNOWN');
    expect((await counts()).rejected).to.equal(before.rejected + 1);
  });

  it('415 for a wrong content type', async () => {
    await expectRejected(await signAs(fed.pki, 'FR', envelope('FR', 'DE')), 415, 'UNSUPPORTED_MEDIA_TYPE', {
      contentType: 'application/json',
    });
  });

  it('413 for an oversized body', async () => {
    await expectRejected(Buffer.alloc(3 * 1024 * 1024, 0x41), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('401 for a malformed JWS', async () => {
    await expectRejected('this is not a jws', 401, 'JWS_MALFORMED');
    await expectRejected('e30.e30', 401, 'JWS_MALFORMED');
    await expectRejected(`${b64('not json')}.${b64('{}')}.AAAA`, 401, 'JWS_MALFORMED');
  });

  it('401 for alg none', async () => {
    const { kid } = signingKey(fed.pki, 'FR');
    const jws = `${b64({ alg: 'none', typ: 'icros-msg+jws', kid })}.${b64(envelope('FR', 'DE'))}.`;
    await expectRejected(jws, 401, 'JWS_ALG_NOT_ALLOWED');
  });

  it("401 for HS256 keyed with the partner's public key", async () => {
    const { kid } = signingKey(fed.pki, 'FR');
    const publicPem = readFileSync(path.join(fed.pki, 'FR', 'sign.crt'), 'utf8');
    const input = `${b64({ alg: 'HS256', typ: 'icros-msg+jws', kid })}.${b64(envelope('FR', 'DE'))}`;
    const mac = createHmac('sha256', publicPem).update(input).digest('base64url');
    await expectRejected(`${input}.${mac}`, 401, 'JWS_ALG_NOT_ALLOWED');
  });

  it("401 for a valid signature by another partner's key (FR on the TLS, BE's key in the JWS)", async () => {
    await expectRejected(await signAs(fed.pki, 'BE', envelope('FR', 'DE')), 401, 'JWS_KID_UNKNOWN');
    // BE's key claiming FR's kid: the signature does not verify with FR's registered key.
    const { kid } = signingKey(fed.pki, 'FR');
    await expectRejected(
      await signAs(fed.pki, 'BE', envelope('FR', 'DE'), { kid }),
      401,
      'JWS_SIGNATURE_INVALID',
    );
  });

  it('401 for an unknown crit entry', async () => {
    const jws = await rawSign(
      fed.pki,
      'FR',
      { crit: ['urn:example:ext'], 'urn:example:ext': true },
      envelope('FR', 'DE'),
    );
    await expectRejected(jws, 401, 'JWS_CRIT_UNSUPPORTED');
    // The same hand-made signature without crit is accepted: the test can only fail on crit.
    const ok = await partnerRequest(deUrl, fr, {
      body: await rawSign(fed.pki, 'FR', {}, envelope('FR', 'DE')),
    });
    expect(ok.status, ok.body).to.equal(201);
  });

  it('401 for a wrong typ', async () => {
    await expectRejected(
      await signAs(fed.pki, 'FR', envelope('FR', 'DE'), { typ: 'JWT' }),
      401,
      'JWS_HEADER_INVALID',
    );
  });

  it('422 for envelope schema violations, each located', async () => {
    const bad = { ...envelope('FR', 'DE'), v: 2, extra: true, handling: { tlp: 'PURPLE' } };
    const problem = await expectRejected(await signAs(fed.pki, 'FR', bad), 422, 'ENVELOPE_INVALID');
    const locations = problem.errors.map((e: { location: string }) => e.location);
    expect(locations).to.include.members(['/v', '/', '/handling', '/handling/tlp']);
    await expectRejected(await signAs(fed.pki, 'FR', 'not json at all'), 422, 'ENVELOPE_INVALID');
  });

  it('403 when from is not the mTLS partner', async () => {
    await expectRejected(await signAs(fed.pki, 'FR', envelope('BE', 'DE')), 403, 'SENDER_MISMATCH');
  });

  it('403 when to is not this gateway', async () => {
    await expectRejected(await signAs(fed.pki, 'FR', envelope('FR', 'BE')), 403, 'RECIPIENT_MISMATCH');
  });

  it('422 when sentAt is ahead of the clock-skew window or older than the max message age', async () => {
    const future = envelope('FR', 'DE', { sentAt: new Date(Date.now() + 3600_000).toISOString() });
    await expectRejected(await signAs(fed.pki, 'FR', future), 422, 'SENT_AT_OUT_OF_WINDOW');
    const ancient = envelope('FR', 'DE', { sentAt: new Date(Date.now() - 8 * 86400_000).toISOString() });
    await expectRejected(await signAs(fed.pki, 'FR', ancient), 422, 'SENT_AT_OUT_OF_WINDOW');
  });

  it('accepts a first delivery signed an hour ago (a retry after an outage resends old bytes)', async () => {
    const late = envelope('FR', 'DE', { sentAt: new Date(Date.now() - 3600_000).toISOString() });
    const res = await partnerRequest(deUrl, fr, { body: await signAs(fed.pki, 'FR', late) });
    expect(res.status, res.body).to.equal(201);
  });

  it('answers a late resend of a message it holds with the stored receipt, not a window error', async () => {
    const env = envelope('FR', 'DE', { sentAt: new Date(Date.now() - 60_000).toISOString() });
    const jws = await signAs(fed.pki, 'FR', env);
    const first = await partnerRequest(deUrl, fr, { body: jws });
    expect(first.status).to.equal(201);
    // Thirty days later (DE's clock moved), the sentAt is far past the max message age; the
    // resend of the same bytes must still get the stored receipt.
    const ctx = fed.gateways.DE!.ctx;
    const realNow = ctx.now;
    ctx.now = () => new Date(Date.now() + 30 * 86400_000);
    const again = await partnerRequest(deUrl, fr, { body: jws }).finally(() => {
      ctx.now = realNow;
    });
    expect(again.status).to.equal(200);
    expect(again.body).to.equal(first.body);
  });

  it('422 for a case that does not match the case schema, located under /case', async () => {
    const problem = await expectRejected(
      await signAs(fed.pki, 'FR', envelope('FR', 'DE', { case: sampleCase({ version: 0, unknown: 1 }) })),
      422,
      'CASE_INVALID',
    );
    expect(problem.errors.map((e: { location: string }) => e.location)).to.include('/case/version');
  });

  it('422 for __proto__ and constructor keys in the payload', async () => {
    const env = JSON.stringify(envelope('FR', 'DE'));
    const proto = `${env.slice(0, -1)},"__proto__":{"polluted":true}}`;
    await expectRejected(await signAs(fed.pki, 'FR', proto), 422, 'PAYLOAD_FORBIDDEN_KEY');
    const escaped = `${env.slice(0, -1)},"\\u005f_proto__":{"polluted":true}}`;
    await expectRejected(await signAs(fed.pki, 'FR', escaped), 422, 'PAYLOAD_FORBIDDEN_KEY');
    const ctor = env.replace('"case":{', '"case":{"constructor":{"prototype":{"x":1}},');
    await expectRejected(await signAs(fed.pki, 'FR', ctor), 422, 'PAYLOAD_FORBIDDEN_KEY');
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('404 problem for an unknown route', async () => {
    const res = await partnerRequest(deUrl, fr, { method: 'GET', path: '/v1/nothing', contentType: '' });
    expect(res.status).to.equal(404);
    expect(JSON.parse(res.body).code).to.equal('NOT_FOUND');
  });
});
