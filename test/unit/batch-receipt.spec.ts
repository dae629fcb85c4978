import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { v7 as uuidv7 } from 'uuid';
import type { Partner } from '../../src/config/load.js';
import {
  type BatchReceiptItem,
  signBatchReceipt,
  verifyBatchReceipt,
} from '../../src/envelope/batch-receipt.js';
import { messageDigest } from '../../src/envelope/digest.js';
import { algFor } from '../../src/envelope/jws-crypto.js';
import { verifyReceipt } from '../../src/envelope/receipt.js';
import { RECEIPT_TYP, signJws } from '../../src/envelope/sign.js';
import { thumbprintS256 } from '../../src/pki/issue.js';
import { signingKey } from '../helpers/clients.js';
import { testPki } from '../helpers/federation.js';

/** FR's view of DE: only DE's registered signing certificate verifies DE's receipts. */
function partnerDe(pki: string): Partner {
  const pem = readFileSync(path.join(pki, 'DE', 'sign.crt'), 'utf8');
  const cert = new X509Certificate(pem);
  return {
    country: 'DE',
    agency: 'DE',
    url: 'https://127.0.0.1:1',
    tlsFingerprints: [],
    signingKeys: [{ kid: thumbprintS256(pem), cert, publicKey: cert.publicKey }],
    algorithms: [algFor(cert.publicKey)!],
    ratePerSecond: 1,
  } as unknown as Partner;
}

describe('batch receipts: verifyBatchReceipt and verifyReceipt on a batch receipt', () => {
  let pki: string;
  let de: Partner;
  const sent = [0, 1, 2].map((i) => ({ messageId: uuidv7(), messageDigest: messageDigest(`jws-${i}`) }));
  const expected = { from: 'FR', items: sent };
  const head = { seq: 42, hash: 'a'.repeat(64) };
  const accepted: BatchReceiptItem[] = sent.map((s) => ({ ...s, status: 'accepted' }));

  before(async () => {
    pki = await testPki();
    de = partnerDe(pki);
  });

  const signer = (cc = 'DE') => signingKey(pki, cc);
  const sign = (items: BatchReceiptItem[], over: { from?: string; to?: string } = {}, cc = 'DE') =>
    signBatchReceipt(
      {
        from: over.from ?? 'DE',
        to: over.to ?? 'FR',
        receivedAt: new Date().toISOString(),
        auditHead: head,
        items,
      },
      signer(cc),
    ).then((r) => r.jws);

  async function code(p: Promise<unknown>): Promise<string | undefined> {
    return p.then(
      () => undefined,
      (e: { code?: string }) => e.code,
    );
  }

  it('returns one result per message sent, in order, with the receiver statuses', async () => {
    const items: BatchReceiptItem[] = [
      accepted[0]!,
      { ...sent[1]!, status: 'duplicate' },
      {
        messageId: null,
        messageDigest: sent[2]!.messageDigest,
        status: 'rejected',
        problem: { code: 'JWS_SIGNATURE_INVALID', status: 401, detail: 'no' },
      },
    ];
    const { receipt, results } = await verifyBatchReceipt(await sign(items), de, expected);
    expect(receipt.auditHead).to.deep.equal(head);
    expect(results.map((r) => r.status)).to.deep.equal(['accepted', 'duplicate', 'rejected']);
    expect(results[2]!.problem?.code).to.equal('JWS_SIGNATURE_INVALID');
    expect(results[2]!.messageId).to.equal(sent[2]!.messageId);
  });

  it("refuses a receipt signed with another key than the partner's registered one", async () => {
    // BE's key under its own kid: not registered for DE.
    expect(await code(verifyBatchReceipt(await sign(accepted, {}, 'BE'), de, expected))).to.equal(
      'RECEIPT_INVALID',
    );
    // BE's key under DE's kid: the signature does not verify.
    const forged = await signJws(
      {
        v: 1,
        id: uuidv7(),
        type: 'receipt.batch',
        from: 'DE',
        to: 'FR',
        receivedAt: new Date().toISOString(),
        auditHead: head,
        items: accepted,
      },
      { ...signingKey(pki, 'BE'), kid: signingKey(pki, 'DE').kid },
      RECEIPT_TYP,
    );
    expect(await code(verifyBatchReceipt(forged, de, expected))).to.equal('RECEIPT_INVALID');
  });

  it('refuses a receipt whose payload was altered after signing', async () => {
    const jws = await sign(accepted);
    const [h, p, s] = jws.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.items[1].status = 'rejected';
    const altered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    expect(await code(verifyBatchReceipt(altered, de, expected))).to.equal('RECEIPT_INVALID');
  });

  it('refuses a digest that is not the one computed for the bytes sent', async () => {
    const items = accepted.map((i, n) => (n === 1 ? { ...i, messageDigest: messageDigest('other') } : i));
    expect(await code(verifyBatchReceipt(await sign(items), de, expected))).to.equal(
      'RECEIPT_DIGEST_MISMATCH',
    );
    // Items out of order are as wrong as a wrong digest.
    const swapped = [accepted[1]!, accepted[0]!, accepted[2]!];
    expect(await code(verifyBatchReceipt(await sign(swapped), de, expected))).to.equal(
      'RECEIPT_DIGEST_MISMATCH',
    );
  });

  it('refuses a receipt with a missing, an extra or a renamed item', async () => {
    expect(await code(verifyBatchReceipt(await sign(accepted.slice(0, 2)), de, expected))).to.equal(
      'RECEIPT_INVALID',
    );
    expect(await code(verifyBatchReceipt(await sign([...accepted, accepted[0]!]), de, expected))).to.equal(
      'RECEIPT_INVALID',
    );
    const renamed = accepted.map((i, n) => (n === 0 ? { ...i, messageId: uuidv7() } : i));
    expect(await code(verifyBatchReceipt(await sign(renamed), de, expected))).to.equal('RECEIPT_INVALID');
    // Only a rejected message may go unnamed.
    const unnamed = accepted.map((i, n) => (n === 0 ? { ...i, messageId: null } : i));
    expect(await code(verifyBatchReceipt(await sign(unnamed), de, expected))).to.equal('RECEIPT_INVALID');
  });

  it('refuses wrong parties: another issuer or another addressee', async () => {
    expect(await code(verifyBatchReceipt(await sign(accepted, { from: 'BE' }), de, expected))).to.equal(
      'RECEIPT_INVALID',
    );
    expect(await code(verifyBatchReceipt(await sign(accepted, { to: 'BE' }), de, expected))).to.equal(
      'RECEIPT_INVALID',
    );
  });

  it('refuses a rejected item without its problem, and a single receipt', async () => {
    const bad = [accepted[0]!, { ...sent[1]!, status: 'rejected' as const }, accepted[2]!];
    expect(await code(verifyBatchReceipt(await sign(bad), de, expected))).to.equal('RECEIPT_INVALID');
    const single = await signJws(
      {
        v: 1,
        id: uuidv7(),
        type: 'receipt',
        from: 'DE',
        to: 'FR',
        messageId: sent[0]!.messageId,
        messageDigest: sent[0]!.messageDigest,
        receivedAt: new Date().toISOString(),
        status: 'accepted',
        auditHead: head,
      },
      signer(),
      RECEIPT_TYP,
    );
    expect(await code(verifyBatchReceipt(single, de, expected))).to.equal('RECEIPT_INVALID');
  });

  describe('verifyReceipt (single message) on a batch receipt', () => {
    const one = (i: number) => ({ ...sent[i]!, from: 'FR' });

    it('counts a message listed as accepted or duplicate with our digest as delivered', async () => {
      const items: BatchReceiptItem[] = [accepted[0]!, { ...sent[1]!, status: 'duplicate' }, accepted[2]!];
      const jws = await sign(items);
      const r0 = await verifyReceipt(jws, de, one(0));
      expect(r0).to.include({ type: 'receipt.batch', status: 'accepted', messageId: sent[0]!.messageId });
      expect(r0.auditHead).to.deep.equal(head);
      const r1 = await verifyReceipt(jws, de, one(1));
      expect(r1.status).to.equal('duplicate');
      expect(r1.messageDigest).to.equal(sent[1]!.messageDigest);
    });

    it('refuses a batch receipt that does not list the message, lists it rejected, or with other bytes', async () => {
      expect(await code(verifyReceipt(await sign(accepted.slice(1)), de, one(0)))).to.equal(
        'RECEIPT_INVALID',
      );
      const rejected = [
        {
          ...sent[0]!,
          status: 'rejected' as const,
          problem: { code: 'DUPLICATE_CONFLICT', status: 409, detail: 'x' },
        },
      ];
      expect(await code(verifyReceipt(await sign(rejected), de, one(0)))).to.equal('RECEIPT_INVALID');
      const other = [{ ...accepted[0]!, messageDigest: messageDigest('other') }];
      expect(await code(verifyReceipt(await sign(other), de, one(0)))).to.equal('RECEIPT_DIGEST_MISMATCH');
      expect(await code(verifyReceipt(await sign(accepted, { to: 'BE' }), de, one(0)))).to.equal(
        'RECEIPT_INVALID',
      );
      expect(await code(verifyReceipt(await sign(accepted, {}, 'BE'), de, one(0)))).to.equal(
        'RECEIPT_INVALID',
      );
    });
  });
});
