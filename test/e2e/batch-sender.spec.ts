/**
 * The sending side of batches: against a partner that advertises `POST /v1/messages:batch`
 * (a real DE gateway), a backlog goes out in batches, each message is delivered once with
 * the batch receipt stored as its evidence; a partner that does not advertise batches (the
 * fake DE of sender.spec.ts) gets single messages.
 */
import { expect } from 'chai';
import { verifyReceipt } from '../../src/envelope/receipt.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { dbKinds } from '../helpers/db.js';
import { type Federation, startFederation } from '../helpers/federation.js';

for (const kind of dbKinds()) {
  describe(`e2e batches, sending side (${kind})`, function () {
    this.timeout(120_000);
    let fed: Federation;
    before(async () => {
      fed = await startFederation(kind, ['FR', 'DE'], { FR: { noWorker: true } });
    });
    after(async () => fed?.stop());

    it('sends a backlog of 150 messages in batches; each is delivered once, its batch receipt stored', async () => {
      const fr = fed.gateways.FR!;
      const t = token(fed.pki, 'FR');
      const ids: string[] = [];
      for (let i = 0; i < 150; i++) {
        const c = sampleCase();
        expect((await admin(fr.adminUrl, t, 'POST', '/api/reports', c)).status).to.equal(201);
        const fwd = await admin(fr.adminUrl, t, 'POST', `/api/cases/${c.id}/forward`, {
          to: ['DE'],
          handling: HANDLING,
        });
        ids.push(fwd.json.messages[0].id);
      }
      fr.queue.start();
      const end = Date.now() + 60_000;
      for (;;) {
        const [row] = await fr.ctx.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM messages WHERE direction = 'out' AND state = 'delivered'",
        );
        if (row!.n === 150) break;
        if (Date.now() > end) throw new Error(`only ${row!.n} of 150 delivered`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const receipts = await fr.ctx.db.query<{
        message_id: string;
        receipt_id: string;
        jws: string;
        message_digest: string;
      }>(
        "SELECT r.message_id, r.receipt_id, COALESCE(r.jws, b.jws) AS jws, r.message_digest FROM receipts r LEFT JOIN batch_receipts b ON b.receipt_id = r.receipt_id WHERE r.direction = 'out'",
      );
      expect(receipts.map((r) => r.message_id)).to.have.members(ids);
      const batches = new Set(receipts.map((r) => r.receipt_id));
      expect(batches.size, 'far fewer receipts than messages').to.be.lessThan(20);
      // Each batch receipt is stored once, not once per message it lists.
      const [stored1] = await fr.ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM batch_receipts');
      expect(stored1!.n).to.equal(batches.size);
      // Each stored receipt proves its own message: the batch receipt lists it, signed by DE.
      const de = fr.ctx.registry.byCountry('DE')!;
      for (const r of receipts.slice(0, 20)) {
        const receipt = await verifyReceipt(r.jws, de, {
          messageId: r.message_id,
          messageDigest: r.message_digest,
          from: 'FR',
        });
        expect(receipt.messageId ?? r.message_id).to.equal(r.message_id);
      }
      const [stored] = await fed.gateways.DE!.ctx.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM messages WHERE direction = 'in' AND peer = 'FR' AND id = ANY($1::uuid[])",
        [ids],
      );
      expect(stored!.n).to.equal(150);
      const delivered = await fr.ctx.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM audit_events WHERE action = 'message.delivered'",
      );
      expect(delivered[0]!.n).to.equal(150);
      const partners = await admin(fr.adminUrl, t, 'GET', '/api/partners');
      expect(
        partners.json.partners.find((p: { country: string }) => p.country === 'DE').messages,
      ).to.deep.equal({
        delivered: 150,
      });
    });
  });
}
