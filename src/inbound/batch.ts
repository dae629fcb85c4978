/**
 * `POST /v1/messages:batch` (docs/protocol.md "Batches"): up to MAX_BATCH messages in one
 * request, for throughput. Each message keeps its own signature and goes through exactly
 * the checks of `POST /v1/messages` (receive.ts, the same functions); one failing does not
 * fail the others. The accepted ones are stored in one group-committed transaction, and the
 * answer is ONE signed batch receipt listing every message's digest and outcome in request
 * order: one signature per batch instead of one per message.
 *
 * The batch receipt is also the stored receipt (`receipts` row) of every message it
 * accepted, so a later single resend of such a message is answered with it, byte-identical,
 * like any late resend.
 */
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { type BatchReceiptItem, signBatchReceipt } from '../envelope/batch-receipt.js';
import { parseUntrustedJson } from '../envelope/json.js';
import { IcrosError, isIcrosError, type ProblemItem } from '../errors.js';
import { checkMessage, type Outcome, settleMessages } from './receive.js';

/** Most messages in one batch; advertised by `GET /v1/ping` as `capabilities.batch.maxMessages`. */
export const MAX_BATCH = 100;

export const BATCH_PATH = '/v1/messages:batch';

/**
 * The messages of a batch body `{"messages": ["<compact JWS>", …]}`. Whole-request
 * problems (not JSON, wrong shape, empty, too many) end the request before any message is
 * looked at; the strings themselves are checked per message.
 */
export function parseBatch(body: Uint8Array): string[] {
  let doc: unknown;
  try {
    doc = parseUntrustedJson(body, 'the batch body');
  } catch (err) {
    if (isIcrosError(err, 'BODY_MALFORMED'))
      throw new IcrosError('BATCH_INVALID', err.message, { cause: err });
    throw err;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new IcrosError('BATCH_INVALID', 'the batch body must be a JSON object {"messages": [...]}', {
      errors: [{ location: '/', rule: 'type', message: 'must be an object' }],
    });
  }
  const extra = Object.keys(doc).filter((k) => k !== 'messages');
  if (extra.length > 0) {
    throw new IcrosError('BATCH_INVALID', `the batch body has members other than "messages"`, {
      errors: extra.slice(0, 50).map((k) => ({
        location: `/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`,
        rule: 'additionalProperties',
        message: 'is not allowed',
      })),
    });
  }
  const messages = (doc as { messages?: unknown }).messages;
  if (!Array.isArray(messages)) {
    throw new IcrosError('BATCH_INVALID', '"messages" must be an array of compact JWS strings', {
      errors: [
        {
          location: '/messages',
          rule: messages === undefined ? 'required' : 'type',
          message: 'must be an array',
        },
      ],
    });
  }
  if (messages.length === 0) throw new IcrosError('BATCH_EMPTY', 'the batch has no messages');
  if (messages.length > MAX_BATCH) {
    throw new IcrosError(
      'BATCH_TOO_MANY',
      `the batch has ${messages.length} messages; at most ${MAX_BATCH} are accepted in one request`,
    );
  }
  const bad: ProblemItem[] = [];
  for (const [i, m] of messages.entries()) {
    if (typeof m !== 'string') {
      bad.push({ location: `/messages/${i}`, rule: 'type', message: 'must be a string (one compact JWS)' });
    }
  }
  if (bad.length > 0) {
    throw new IcrosError('BATCH_INVALID', `${bad.length} item(s) of "messages" are not strings`, {
      errors: bad.slice(0, 50),
    });
  }
  return messages as string[];
}

export interface BatchReceived {
  receiptJws: string;
  outcomes: Outcome[];
}

/** Check, settle and store the messages of one batch; the signed batch receipt answers it. */
export async function receiveBatch(
  ctx: GatewayContext,
  partner: Partner,
  messages: string[],
): Promise<BatchReceived> {
  // Signature checks run on libuv's thread pool; the schema checks are synchronous anyway.
  const checks = await Promise.all(messages.map((jws) => checkMessage(ctx, partner, jws)));
  const { outcomes, value } = await settleMessages(ctx, partner, checks, {
    path: BATCH_PATH,
    auditRejections: true,
    alwaysStore: true,
    answer: async (q, head, outcomes) => {
      const { receipt, jws } = await signBatchReceipt(
        {
          from: ctx.config.country,
          to: partner.country,
          receivedAt: ctx.now().toISOString(),
          auditHead: head,
          items: outcomes.map(receiptItem),
        },
        ctx.config.signing,
      );
      const accepted = outcomes.filter((o) => o.status === 'accepted');
      if (accepted.length > 0) {
        q.defer('insertBatchReceipts', {
          direction: 'in',
          peer: partner.country,
          receipt_id: receipt.id,
          jws,
          audit_head_seq: head.seq,
          audit_head_hash: head.hash,
          messages: accepted.map((o) => ({ message_id: o.messageId, message_digest: o.digest })),
        });
      }
      return jws;
    },
  });
  if (value === undefined) throw new IcrosError('INTERNAL', 'the batch was stored without its receipt');
  return { receiptJws: value, outcomes };
}

function receiptItem(o: Outcome): BatchReceiptItem {
  if (o.status !== 'rejected') return { messageId: o.messageId, messageDigest: o.digest, status: o.status };
  return {
    messageId: o.messageId,
    messageDigest: o.digest,
    status: 'rejected',
    // The detail may quote what the sender put in a header; the receipt stays small.
    problem: { code: o.error.code, status: o.error.status, detail: truncate(o.error.message, 500) },
  };
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
