/**
 * Operations over a real FR → DE exchange: every metric of docs/operations.md appears with a
 * sensible value, `/readyz` lists its checks and fails on a certificate too close to expiry,
 * (the admin listener's headers and error bodies: test/e2e/ops-security.spec.ts).
 */
import tls from 'node:tls';
import { expect } from 'chai';
import { sql } from '../../src/store/sql.js';
import { admin, HANDLING, partnerRequest, sampleCase, tlsIdentity, token } from '../helpers/clients.js';
import { dbKinds } from '../helpers/db.js';
import { type Federation, startFederation } from '../helpers/federation.js';
import { metric } from '../helpers/prom.js';
import { waitFor } from '../helpers/wait.js';

for (const kind of dbKinds()) {
  describe(`e2e operations: metrics and readiness (${kind})`, () => {
    let fed: Federation;
    before(async () => {
      fed = await startFederation(kind, ['FR', 'DE']);
      const fr = fed.gateways.FR!;
      const c = sampleCase();
      const tok = token(fed.pki, 'FR');
      expect((await admin(fr.adminUrl, tok, 'POST', '/api/reports?format=icros-case', c)).status).to.equal(
        201,
      );
      const fwd = await admin(fr.adminUrl, tok, 'POST', `/api/cases/${c.id}/forward`, {
        to: ['DE'],
        handling: HANDLING,
      });
      expect(fwd.status, JSON.stringify(fwd.json)).to.equal(202);
      const id = fwd.json.messages[0].id as string;
      await waitFor('delivery', async () => {
        const m = await admin(fr.adminUrl, tok, 'GET', `/api/messages/${id}`);
        return m.json.state === 'delivered' ? true : undefined;
      });
      // One refusal at DE: FR sends the wrong content type.
      const refused = await partnerRequest(fed.gateways.DE!.partnerUrl, tlsIdentity(fed.pki, 'FR'), {
        body: '{}',
        contentType: 'application/json',
      });
      expect(refused.status).to.equal(415);
    });
    after(async () => fed?.stop());

    const scrape = async (cc: string) => {
      const res = await fetch(`${fed.gateways[cc]!.adminUrl}/metrics`);
      expect(res.status).to.equal(200);
      return res.text();
    };

    it('exposes messages by state and partner, queue depth, oldest age, latency and receipts', async () => {
      const fr = await scrape('FR');
      expect(metric(fr, 'icros_messages', { direction: 'out', partner: 'DE', state: 'delivered' })).to.equal(
        1,
      );
      expect(metric(fr, 'icros_queue_depth', { partner: 'DE' })).to.equal(0);
      expect(metric(fr, 'icros_open_messages', { partner: 'DE' })).to.equal(0);
      expect(metric(fr, 'icros_oldest_queued_seconds', { partner: 'DE' })).to.equal(0);
      expect(metric(fr, 'icros_delivery_latency_seconds_count', { partner: 'DE' })).to.equal(1);
      expect(metric(fr, 'icros_delivery_latency_seconds_sum', { partner: 'DE' }))
        .to.be.greaterThan(0)
        .and.lessThan(15);
      expect(metric(fr, 'icros_receipts_total', { direction: 'received', partner: 'DE' })).to.equal(1);

      const de = await scrape('DE');
      expect(metric(de, 'icros_messages', { direction: 'in', partner: 'FR' })).to.equal(1);
      expect(metric(de, 'icros_receipts_total', { direction: 'issued', partner: 'FR' })).to.equal(1);
      expect(
        metric(de, 'icros_inbound_rejections_total', { code: 'UNSUPPORTED_MEDIA_TYPE', partner: 'FR' }),
      ).to.equal(1);
    });

    it('shows the queue depth and oldest age of a message that cannot be delivered', async () => {
      const fr = fed.gateways.FR!;
      const before = await scrape('FR');
      expect(metric(before, 'icros_queue_depth', { partner: 'DE' })).to.equal(0);
      // Make the delivered row look queued for a moment: the gauges follow the database.
      await fr.ctx.db.query(
        "UPDATE messages SET state = 'queued', created_at = now() - interval '90 seconds', next_attempt_at = now() + interval '1 hour' WHERE direction = 'out'",
      );
      try {
        const text = await scrape('FR');
        expect(metric(text, 'icros_queue_depth', { partner: 'DE' })).to.equal(1);
        expect(metric(text, 'icros_messages', { direction: 'out', partner: 'DE', state: 'queued' })).to.equal(
          1,
        );
        expect(metric(text, 'icros_oldest_queued_seconds', { partner: 'DE' })).to.be.within(89, 120);
      } finally {
        await fr.ctx.db.query("UPDATE messages SET state = 'delivered' WHERE direction = 'out'");
      }
    });

    it('counts the TLS handshakes the partner listener refuses, by reason', async () => {
      const de = fed.gateways.DE!;
      const { port } = new URL(de.partnerUrl);
      // No client certificate: the server ends the handshake (TLS 1.3: after it, on first read).
      await new Promise<void>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false });
        s.on('secureConnect', () => s.write('GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n'));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      });
      const reason = 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';
      const count = await waitFor('the refused handshake counted', async () => {
        const n = metric(await scrape('DE'), 'icros_tls_handshakes_refused_total', { reason });
        return n && n >= 1 ? n : undefined;
      });
      expect(count).to.be.at.least(1);
    });

    it('exposes certificate days to expiry, the audit head and the build', async () => {
      const text = await scrape('FR');
      const fr = fed.gateways.FR!;
      // Dev certificates are issued for 365 days.
      expect(metric(text, 'icros_certificate_expiry_days', { cert: 'tls', partner: 'FR' })).to.be.within(
        364,
        366,
      );
      expect(
        metric(text, 'icros_certificate_expiry_days', {
          cert: 'signing',
          partner: 'FR',
          kid: fr.ctx.config.signing.kid,
        }),
      ).to.be.within(364, 366);
      const deKid = fr.ctx.config.partners.find((p) => p.country === 'DE')!.signingKeys[0]!.kid;
      expect(
        metric(text, 'icros_certificate_expiry_days', { cert: 'partner-signing', partner: 'DE', kid: deKid }),
      ).to.be.within(364, 366);
      const [head] = await fr.ctx.db.query<{ seq: string | number }>(sql('getAuditHead'));
      const seq = metric(text, 'icros_audit_head_seq');
      expect(seq).to.be.greaterThan(0);
      // The head may move between the two reads (delivery audits), never backwards.
      expect(seq).to.be.at.least(Number(head!.seq) - 5);
      expect(metric(text, 'icros_build_info', { version: '0.1.0', node: process.versions.node })).to.equal(1);
    });

    it('is ready with every check listed', async () => {
      const r = await admin(fed.gateways.FR!.adminUrl, undefined, 'GET', '/readyz');
      expect(r.status).to.equal(200);
      expect(r.json).to.include({ status: 'ready', country: 'FR' });
      expect(r.json.checks.database).to.deep.equal({ ok: true });
      expect(r.json.checks.keys).to.deep.equal({ ok: true, tls: true, signing: true });
      expect(r.json.checks.queue).to.deep.equal(r.json.queue);
      expect(r.json.checks.certificates.map((c: { name: string }) => c.name)).to.deep.equal([
        'tls',
        'signing',
      ]);
      for (const c of r.json.checks.certificates) {
        expect(c.ok).to.equal(true);
        expect(c.daysLeft).to.be.within(364, 366);
        expect(Date.parse(c.notAfter)).to.be.greaterThan(Date.now());
      }
    });
  });

  describe(`e2e readiness with a certificate close to expiry (${kind})`, () => {
    let fed: Federation;
    before(async () => {
      // Dev certificates live 365 days; demanding 400 makes both own certificates fail.
      fed = await startFederation(kind, ['FR'], { FR: { overrides: { readiness: { minCertDays: 400 } } } });
    });
    after(async () => fed?.stop());

    it('is not ready and names the failing certificates', async () => {
      const r = await admin(fed.gateways.FR!.adminUrl, undefined, 'GET', '/readyz');
      expect(r.status).to.equal(503);
      expect(r.json).to.include({ status: 'unavailable', reason: 'certificates' });
      expect(r.json.failed).to.deep.equal(['certificates']);
      expect(r.json.checks.database).to.deep.equal({ ok: true });
      expect(
        r.json.checks.certificates.map((c: { name: string; ok: boolean }) => [c.name, c.ok]),
      ).to.deep.equal([
        ['tls', false],
        ['signing', false],
      ]);
    });
  });
}
