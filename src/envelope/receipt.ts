/**
 * Receipts (DESIGN §4): the receiver's signed statement that it stored the exact bytes
 * whose digest it names, with the head of its audit chain at that moment.
 */
import { v7 as uuidv7 } from 'uuid';
import type { Partner } from '../config/load.js';
import { IcrosError } from '../errors.js';
import { RECEIPT_TYP, type Signer, signJws } from './sign.js';
import { verifyJws } from './verify.js';

export interface ReceiptV1 {
  v: 1;
  id: string;
  type: 'receipt';
  from: string;
  to: string;
  messageId: string;
  messageDigest: string;
  receivedAt: string;
  status: 'accepted';
  auditHead: { seq: number; hash: string };
}

export async function signReceipt(
  fields: Omit<ReceiptV1, 'v' | 'id' | 'type' | 'status'>,
  signer: Signer,
): Promise<{ receipt: ReceiptV1; jws: string }> {
  const receipt: ReceiptV1 = { v: 1, id: uuidv7(), type: 'receipt', status: 'accepted', ...fields };
  return { receipt, jws: await signJws(receipt, signer, RECEIPT_TYP) };
}

/**
 * Verify a receipt from `partner` for the message we sent: signature with the partner's
 * registered key, then that it names our message, our digest, the right parties.
 */
export async function verifyReceipt(
  jws: string,
  partner: Partner,
  expected: { messageId: string; messageDigest: string; from: string },
): Promise<ReceiptV1> {
  let payload: unknown;
  try {
    ({ payload } = await verifyJws(jws, partner, RECEIPT_TYP));
  } catch (cause) {
    throw new IcrosError('RECEIPT_INVALID', `receipt from ${partner.country}: ${(cause as Error).message}`, {
      cause,
    });
  }
  const r = payload as Partial<ReceiptV1>;
  if (
    typeof r !== 'object' ||
    r === null ||
    r.v !== 1 ||
    r.type !== 'receipt' ||
    r.status !== 'accepted' ||
    typeof r.auditHead?.seq !== 'number' ||
    typeof r.auditHead?.hash !== 'string' ||
    typeof r.receivedAt !== 'string'
  ) {
    throw new IcrosError(
      'RECEIPT_INVALID',
      `receipt from ${partner.country} does not have the receipt v1 shape`,
    );
  }
  if (r.from !== partner.country || r.to !== expected.from || r.messageId !== expected.messageId) {
    throw new IcrosError(
      'RECEIPT_INVALID',
      `receipt from ${partner.country} names ${r.from}→${r.to} message ${r.messageId}, expected ${partner.country}→${expected.from} ${expected.messageId}`,
    );
  }
  if (r.messageDigest !== expected.messageDigest) {
    throw new IcrosError(
      'RECEIPT_DIGEST_MISMATCH',
      `receipt from ${partner.country} is for ${r.messageDigest}, the bytes sent were ${expected.messageDigest}`,
    );
  }
  return r as ReceiptV1;
}
