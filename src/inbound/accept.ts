/**
 * Storing an accepted message: the message, its case version, the audit events and the
 * signed receipt (which names the audit head including those events) commit in one
 * group-committed transaction, so a duplicate is answered with the same receipt bytes.
 */

import type { AuditHead } from '../audit/append.js';
import type { AuditedTx } from '../audit/writer.js';
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { sha256Hex } from '../envelope/digest.js';
import { canonicalJson } from '../envelope/json.js';
import { signReceipt } from '../envelope/receipt.js';
import type { EnvelopeV1 } from '../schema/validators.js';
import { sql } from '../store/sql.js';

export async function acceptMessage(
  ctx: GatewayContext,
  partner: Partner,
  env: EnvelopeV1,
  jws: string,
  digest: string,
): Promise<{ receiptJws: string } | 'duplicate'> {
  let receiptJws = '';
  const value = await ctx.tx(async (q): Promise<'stored' | 'duplicate'> => {
    const caseDigest = env.case ? `sha256:${sha256Hex(canonicalJson(env.case))}` : null;
    const [r] = await q.query<{ message: number; casestored: number }>(sql('acceptInbound'), [
      env.id,
      partner.country,
      env.type,
      env.case?.id ?? env.refersTo ?? null,
      env.case?.version ?? null,
      jws,
      digest,
      env.case?.origin.country ?? null,
      env.case ? JSON.stringify(env.case) : null,
      caseDigest,
      JSON.stringify(env.handling),
    ]);
    if (!r?.message) return 'duplicate';
    const actor = { kind: 'partner' as const, id: partner.country };
    q.audit({
      actor,
      action: 'message.received',
      subject: { message: env.id, partner: partner.country, ...(env.case ? { case: env.case.id } : {}) },
      detail: { type: env.type, digest, tlp: env.handling.tlp, handlingCode: env.handling.code },
    });
    if (env.case) {
      q.audit({
        actor,
        action: r.casestored ? 'case.received' : 'case.received.known-version',
        subject: { case: env.case.id, message: env.id, partner: partner.country },
        detail: { version: env.case.version, digest: caseDigest },
      });
    }
    if (env.type === 'case.withdraw' && env.refersTo) {
      const withdrawn = await q.query(sql('withdrawReceivedCase'), [env.refersTo, partner.country]);
      q.audit({
        actor,
        action: 'case.withdrawn',
        subject: { case: env.refersTo, message: env.id, partner: partner.country },
        detail: { versions: withdrawn.length },
      });
    }
    // The receipt names the head after this batch and commits with the message.
    q.afterAppend(async (head) => {
      receiptJws = await writeReceipt(ctx, q, partner, env.id, digest, head);
    });
    return 'stored';
  });
  if (value === 'duplicate') return value;
  return { receiptJws };
}

/** Sign the receipt of a message being stored in this transaction and queue its row. */
async function writeReceipt(
  ctx: GatewayContext,
  q: AuditedTx,
  partner: Partner,
  messageId: string,
  digest: string,
  head: AuditHead,
): Promise<string> {
  const { receipt, jws } = await signReceipt(
    {
      from: ctx.config.country,
      to: partner.country,
      messageId,
      messageDigest: digest,
      receivedAt: ctx.now().toISOString(),
      auditHead: head,
    },
    ctx.config.signing,
  );
  q.defer('insertReceipts', {
    direction: 'in',
    peer: partner.country,
    message_id: messageId,
    receipt_id: receipt.id,
    jws,
    message_digest: digest,
    audit_head_seq: head.seq,
    audit_head_hash: head.hash,
  });
  return jws;
}
