/**
 * Batch receipts (docs/protocol.md "Batches"): one signed statement for a whole
 * `POST /v1/messages:batch` request, listing in request order each message's digest and what
 * the receiver did with it. Each message keeps its own signature (non-repudiation per case);
 * the receipt is the receiver's signature over the outcome of all of them at once, so a batch
 * of 100 costs the receiver one signature instead of 100.
 *
 * It has the `typ` of every receipt (`icros-receipt+jws`: it is the same kind of object, a
 * receiver's signed acknowledgement) and `type: "receipt.batch"` in the payload. A v1 receipt
 * verifier that knows only single receipts refuses it on `type` (it fails closed).
 */
import { v7 as uuidv7 } from 'uuid';
import type { Partner } from '../config/load.js';
import { IcrosError } from '../errors.js';
import { RECEIPT_TYP, type Signer, signJws } from './sign.js';
import { verifyJws } from './verify.js';

export const BATCH_RECEIPT_TYPE = 'receipt.batch';

export type BatchItemStatus = 'accepted' | 'duplicate' | 'rejected';

export interface BatchReceiptItem {
  /** The message's `id`; null when the message was rejected before its envelope was valid. */
  messageId: string | null;
  /** `sha256:<base64url>` over the exact characters of the JWS string sent in the batch. */
  messageDigest: string;
  status: BatchItemStatus;
  /** Only for `rejected`: the problem the message would have got from `POST /v1/messages`. */
  problem?: { code: string; status: number; detail: string };
}

export interface BatchReceiptV1 {
  v: 1;
  id: string;
  type: typeof BATCH_RECEIPT_TYPE;
  from: string;
  to: string;
  receivedAt: string;
  auditHead: { seq: number; hash: string };
  items: BatchReceiptItem[];
}

export async function signBatchReceipt(
  fields: Omit<BatchReceiptV1, 'v' | 'id' | 'type'>,
  signer: Signer,
): Promise<{ receipt: BatchReceiptV1; jws: string }> {
  const receipt: BatchReceiptV1 = { v: 1, id: uuidv7(), type: BATCH_RECEIPT_TYPE, ...fields };
  return { receipt, jws: await signJws(receipt, signer, RECEIPT_TYP) };
}

/** What a verified batch receipt says about one message the sender put in the batch. */
export interface BatchResult {
  messageId: string;
  messageDigest: string;
  status: BatchItemStatus;
  problem?: { code: string; status: number; detail: string };
}

/**
 * Verify the receipt `partner` answered to a batch we sent: signature with the partner's
 * registered key (never one carried in the receipt), `from`/`to`, and that the items are
 * exactly our messages in the order we sent them, each with the digest we computed. Any
 * mismatch fails the whole receipt: a receipt that misstates one item proves nothing about
 * the others. Returns one result per expected item, in that order.
 */
export async function verifyBatchReceipt(
  jws: string,
  partner: Partner,
  expected: { from: string; items: { messageId: string; messageDigest: string }[] },
): Promise<{ receipt: BatchReceiptV1; results: BatchResult[] }> {
  const receipt = await verifyBatchReceiptJws(jws, partner);
  if (receipt.to !== expected.from) {
    throw new IcrosError(
      'RECEIPT_INVALID',
      `batch receipt from ${partner.country} names ${receipt.from}→${receipt.to}, expected ${partner.country}→${expected.from}`,
    );
  }
  if (receipt.items.length !== expected.items.length) {
    throw new IcrosError(
      'RECEIPT_INVALID',
      `batch receipt from ${partner.country} lists ${receipt.items.length} messages, the batch had ${expected.items.length}`,
    );
  }
  const results = expected.items.map((want, i): BatchResult => {
    const item = receipt.items[i]!;
    if (item.messageDigest !== want.messageDigest) {
      throw new IcrosError(
        'RECEIPT_DIGEST_MISMATCH',
        `batch receipt from ${partner.country}, item ${i}: ${item.messageDigest}, the bytes sent were ${want.messageDigest}`,
      );
    }
    // A rejected message may be unnamed (its envelope could not be read); any other is named.
    if (item.messageId !== want.messageId && !(item.status === 'rejected' && item.messageId === null)) {
      throw new IcrosError(
        'RECEIPT_INVALID',
        `batch receipt from ${partner.country}, item ${i}: message ${item.messageId}, expected ${want.messageId}`,
      );
    }
    return {
      messageId: want.messageId,
      messageDigest: want.messageDigest,
      status: item.status,
      ...(item.problem ? { problem: item.problem } : {}),
    };
  });
  return { receipt, results };
}

/**
 * Signature, shape and issuer of a batch receipt from `partner`; the caller checks the
 * addressee and the items. Also used by `verifyReceipt` for a message first accepted in a
 * batch and resent alone (the receiver answers it with the stored batch receipt).
 */
export async function verifyBatchReceiptJws(jws: string, partner: Partner): Promise<BatchReceiptV1> {
  let payload: unknown;
  try {
    ({ payload } = await verifyJws(jws, partner, RECEIPT_TYP));
  } catch (cause) {
    throw new IcrosError('RECEIPT_INVALID', `receipt from ${partner.country}: ${(cause as Error).message}`, {
      cause,
    });
  }
  return checkBatchReceipt(payload, partner);
}

/** The payload of a signature-checked receipt, when it is a batch receipt v1 from `partner`. */
export function checkBatchReceipt(payload: unknown, partner: Partner): BatchReceiptV1 {
  const r = payload as Partial<BatchReceiptV1> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    r.v !== 1 ||
    r.type !== BATCH_RECEIPT_TYPE ||
    typeof r.id !== 'string' ||
    typeof r.receivedAt !== 'string' ||
    typeof r.auditHead?.seq !== 'number' ||
    typeof r.auditHead?.hash !== 'string' ||
    !Array.isArray(r.items) ||
    !r.items.every(isItem)
  ) {
    throw new IcrosError(
      'RECEIPT_INVALID',
      `receipt from ${partner.country} does not have the batch receipt v1 shape`,
    );
  }
  if (r.from !== partner.country) {
    throw new IcrosError(
      'RECEIPT_INVALID',
      `batch receipt from ${partner.country} is issued by ${r.from}, expected ${partner.country}`,
    );
  }
  return r as BatchReceiptV1;
}

const STATUSES: ReadonlySet<unknown> = new Set<BatchItemStatus>(['accepted', 'duplicate', 'rejected']);

function isItem(item: unknown): item is BatchReceiptItem {
  const i = item as Partial<BatchReceiptItem> | null;
  if (typeof i !== 'object' || i === null || Array.isArray(i)) return false;
  if (typeof i.messageDigest !== 'string' || !STATUSES.has(i.status)) return false;
  if (i.messageId !== null && typeof i.messageId !== 'string') return false;
  if (i.status !== 'rejected') return i.problem === undefined && typeof i.messageId === 'string';
  const p = i.problem;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.code === 'string' &&
    typeof p.status === 'number' &&
    typeof p.detail === 'string'
  );
}
