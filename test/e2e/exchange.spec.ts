import { expect } from 'chai';
import { firstBrokenLink, readAuditEvents } from '../../src/audit/append.js';
import { messageDigest } from '../../src/envelope/digest.js';
import { sql } from '../../src/store/sql.js';
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
import { type Federation, startFederation } from '../helpers/federation.js';
import { waitFor } from '../helpers/wait.js';

for (const kind of dbKinds()) {
  describe(`e2e exchange FR → DE over mTLS (${kind})`, () => {
    let fed: Federation;
    before(async () => {
      fed = await startFederation(kind, ['FR', 'DE']);
    });
    after(async () => fed?.stop());

    it('ingests at FR, forwards, DE stores once and FR verifies the signed receipt', async () => {
      const fr = fed.gateways.FR!;
      const de = fed.gateways.DE!;
      const c = sampleCase();
      const ingest = await admin(
        fr.adminUrl,
        token(fed.pki, 'FR'),
        'POST',
        '/api/reports?format=icros-case',
        c,
      );
      expect(ingest.status, JSON.stringify(ingest.json)).to.equal(201);
      expect(ingest.json.accepted[0]).to.include({ id: c.id, status: 'created' });

      const fwd = await admin(fr.adminUrl, token(fed.pki, 'FR'), 'POST', `/api/cases/${c.id}/forward`, {
        to: ['DE'],
        handling: HANDLING,
      });
      expect(fwd.status, JSON.stringify(fwd.json)).to.equal(202);
      const messageId = fwd.json.messages[0].id as string;

      const delivered = await waitFor('delivery', async () => {
        const m = await admin(fr.adminUrl, token(fed.pki, 'FR'), 'GET', `/api/messages/${messageId}`);
        return m.json.state === 'delivered' ? m.json : undefined;
      });
      expect(delivered.attempts_history).to.have.length(1);
      expect(delivered.attempts_history[0].outcome).to.equal('delivered');

      const atDe = await admin(de.adminUrl, token(fed.pki, 'DE'), 'GET', `/api/cases/${c.id}`);
      expect(atDe.status).to.equal(200);
      expect(atDe.json.doc).to.deep.equal(c);
      expect(atDe.json.received_from).to.equal('FR');

      const [receipt] = await fr.ctx.db.query<{ message_digest: string; audit_head_seq: number }>(
        sql('getReceipt'),
        ['out', 'DE', messageId],
      );
      expect(receipt?.message_digest).to.match(/^sha256:/);
      expect(Number(receipt?.audit_head_seq)).to.be.greaterThan(0);

      for (const g of [fr, de]) {
        const events = await readAuditEvents(g.ctx.db, 0, 10_000);
        expect(firstBrokenLink(events)).to.equal(null);
      }
      const deActions = (await readAuditEvents(de.ctx.db, 0, 10_000)).map((e) => e.action);
      expect(deActions).to.include.members(['message.received', 'case.received', 'case.read']);
      const frActions = (await readAuditEvents(fr.ctx.db, 0, 10_000)).map((e) => e.action);
      expect(frActions).to.include.members(['case.created', 'case.forwarded', 'message.delivered']);
    });

    it('answers a resend of the same JWS with the same receipt bytes and stores it once', async () => {
      const de = fed.gateways.DE!;
      const jws = await signAs(fed.pki, 'FR', envelope('FR', 'DE'));
      const first = await partnerRequest(de.partnerUrl, tlsIdentity(fed.pki, 'FR'), { body: jws });
      expect(first.status, first.body).to.equal(201);
      expect(first.contentType).to.match(/application\/jose/);
      const second = await partnerRequest(de.partnerUrl, tlsIdentity(fed.pki, 'FR'), { body: jws });
      expect(second.status).to.equal(200);
      expect(second.body).to.equal(first.body);
      const rows = await de.ctx.db.query('SELECT id FROM messages WHERE digest = $1', [messageDigest(jws)]);
      expect(rows).to.have.length(1);
    });

    it('answers 409 for the same id with different bytes, storing nothing new', async () => {
      const de = fed.gateways.DE!;
      const env = envelope('FR', 'DE');
      const firstJws = await signAs(fed.pki, 'FR', env);
      const first = await partnerRequest(de.partnerUrl, tlsIdentity(fed.pki, 'FR'), { body: firstJws });
      expect(first.status).to.equal(201);
      // ES256 (the test PKI's) and PS256 are randomized: signing the same envelope again gives
      // other bytes. EdDSA is not; the check below says so rather than a puzzling 200.
      const resigned = await signAs(fed.pki, 'FR', env);
      expect(resigned, 'a second signature of the same envelope').to.not.equal(firstJws);
      const again = await partnerRequest(de.partnerUrl, tlsIdentity(fed.pki, 'FR'), { body: resigned });
      expect(again.status).to.equal(409);
      expect(JSON.parse(again.body).code).to.equal('DUPLICATE_CONFLICT');
      const rows = await de.ctx.db.query("SELECT id FROM messages WHERE direction = 'in' AND id = $1", [
        env.id,
      ]);
      expect(rows).to.have.length(1);
    });

    it('stores single messages sent at the same time together, each answered with its own receipt', async () => {
      const de = fed.gateways.DE!;
      const identity = tlsIdentity(fed.pki, 'FR');
      const envs = Array.from({ length: 24 }, () => envelope('FR', 'DE'));
      const jwss = await Promise.all(envs.map((e) => signAs(fed.pki, 'FR', e)));
      // The first message twice (same bytes) and a conflicting copy of the second, in flight together.
      const conflicting = await signAs(fed.pki, 'FR', envs[1]);
      const bodies = [...jwss, jwss[0]!, conflicting];
      const answers = await Promise.all(
        bodies.map((body) => partnerRequest(de.partnerUrl, identity, { body })),
      );
      const receiptOf = (body: string) => {
        const payload = JSON.parse(Buffer.from(body.split('.')[1]!, 'base64url').toString('utf8'));
        return payload as { messageId: string; messageDigest: string };
      };
      for (const [i, env] of envs.entries()) {
        if (i === 1) continue;
        expect(answers[i]!.status, answers[i]!.body).to.be.oneOf([200, 201]);
        expect(receiptOf(answers[i]!.body)).to.include({
          messageId: env.id,
          messageDigest: messageDigest(jwss[i]!),
        });
      }
      // Same bytes twice: one stored, both answered with that one receipt.
      expect([answers[0]!.status, answers[24]!.status].sort()).to.deep.equal([200, 201]);
      expect(answers[24]!.body).to.equal(answers[0]!.body);
      // Two different signatures of one id: exactly one is stored, the other is a conflict.
      expect([answers[1]!.status, answers[25]!.status].sort()).to.deep.equal([201, 409]);
      const rows = await de.ctx.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM messages WHERE direction = 'in' AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($1::jsonb))",
        [JSON.stringify(envs.map((e) => e.id))],
      );
      expect(rows[0]!.n).to.equal(24);
      const head = await readAuditEvents(de.ctx.db, 0, 100_000);
      expect(firstBrokenLink(head)).to.equal(null);
    });

    it('answers GET /v1/ping with the caller identity as registered', async () => {
      const res = await partnerRequest(fed.gateways.DE!.partnerUrl, tlsIdentity(fed.pki, 'FR'), {
        method: 'GET',
        path: '/v1/ping',
        contentType: '',
      });
      expect(res.status).to.equal(200);
      expect(JSON.parse(res.body).you.country).to.equal('FR');
    });
  });
}
