/**
 * Receipts (DESIGN §4): the receiver's signed statement that it stored the exact bytes
 * whose digest it names, with the head of its audit chain at that moment.
 */
import { v7 as uuidv7 } from 'uuid';
import type { Partner } from '../config/load.js';
import { IcrosError } from '../errors.js';
import { BATCH_RECEIPT_TYPE, type BatchReceiptV1, checkBatchReceipt } from './batch-receipt.js';
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
 * What `verifyReceipt` returns for a message first accepted in a batch and then resent alone:
 * the receiver answers with the batch receipt it stored, and this is what that receipt says
 * about the message (the whole signed receipt is in `batch`).
 */
export interface BatchReceiptFor {
  v: 1;
  id: string;
  type: typeof BATCH_RECEIPT_TYPE;
  from: string;
  to: string;
  messageId: string;
  messageDigest: string;
  receivedAt: string;
  status: 'accepted' | 'duplicate';
  auditHead: { seq: number; hash: string };
  batch: BatchReceiptV1;
}

/**
 * Verify a receipt from `partner` for the message we sent: signature with the partner's
 * registered key, then that it names our message, our digest, the right parties. A batch
 * receipt counts when it lists the message, with our digest, as accepted or duplicate: the
 * answer to a single resend of a message the partner first accepted in a batch.
 */
export async function verifyReceipt(
  jws: string,
  partner: Partner,
  expected: { messageId: string; messageDigest: string; from: string },
): Promise<ReceiptV1 | BatchReceiptFor> {
  let payload: unknown;
  try {
    ({ payload } = await verifyJws(jws, partner, RECEIPT_TYP));
  } catch (cause) {
    throw new IcrosError('RECEIPT_INVALID', `receipt from ${partner.country}: ${(cause as Error).message}`, {
      cause,
    });
  }
  if ((payload as { type?: unknown } | null)?.type === BATCH_RECEIPT_TYPE) {
    return fromBatch(checkBatchReceipt(payload, partner), partner, expected);
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

/** The batch receipt's statement about one message, or why it does not prove delivery. */
function fromBatch(
  batch: BatchReceiptV1,
  partner: Partner,
  expected: { messageId: string; messageDigest: string; from: string },
): BatchReceiptFor {
  if (batch.to !== expected.from) {
    throw new IcrosError(
      'RECEIPT_INVALID',
      `batch receipt from ${partner.country} names ${batch.from}→${batch.to}, expected ${partner.country}→${expected.from}`,
    );
  }
  // The same id may appear more than once in a batch (a copy, or other bytes rejected as a
  // conflict): what counts is an item for exactly our bytes that the receiver holds.
  const mine = batch.items.filter((i) => i.messageId === expected.messageId);
  const held = mine.find(
    (i) =>
      i.messageDigest === expected.messageDigest && (i.status === 'accepted' || i.status === 'duplicate'),
  );
  if (held) {
    return {
      v: 1,
      id: batch.id,
      type: BATCH_RECEIPT_TYPE,
      from: batch.from,
      to: batch.to,
      messageId: expected.messageId,
      messageDigest: held.messageDigest,
      receivedAt: batch.receivedAt,
      status: held.status as 'accepted' | 'duplicate',
      auditHead: batch.auditHead,
      batch,
    };
  }
  const other = mine.find((i) => i.status !== 'rejected');
  if (other) {
    throw new IcrosError(
      'RECEIPT_DIGEST_MISMATCH',
      `batch receipt from ${partner.country} holds message ${expected.messageId} as ${other.messageDigest}, the bytes sent were ${expected.messageDigest}`,
    );
  }
  throw new IcrosError(
    'RECEIPT_INVALID',
    mine.length > 0
      ? `batch receipt from ${partner.country} lists message ${expected.messageId} as rejected (${mine[0]!.problem?.code})`
      : `batch receipt from ${partner.country} does not list message ${expected.messageId}`,
  );
}
