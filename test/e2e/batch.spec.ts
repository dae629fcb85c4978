import { expect } from 'chai';
import { firstBrokenLink, readAuditEvents } from '../../src/audit/append.js';
import type { Partner } from '../../src/config/load.js';
import { verifyBatchReceipt } from '../../src/envelope/batch-receipt.js';
import { messageDigest } from '../../src/envelope/digest.js';
import { verifyReceipt } from '../../src/envelope/receipt.js';
import { MAX_BATCH } from '../../src/inbound/batch.js';
import { envelope, partnerRequest, sampleCase, signAs, tlsIdentity } from '../helpers/clients.js';
import { dbKinds } from '../helpers/db.js';
import { type Federation, startFederation } from '../helpers/federation.js';

for (const kind of dbKinds()) {
  describe(`e2e POST /v1/messages:batch FR → DE over mTLS (${kind})`, () => {
    let fed: Federation;
    let fr: ReturnType<typeof tlsIdentity>;
    /** DE as FR's registry knows it: the keys a receipt from DE must verify with. */
    let de: Partner;

    before(async () => {
      fed = await startFederation(kind, ['FR', 'DE']);
      fr = tlsIdentity(fed.pki, 'FR');
      de = fed.gateways.FR!.ctx.registry.byCountry('DE')!;
    });
    after(async () => fed?.stop());

    const db = () => fed.gateways.DE!.ctx.db;

    function postBatch(body: string | Buffer, contentType = 'application/json') {
      return partnerRequest(fed.gateways.DE!.partnerUrl, fr, {
        path: '/v1/messages:batch',
        body,
        contentType,
      });
    }

    const signFr = (env: unknown) => signAs(fed.pki, 'FR', env);
    const expectOf = (jwsList: string[]) => ({
      from: 'FR',
      items: jwsList.map((jws) => ({ messageId: idOf(jws) ?? '', messageDigest: messageDigest(jws) })),
    });

    async function storedCount(ids: string[]) {
      const [m] = await db().query<{ n: number }>(
        "SELECT count(*)::int AS n FROM messages WHERE direction = 'in' AND peer = 'FR' AND id::text = ANY($1::text[])",
        [ids],
      );
      return m!.n;
    }

    async function counts() {
      const [m] = await db().query<{ n: number }>(
        "SELECT count(*)::int AS n FROM messages WHERE direction = 'in'",
      );
      const [c] = await db().query<{ n: number }>('SELECT count(*)::int AS n FROM cases');
      const [r] = await db().query<{ n: number }>(
        "SELECT count(*)::int AS n FROM receipts WHERE direction = 'in'",
      );
      return { messages: m!.n, cases: c!.n, receipts: r!.n };
    }

    it('advertises batches in GET /v1/ping', async () => {
      const res = await partnerRequest(fed.gateways.DE!.partnerUrl, fr, {
        method: 'GET',
        path: '/v1/ping',
        contentType: '',
      });
      expect(res.status).to.equal(200);
      expect(JSON.parse(res.body).capabilities).to.deep.equal({
        batch: { path: '/v1/messages:batch', maxMessages: MAX_BATCH },
      });
    });

    it(`accepts a batch of ${MAX_BATCH}, stores each message once, and answers one verifiable receipt`, async () => {
      const jwsList = await Promise.all(
        Array.from({ length: MAX_BATCH }, () => signFr(envelope('FR', 'DE'))),
      );
      const before = await counts();
      const started = performance.now();
      const res = await postBatch(JSON.stringify({ messages: jwsList }));
      const ms = performance.now() - started;
      expect(res.status, res.body).to.equal(200);
      expect(res.contentType).to.match(/application\/jose/);
      console.log(`      (${kind}) batch of ${MAX_BATCH} accepted in ${ms.toFixed(0)} ms`);

      const { receipt, results } = await verifyBatchReceipt(res.body, de, expectOf(jwsList));
      expect(receipt).to.include({ v: 1, type: 'receipt.batch', from: 'DE', to: 'FR' });
      expect(results.map((r) => r.status)).to.deep.equal(jwsList.map(() => 'accepted'));

      const after = await counts();
      expect(after.messages - before.messages).to.equal(MAX_BATCH);
      expect(after.cases - before.cases).to.equal(MAX_BATCH);
      expect(after.receipts - before.receipts).to.equal(MAX_BATCH);
      // Every accepted message's stored receipt is the batch receipt itself.
      const rows = await db().query<{ jws: string; receipt_id: string; message_digest: string }>(
        "SELECT COALESCE(r.jws, b.jws) AS jws, r.receipt_id::text, r.message_digest FROM receipts r LEFT JOIN batch_receipts b ON b.receipt_id = r.receipt_id WHERE r.direction = 'in' AND r.receipt_id = $1",
        [receipt.id],
      );
      expect(rows).to.have.length(MAX_BATCH);
      expect(rows.every((r) => r.jws === res.body)).to.equal(true);
      expect(new Set(rows.map((r) => r.message_digest))).to.deep.equal(
        new Set(jwsList.map((j) => messageDigest(j))),
      );
      // The receipt names a head that includes every message's events, and the chain holds.
      const events = await readAuditEvents(db(), 0, 100_000);
      expect(firstBrokenLink(events)).to.equal(null);
      const received = events.filter(
        (e) => e.action === 'message.received' && jwsList.some((j) => idOf(j) === e.subject.message),
      );
      expect(received).to.have.length(MAX_BATCH);
      expect(Math.max(...received.map((e) => e.seq))).to.be.at.most(receipt.auditHead.seq);
      expect(events.find((e) => e.seq === receipt.auditHead.seq)?.hash).to.equal(receipt.auditHead.hash);
    });

    it('settles a mixed batch message by message: the good ones stored, each rejection with its code', async () => {
      // Held before the batch: one to resend as is, one to resend re-signed (other bytes).
      const heldEnv = envelope('FR', 'DE');
      const held = await signFr(heldEnv);
      const conflictEnv = envelope('FR', 'DE');
      for (const jws of [held, await signFr(conflictEnv)]) {
        const single = await partnerRequest(fed.gateways.DE!.partnerUrl, fr, { body: jws });
        expect(single.status, single.body).to.equal(201);
      }
      const good1 = await signFr(envelope('FR', 'DE'));
      const good2 = await signFr(envelope('FR', 'DE', { type: 'ping', case: undefined }));
      const tampered = await signFr(envelope('FR', 'DE'));
      const [h, p, s] = tampered.split('.');
      const badSignature = `${h}.${p}.${s!.startsWith('A') ? 'B' : 'A'}${s!.slice(1)}`;
      const wrongRecipient = await signFr(envelope('FR', 'BE'));
      const schemaViolation = await signFr({ ...envelope('FR', 'DE'), handling: { tlp: 'PURPLE' } });
      const caseInvalid = await signFr(envelope('FR', 'DE', { case: sampleCase({ version: 0 }) }));
      const conflict = await signFr(conflictEnv);
      const notJws = 'not a jws';
      const forbidden = await signFr(`{"v":1,"id":"${envelope('FR', 'DE').id}","__proto__":{"x":1}}`);
      const batch = [
        good1,
        badSignature,
        wrongRecipient,
        schemaViolation,
        caseInvalid,
        held,
        conflict,
        notJws,
        forbidden,
        good2,
        good1, // a second copy in the same batch
      ];
      const before = await counts();
      const res = await postBatch(JSON.stringify({ messages: batch }));
      expect(res.status, res.body).to.equal(200);

      const expected = {
        from: 'FR',
        items: batch.map((jws) => ({ messageId: idOf(jws) ?? '', messageDigest: messageDigest(jws) })),
      };
      const { results } = await verifyBatchReceipt(res.body, de, expected);
      const summary = results.map((r) => [r.status, r.problem?.code, r.problem?.status]);
      expect(summary).to.deep.equal([
        ['accepted', undefined, undefined],
        ['rejected', 'JWS_SIGNATURE_INVALID', 401],
        ['rejected', 'RECIPIENT_MISMATCH', 403],
        ['rejected', 'ENVELOPE_INVALID', 422],
        ['rejected', 'CASE_INVALID', 422],
        ['duplicate', undefined, undefined],
        ['rejected', 'DUPLICATE_CONFLICT', 409],
        ['rejected', 'JWS_MALFORMED', 401],
        ['rejected', 'PAYLOAD_FORBIDDEN_KEY', 422],
        ['accepted', undefined, undefined],
        ['duplicate', undefined, undefined],
      ]);
      // Items name the message once its envelope was valid, never from unverified bytes.
      const payload = JSON.parse(Buffer.from(res.body.split('.')[1]!, 'base64url').toString('utf8'));
      expect(payload.items.map((i: { messageId: string | null }) => i.messageId)).to.deep.equal([
        idOf(good1),
        null,
        idOf(wrongRecipient),
        null,
        idOf(caseInvalid),
        heldEnv.id,
        conflictEnv.id,
        null,
        null,
        idOf(good2),
        idOf(good1),
      ]);

      const after = await counts();
      expect(after.messages - before.messages, 'messages stored').to.equal(2);
      expect(after.cases - before.cases, 'cases stored').to.equal(1);
      expect(after.receipts - before.receipts, 'receipts stored').to.equal(2);
      expect(await storedCount([idOf(good1)!, idOf(good2)!])).to.equal(2);
      const [conflictRow] = await db().query<{ digest: string }>(
        "SELECT digest FROM messages WHERE direction = 'in' AND id = $1",
        [conflictEnv.id],
      );
      expect(conflictRow!.digest).to.not.equal(messageDigest(conflict));

      const events = await readAuditEvents(db(), 0, 100_000);
      expect(firstBrokenLink(events)).to.equal(null);
      const rejected = events.filter(
        (e) => e.action === 'message.rejected' && e.detail.path === '/v1/messages:batch',
      );
      expect(rejected.map((e) => [e.detail.item, e.detail.code])).to.deep.include.members([
        [1, 'JWS_SIGNATURE_INVALID'],
        [2, 'RECIPIENT_MISMATCH'],
        [6, 'DUPLICATE_CONFLICT'],
        [8, 'PAYLOAD_FORBIDDEN_KEY'],
      ]);
    });

    it('refuses whole requests that are not a batch, with their code and nothing stored', async () => {
      const one = await signFr(envelope('FR', 'DE'));
      const cases: [string, string | Buffer, string, number, string][] = [
        [
          '101 messages',
          JSON.stringify({ messages: Array(MAX_BATCH + 1).fill(one) }),
          'application/json',
          413,
          'BATCH_TOO_MANY',
        ],
        ['not JSON', '{"messages": [', 'application/json', 400, 'BATCH_INVALID'],
        ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'application/json', 400, 'BATCH_INVALID'],
        ['an empty body', '', 'application/json', 400, 'BATCH_INVALID'],
        ['empty', JSON.stringify({ messages: [] }), 'application/json', 400, 'BATCH_EMPTY'],
        ['an array', JSON.stringify([one]), 'application/json', 400, 'BATCH_INVALID'],
        ['no messages', JSON.stringify({ msgs: [one] }), 'application/json', 400, 'BATCH_INVALID'],
        [
          'messages not an array',
          JSON.stringify({ messages: one }),
          'application/json',
          400,
          'BATCH_INVALID',
        ],
        ['null', 'null', 'application/json', 400, 'BATCH_INVALID'],
        [
          'non-string items',
          JSON.stringify({ messages: [one, 42, { jws: one }] }),
          'application/json',
          400,
          'BATCH_INVALID',
        ],
        [
          'a __proto__ key',
          `{"messages": [], "__proto__": {"polluted": true}}`,
          'application/json',
          422,
          'PAYLOAD_FORBIDDEN_KEY',
        ],
        [
          'a nested constructor key',
          `{"messages": [{"constructor": 1}]}`,
          'application/json',
          422,
          'PAYLOAD_FORBIDDEN_KEY',
        ],
        [
          'application/jose',
          JSON.stringify({ messages: [one] }),
          'application/jose',
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        ],
        ['text/plain', JSON.stringify({ messages: [one] }), 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
        [
          'too large',
          JSON.stringify({ messages: ['x'.repeat(3 * 1024 * 1024)] }),
          'application/json',
          413,
          'PAYLOAD_TOO_LARGE',
        ],
      ];
      const before = await counts();
      const auditedBefore = (await readAuditEvents(db(), 0, 100_000)).length;
      for (const [what, body, type, status, code] of cases) {
        const res = await postBatch(body, type);
        expect(res.status, `${what}: ${res.body}`).to.equal(status);
        expect(res.contentType, what).to.match(/application\/problem\+json/);
        const problem = JSON.parse(res.body);
        expect(problem.code, what).to.equal(code);
        expect(problem.detail, what).to.be.a('string').and.not.equal('');
        if (what === 'non-string items') {
          expect(problem.errors.map((e: { location: string }) => e.location)).to.deep.equal([
            '/messages/1',
            '/messages/2',
          ]);
        }
      }
      expect(await counts()).to.deep.equal(before);
      const audited = await readAuditEvents(db(), 0, 100_000);
      expect(audited.length - auditedBefore, 'each refusal audited').to.equal(cases.length);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(await storedCount([idOf(one)!])).to.equal(0);
    });

    it('answers a single resend of a message accepted in a batch with the stored batch receipt', async () => {
      const jwsList = await Promise.all([1, 2, 3].map(() => signFr(envelope('FR', 'DE'))));
      const batch = await postBatch(JSON.stringify({ messages: jwsList }));
      expect(batch.status, batch.body).to.equal(200);
      const resend = await partnerRequest(fed.gateways.DE!.partnerUrl, fr, { body: jwsList[1]! });
      expect(resend.status, resend.body).to.equal(200);
      expect(resend.body).to.equal(batch.body);
      const r = await verifyReceipt(resend.body, de, {
        messageId: idOf(jwsList[1]!)!,
        messageDigest: messageDigest(jwsList[1]!),
        from: 'FR',
      });
      expect(r).to.include({ type: 'receipt.batch', status: 'accepted', messageId: idOf(jwsList[1]!) });
      expect(r.messageDigest).to.equal(messageDigest(jwsList[1]!));
      // Resent in a batch again: a duplicate, nothing stored twice.
      const again = await postBatch(JSON.stringify({ messages: jwsList }));
      const { results } = await verifyBatchReceipt(again.body, de, expectOf(jwsList));
      expect(results.map((x) => x.status)).to.deep.equal(['duplicate', 'duplicate', 'duplicate']);
      expect(await storedCount(jwsList.map((j) => idOf(j)!))).to.equal(3);
      // And the single resend of a re-signed copy is still a conflict.
      const resigned = await signFr(
        JSON.parse(Buffer.from(jwsList[0]!.split('.')[1]!, 'base64url').toString()),
      );
      const conflict = await partnerRequest(fed.gateways.DE!.partnerUrl, fr, { body: resigned });
      expect(conflict.status).to.equal(409);
      expect(JSON.parse(conflict.body).code).to.equal('DUPLICATE_CONFLICT');
    });

    it('stores a transfer and its withdrawal sent in one batch, in order', async () => {
      const c = sampleCase();
      const transfer = await signFr(envelope('FR', 'DE', { case: c }));
      const withdraw = await signFr(
        envelope('FR', 'DE', { type: 'case.withdraw', case: undefined, refersTo: c.id }),
      );
      const res = await postBatch(JSON.stringify({ messages: [transfer, withdraw] }));
      const { results } = await verifyBatchReceipt(res.body, de, expectOf([transfer, withdraw]));
      expect(results.map((r) => r.status)).to.deep.equal(['accepted', 'accepted']);
      const [row] = await db().query<{ withdrawn_at: unknown }>(
        'SELECT withdrawn_at FROM cases WHERE id = $1',
        [c.id],
      );
      expect(row?.withdrawn_at).to.not.equal(null);
    });

    it('refuses a message with U+0000 (which the database cannot store) alone, single or in a batch', async () => {
      const c = sampleCase();
      c.summary = { ...c.summary, text: 'nul \u0000 here' };
      const nul = await signFr(envelope('FR', 'DE', { case: c }));
      const good = await signFr(envelope('FR', 'DE'));
      const res = await postBatch(JSON.stringify({ messages: [nul, good] }));
      const { results } = await verifyBatchReceipt(res.body, de, expectOf([nul, good]));
      expect(results.map((r) => [r.status, r.problem?.code])).to.deep.equal([
        ['rejected', 'CASE_INVALID'],
        ['accepted', undefined],
      ]);
      const single = await partnerRequest(fed.gateways.DE!.partnerUrl, fr, { body: nul });
      expect(single.status, single.body).to.equal(422);
      expect(JSON.parse(single.body).errors[0]).to.include({
        location: '/case/summary/text',
        rule: 'no-nul',
      });
    });

    it('stores the rest of a batch when the database refuses one message', async () => {
      const poison = sampleCase();
      // A stand-in for a row the database refuses although every check passed.
      await db().query(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.case_id = '${poison.id}' THEN RAISE EXCEPTION 'refused by a test trigger'; END IF;
          RETURN NEW;
        END $$`);
      await db().query(
        'CREATE TRIGGER refuse_poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_poison()',
      );
      try {
        const jwsList = [
          await signFr(envelope('FR', 'DE')),
          await signFr(envelope('FR', 'DE', { case: poison })),
          await signFr(envelope('FR', 'DE')),
        ];
        const res = await postBatch(JSON.stringify({ messages: jwsList }));
        expect(res.status, res.body).to.equal(200);
        const { results } = await verifyBatchReceipt(res.body, de, expectOf(jwsList));
        expect(results.map((r) => [r.status, r.problem?.code])).to.deep.equal([
          ['accepted', undefined],
          ['rejected', 'INTERNAL'],
          ['accepted', undefined],
        ]);
        expect(await storedCount(jwsList.map((j) => idOf(j)!))).to.equal(2);
        expect(firstBrokenLink(await readAuditEvents(db(), 0, 100_000))).to.equal(null);
      } finally {
        await db().query('DROP TRIGGER refuse_poison ON messages');
        await db().query('DROP FUNCTION refuse_poison()');
      }
    });

    it('stores each message once when the same batch is sent twice at once', async () => {
      const jwsList = await Promise.all(Array.from({ length: 20 }, () => signFr(envelope('FR', 'DE'))));
      const body = JSON.stringify({ messages: jwsList });
      const before = await counts();
      const answers = await Promise.all([postBatch(body), postBatch(body), postBatch(body)]);
      const statuses: string[][] = [];
      for (const a of answers) {
        expect(a.status, a.body).to.equal(200);
        const { results } = await verifyBatchReceipt(a.body, de, expectOf(jwsList));
        statuses.push(results.map((r) => r.status));
      }
      // Each message is accepted by exactly one of the requests, a duplicate in the others.
      for (const i of jwsList.keys()) {
        expect(statuses.map((s) => s[i]).sort(), `message ${i}`).to.deep.equal([
          'accepted',
          'duplicate',
          'duplicate',
        ]);
      }
      const after = await counts();
      expect(after.messages - before.messages).to.equal(jwsList.length);
      expect(after.receipts - before.receipts).to.equal(jwsList.length);
      expect(await storedCount(jwsList.map((j) => idOf(j)!))).to.equal(jwsList.length);
      // Whichever request accepted a message, a single resend verifies against its receipt.
      const resend = await partnerRequest(fed.gateways.DE!.partnerUrl, fr, { body: jwsList[7]! });
      expect(resend.status).to.equal(200);
      expect(answers.map((a) => a.body)).to.include(resend.body);
    });
  });
}

/** The `id` in a JWS payload, if it has one (unverified: for expectations only). */
function idOf(jws: string): string | null {
  try {
    const p = JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof p?.id === 'string' ? p.id : null;
  } catch {
    return null;
  }
}
