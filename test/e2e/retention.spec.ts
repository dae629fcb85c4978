/**
 * Retention: a case past its retainUntil date is erased at both ends (the sender's copy and
 * the receiver's), the message bytes that carried it are emptied, the erasure is audited, and
 * both audit chains still verify. An erased case cannot be exported or forwarded again.
 */
import { expect } from 'chai';
import { verifyStored } from '../../src/api/audit.js';
import { eraseExpired } from '../../src/store/retention.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { type Federation, startFederation } from '../helpers/federation.js';

describe('e2e retention: erasure past retainUntil (pglite)', function () {
  this.timeout(60_000);
  let fed: Federation;
  before(async () => {
    fed = await startFederation('pglite', ['FR', 'DE']);
  });
  after(async () => fed?.stop());

  it('erases the content at FR and DE, keeps ids and digests, audits it, and the chains still verify', async () => {
    const fr = fed.gateways.FR!;
    const de = fed.gateways.DE!;
    const t = token(fed.pki, 'FR');
    const expired = sampleCase({ retainUntil: '2026-01-31' });
    const kept = sampleCase({ retainUntil: '2099-12-31' });
    for (const c of [expired, kept]) {
      expect((await admin(fr.adminUrl, t, 'POST', '/api/reports', c)).status).to.equal(201);
      await admin(fr.adminUrl, t, 'POST', `/api/cases/${c.id}/forward`, { to: ['DE'], handling: HANDLING });
    }
    const end = Date.now() + 20_000;
    while ((await de.ctx.db.query("SELECT 1 FROM cases WHERE received_from = 'FR'")).length < 2) {
      if (Date.now() > end) throw new Error('not delivered');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Let FR record the receipts too (the messages become 'delivered': erasable).
    while ((await fr.ctx.db.query("SELECT 1 FROM messages WHERE state = 'delivered'")).length < 2) {
      await new Promise((r) => setTimeout(r, 50));
    }

    expect(await eraseExpired(fr.ctx)).to.equal(1);
    expect(await eraseExpired(de.ctx)).to.equal(1);
    expect(await eraseExpired(fr.ctx), 'a second run finds nothing left').to.equal(0);

    for (const g of [fr, de]) {
      const [row] = await g.ctx.db.query<{ doc: unknown; digest: string; erased_at: Date | null }>(
        'SELECT doc, digest, erased_at FROM cases WHERE id = $1',
        [expired.id],
      );
      expect(row!.doc).to.deep.equal({ id: expired.id, version: 1, erased: true });
      expect(row!.digest).to.match(/^sha256:/);
      expect(row!.erased_at).to.not.equal(null);
      const msgs = await g.ctx.db.query<{ jws: string; digest: string }>(
        'SELECT jws, digest FROM messages WHERE case_id = $1',
        [expired.id],
      );
      expect(msgs.map((m) => m.jws)).to.deep.equal(['']);
      expect(msgs[0]!.digest).to.match(/^sha256:/);
      const [kept1] = await g.ctx.db.query<{ erased_at: Date | null }>(
        'SELECT erased_at FROM cases WHERE id = $1',
        [kept.id],
      );
      expect(kept1!.erased_at).to.equal(null);
      const [ev] = await g.ctx.db.query<{ detail: { digest: string } }>(
        "SELECT detail FROM audit_events WHERE action = 'case.erased' AND subject->>'case' = $1",
        [expired.id],
      );
      expect(ev!.detail.digest).to.equal(row!.digest);
      expect(await verifyStored(g.ctx)).to.deep.include({ ok: true, firstBadSeq: null });
    }

    const exported = await admin(fr.adminUrl, t, 'GET', `/api/cases/${expired.id}/export?purpose=test`);
    expect(exported.status).to.equal(410);
    expect(exported.json.code).to.equal('CASE_ERASED');
    const again = await admin(fr.adminUrl, t, 'POST', `/api/cases/${expired.id}/forward`, {
      to: ['DE'],
      handling: HANDLING,
    });
    expect(again.json.code).to.equal('CASE_ERASED');
  });
});
