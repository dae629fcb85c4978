/**
 * Certificate and key rotation without a restart (src/reload.ts), on real gateways FR, DE and
 * BE over mTLS: a partner lists the new signing certificate next to the old, FR swaps its
 * signing key (DE accepts the new signatures and still the old, BE, which only knows the old
 * certificate, refuses), FR's TLS certificate is swapped on disk and new handshakes see it, and
 * a corrupt or mismatched file is refused while the material in use stays.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { readAuditEvents } from '../../src/audit/append.js';
import type { Gateway } from '../../src/main.js';
import {
  admin,
  envelope,
  HANDLING,
  partnerRequest,
  sampleCase,
  signAs,
  tlsIdentity,
  token,
} from '../helpers/clients.js';
import { dbKinds } from '../helpers/db.js';
import {
  editJson,
  freePorts,
  newSigningCert,
  newTlsCert,
  ownPki,
  type Ports,
  startOwn,
  swapFile,
} from '../helpers/own-pki.js';
import { metric } from '../helpers/prom.js';
import { waitFor } from '../helpers/wait.js';

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` presents. */
function peerFingerprint(pki: string, port: number): Promise<string> {
  const id = tlsIdentity(pki, 'DE');
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, ...id, minVersion: 'TLSv1.3', servername: 'localhost' },
      () => {
        const fp = socket.getPeerCertificate().fingerprint256;
        socket.end();
        resolve(fp);
      },
    );
    socket.on('error', reject);
  });
}

for (const kind of dbKinds()) {
  describe(`e2e rotation without restart (${kind})`, () => {
    const countries = ['FR', 'DE', 'BE'];
    let pki: string;
    let ports: Ports;
    const gws: Record<string, Gateway> = {};
    const closers: (() => Promise<void>)[] = [];
    const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

    before(async () => {
      pki = await ownPki(countries);
      ports = await freePorts(countries);
      const next = newSigningCert(pki, 'FR');
      writeFileSync(path.join(pki, 'FR', 'sign-next.crt'), next.certPem);
      writeFileSync(path.join(pki, 'FR', 'sign-next.key'), next.keyPem, { mode: 0o600 });
      for (const cc of countries) {
        // FR watches its files (100 ms of quiet); the others reload on demand (SIGHUP).
        const g = await startOwn(pki, cc, ports, kind, cc === 'FR' ? 100 : undefined);
        gws[cc] = g.gw;
        closers.push(g.close);
      }
    });
    after(async () => {
      await Promise.all(closers.map((c) => c()));
    });

    const forwardFromFr = async (to: string[]) => {
      const tok = token(pki, 'FR');
      const c = sampleCase();
      const fr = gws.FR!;
      expect((await admin(fr.adminUrl, tok, 'POST', '/api/reports?format=icros-case', c)).status).to.equal(
        201,
      );
      const fwd = await admin(fr.adminUrl, tok, 'POST', `/api/cases/${c.id}/forward`, {
        to,
        handling: HANDLING,
      });
      expect(fwd.status, JSON.stringify(fwd.json)).to.equal(202);
      return Object.fromEntries(fwd.json.messages.map((m: { to: string; id: string }) => [m.to, m.id]));
    };
    const settled = (id: string) =>
      waitFor(`message ${id} settled`, async () => {
        const m = await admin(gws.FR!.adminUrl, token(pki, 'FR'), 'GET', `/api/messages/${id}`);
        return m.json.state === 'delivered' || m.json.state === 'dead' ? m.json : undefined;
      });

    it('a partner adds the new signing certificate next to the old one (SIGHUP)', async () => {
      editJson(path.join(pki, 'DE', 'gateway.json'), (doc) => {
        const fr = (doc.partners as { country: string; signingCerts: string[] }[]).find(
          (p) => p.country === 'FR',
        )!;
        fr.signingCerts.push('../FR/sign-next.crt');
      });
      const r = await gws.DE!.reload('SIGHUP');
      expect(r).to.deep.equal({ result: 'applied', changed: ['partners.FR.signingCerts'] });
      expect(gws.DE!.ctx.registry.byCountry('FR')!.signingKeys).to.have.length(2);
      // Reading the same files again changes nothing.
      expect((await gws.DE!.reload('SIGHUP')).result).to.equal('unchanged');
    });

    it('after FR rotates its signing key, DE (old + new) accepts and BE (old only) refuses', async () => {
      const oldKid = gws.FR!.ctx.config.signing.kid;
      editJson(path.join(pki, 'FR', 'gateway.json'), (doc) => {
        doc.signing = { ...(doc.signing as object), cert: 'sign-next.crt', key: 'sign-next.key' };
      });
      const r = await gws.FR!.reload('SIGHUP');
      expect(r.result).to.equal('applied');
      expect(r.changed).to.have.members(['signing.cert', 'signing.key']);
      expect(gws.FR!.ctx.config.signing.kid).to.not.equal(oldKid);

      const ids = await forwardFromFr(['DE', 'BE']);
      const toDe = await settled(ids.DE);
      expect(toDe.state, JSON.stringify(toDe.last_error)).to.equal('delivered');
      const toBe = await settled(ids.BE);
      expect(toBe.state).to.equal('dead');
      expect(JSON.stringify(toBe.last_error)).to.contain('JWS_KID_UNKNOWN');

      // DE still accepts a message signed with the old key while both are listed.
      const jws = await signAs(pki, 'FR', envelope('FR', 'DE'));
      const old = await partnerRequest(gws.DE!.partnerUrl, tlsIdentity(pki, 'FR'), { body: jws });
      expect(old.status, old.body).to.equal(201);

      // The checkpoint and receipts FR signs now verify with the new certificate.
      const checkpoint = await admin(
        gws.FR!.adminUrl,
        token(pki, 'FR', 'auditor'),
        'GET',
        '/api/audit/verify',
      );
      expect(checkpoint.status, JSON.stringify(checkpoint.json)).to.equal(200);
    });

    it('a TLS certificate swapped on disk is used for new handshakes (file watch)', async () => {
      const before = await peerFingerprint(pki, ports.FR!.partner);
      expect(before).to.equal(fp(readFileSync(path.join(pki, 'FR', 'tls.crt'), 'utf8')));
      const fresh = newTlsCert(pki, 'FR');
      // The drill: partners first register the new fingerprint next to the old one.
      editJson(path.join(pki, 'DE', 'gateway.json'), (doc) => {
        const fr = (doc.partners as { country: string; tlsFingerprints: string[] }[]).find(
          (p) => p.country === 'FR',
        )!;
        fr.tlsFingerprints.push(fp(fresh.certPem));
      });
      expect(await gws.DE!.reload('SIGHUP')).to.deep.equal({
        result: 'applied',
        changed: ['partners.FR.tlsFingerprints'],
      });
      // Key first, then certificate: the watcher waits for quiet, so it sees both.
      swapFile(path.join(pki, 'FR', 'tls.key'), fresh.keyPem);
      swapFile(path.join(pki, 'FR', 'tls.crt'), fresh.certPem);
      await waitFor('the new TLS certificate', async () =>
        (await peerFingerprint(pki, ports.FR!.partner)) === fp(fresh.certPem) ? true : undefined,
      );
      // TLS 1.3 only, still, with the new context.
      const tls12 = await new Promise<string>((resolve) => {
        const s = tls.connect(
          { host: '127.0.0.1', port: ports.FR!.partner, ...tlsIdentity(pki, 'DE'), maxVersion: 'TLSv1.2' },
          () => resolve('connected'),
        );
        s.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
      });
      expect(tls12).to.not.equal('connected');

      const events = (await readAuditEvents(gws.FR!.ctx.db, 0, 100_000)).filter(
        (e) => e.action === 'config.reloaded',
      );
      const last = events.at(-1)!;
      expect(last.actor).to.deep.equal({ kind: 'system', id: 'reload' });
      expect(last.detail.trigger).to.equal('file');
      expect(last.detail.changed).to.include.members(['tls.cert', 'tls.key']);
      expect((last.detail.tls as { fingerprint: string }).fingerprint).to.equal(fp(fresh.certPem));
      expect(JSON.stringify(events)).to.not.contain('PRIVATE KEY');
      const text = await (await fetch(`${gws.FR!.adminUrl}/metrics`)).text();
      expect(
        metric(text, 'icros_config_reloads_total', { trigger: 'file', result: 'applied' }),
      ).to.be.at.least(1);
    });

    it('a corrupt or mismatched file is refused and the material in use stays', async () => {
      const fr = gws.FR!;
      const kid = fr.ctx.config.signing.kid;
      const tlsFp = await peerFingerprint(pki, ports.FR!.partner);
      const keyFile = path.join(pki, 'FR', 'sign-next.key');
      const goodKey = readFileSync(keyFile, 'utf8');

      // The real key's armour lines around a body that is not a key.
      const armour = goodKey.trim().split('\n');
      swapFile(keyFile, `${armour[0]}\nnot a key\n${armour.at(-1)}\n`);
      const corrupt = await fr.reload('SIGHUP');
      expect(corrupt.result).to.equal('refused');
      expect(corrupt.error).to.contain('/signing/key');

      // A valid key that belongs to another certificate.
      swapFile(keyFile, readFileSync(path.join(pki, 'FR', 'sign.key'), 'utf8'));
      const mismatched = await fr.reload('SIGHUP');
      expect(mismatched.result).to.equal('refused');
      expect(mismatched.error).to.contain('does not match');

      swapFile(path.join(pki, 'FR', 'tls.crt'), 'garbage');
      expect((await fr.reload('SIGHUP')).result).to.equal('refused');

      expect(fr.ctx.config.signing.kid).to.equal(kid);
      expect(await peerFingerprint(pki, ports.FR!.partner)).to.equal(tlsFp);
      const ready = await admin(fr.adminUrl, undefined, 'GET', '/readyz');
      expect(ready.status).to.equal(200);
      const text = await (await fetch(`${fr.adminUrl}/metrics`)).text();
      expect(metric(text, 'icros_config_reloads_total', { trigger: 'SIGHUP', result: 'refused' })).to.equal(
        3,
      );

      // Still signing with the key in use: a forward to DE is delivered.
      swapFile(keyFile, goodKey);
      const ids = await forwardFromFr(['DE']);
      expect((await settled(ids.DE)).state).to.equal('delivered');
    });
  });
}
