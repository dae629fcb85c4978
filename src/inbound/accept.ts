/**
 * Storing an accepted message: the message, its case version and the audit events commit
 * in one (group-committed) transaction; the signed receipt, which names the audit head after
 * that commit, is stored right after, so a duplicate is answered with the same bytes.
 */

import type { AuditHead } from '../audit/append.js';
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
  const { value, head } = await ctx.tx.withHead(async (q): Promise<'stored' | 'duplicate'> => {
    const inserted = await q.query(sql('insertInbound'), [
      env.id,
      partner.country,
      env.type,
      env.case?.id ?? env.refersTo ?? null,
      env.case?.version ?? null,
      jws,
      digest,
    ]);
    if (inserted.length === 0) return 'duplicate';
    const actor = { kind: 'partner' as const, id: partner.country };
    q.audit({
      actor,
      action: 'message.received',
      subject: { message: env.id, partner: partner.country, ...(env.case ? { case: env.case.id } : {}) },
      detail: { type: env.type, digest, tlp: env.handling.tlp, handlingCode: env.handling.code },
    });
    if (env.case) {
      const caseDigest = `sha256:${sha256Hex(canonicalJson(env.case))}`;
      const stored = await q.query(sql('insertCase'), [
        env.case.id,
        env.case.version,
        env.case.origin.country,
        partner.country,
        env.id,
        JSON.stringify(env.case),
        caseDigest,
        JSON.stringify(env.handling),
      ]);
      q.audit({
        actor,
        action: stored.length ? 'case.received' : 'case.received.known-version',
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
    return 'stored';
  });
  if (value === 'duplicate') return value;
  return { receiptJws: await storeReceipt(ctx, partner, env.id, digest, head) };
}

/** Issue a receipt for a message stored earlier whose receipt was never written. */
export async function issueReceipt(ctx: GatewayContext, partner: Partner, messageId: string, digest: string) {
  const [head] = await ctx.db.query<AuditHead>(sql('getAuditHead'));
  return storeReceipt(ctx, partner, messageId, digest, { seq: Number(head!.seq), hash: head!.hash });
}

async function storeReceipt(
  ctx: GatewayContext,
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
  const row = ['in', partner.country, messageId, receipt.id, jws, digest, head.seq, head.hash];
  const inserted = await ctx.tx((q) => q.query(sql('insertReceipt'), row));
  if (inserted.length) return jws;
  // Two resends racing after a crash: the first stored receipt is the one every caller gets.
  const [stored] = await ctx.db.query<{ jws: string }>(sql('getReceipt'), ['in', partner.country, messageId]);
  return stored?.jws ?? jws;
}
