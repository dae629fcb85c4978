/**
 * Storing accepted messages: the messages, their case versions, the audit events and the
 * signed answer (which names the audit head including those events) commit in one
 * group-committed transaction, so a duplicate is answered with the same receipt bytes.
 * A single message and a batch of 100 alike are one insert statement (`acceptInboundMany`),
 * one audit append and one receipts insert; the writer group-commits concurrent requests.
 */

import type { AuditHead, AuditInput } from '../audit/append.js';
import type { AuditedTx } from '../audit/writer.js';
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { sha256Hex } from '../envelope/digest.js';
import { canonicalJson } from '../envelope/json.js';
import { signReceipt } from '../envelope/receipt.js';
import { IcrosError } from '../errors.js';
import { log } from '../log.js';
import { sql } from '../store/sql.js';
import {
  againstHeld,
  type Checked,
  heldDigests,
  type Outcome,
  type Pending,
  rejection,
  resolveFollowers,
  type SettleOptions,
} from './receive.js';

/**
 * Store the `new` messages of `pending` in one transaction and settle every outcome; then
 * `opts.answer` signs the answer with the head after this request's audit events. Runs
 * again from scratch if the writer replays it alone (writer.ts), so it keeps no state
 * outside the transaction but the answer of the run that committed.
 */
export async function storeMessages<R>(
  ctx: GatewayContext,
  partner: Partner,
  pending: Pending[],
  opts: SettleOptions<R>,
): Promise<{ outcomes: Outcome[]; value: R | undefined }> {
  let value: R | undefined;
  // The case digests and rows first: the writer runs one transaction at a time, so the work
  // done inside it is work no other request can overlap.
  const fresh = pending.flatMap((p, i) =>
    p.kind === 'new' ? [{ i, checked: p.checked, caseDigest: caseDigestOf(p.checked) }] : [],
  );
  const rows = fresh.map(({ checked, caseDigest }) => inboundRow(partner, checked, caseDigest));
  const rowsJson = JSON.stringify(rows);
  const outcomes = await ctx.tx(async (q) => {
    const { stored, failed } = await insertInbound(q, rows, rowsJson);
    // Not inserted: a copy stored concurrently (before us, or earlier in this transaction).
    const raced = fresh.filter(
      ({ checked }) => !stored.has(checked.envelope.id) && !failed.has(checked.envelope.id),
    );
    const held = raced.length
      ? await heldDigests(
          q,
          partner.country,
          raced.map(({ checked }) => checked.envelope.id),
        )
      : new Map<string, string>();
    const known = new Map<number, Outcome>();
    for (const { i, checked } of fresh) {
      const id = checked.envelope.id;
      if (failed.has(id)) {
        known.set(
          i,
          rejection(
            checked,
            new IcrosError('INTERNAL', 'the message could not be stored; send it again later'),
          ),
        );
        continue;
      }
      if (stored.has(id)) {
        known.set(i, {
          status: 'accepted',
          messageId: id,
          digest: checked.digest,
          envelope: checked.envelope,
        });
        continue;
      }
      const heldDigest = held.get(id);
      if (heldDigest === undefined)
        throw new IcrosError('INTERNAL', `message ${id} conflicted on insert but is not stored`);
      known.set(i, againstHeld(partner, checked, heldDigest));
    }
    const outcomes = resolveFollowers(pending, known);

    for (const { checked, caseDigest } of fresh) {
      const casestored = stored.get(checked.envelope.id);
      if (casestored !== undefined) await auditAccepted(q, partner, checked, caseDigest, casestored);
    }
    if (opts.auditRejections) {
      for (const [item, o] of outcomes.entries()) {
        if (o.status !== 'rejected') continue;
        q.audit({
          actor: { kind: 'partner', id: partner.country },
          action: 'message.rejected',
          subject: { partner: partner.country, ...(o.messageId ? { message: o.messageId } : {}) },
          detail: { code: o.error.code, path: opts.path, item, digest: o.digest },
        });
      }
    }
    // The answer names the head after this batch and commits with the messages.
    q.afterAppend(async (head) => {
      value = await opts.answer(q, head, outcomes);
    });
    return outcomes;
  });
  return { outcomes, value };
}

type InboundRow = ReturnType<typeof inboundRow>;

/**
 * Insert the messages of one request (`rowsJson`: `rows` as JSON) in one statement: id →
 * case stored now, for those stored now; the others were already held. A single message's
 * database error fails its request as before. In a batch, a statement that fails is retried
 * one message at a time under savepoints, so a message the database refuses (a bug, a limit)
 * is reported alone (`failed`) and the rest are stored.
 */
async function insertInbound(
  q: AuditedTx,
  rows: InboundRow[],
  rowsJson: string,
): Promise<{ stored: Map<string, boolean>; failed: Set<string> }> {
  const stored = new Map<string, boolean>();
  const failed = new Set<string>();
  const insert = async (json: string) => {
    const out = await q.query<{ id: string; casestored: boolean }>(sql('acceptInboundMany'), [json]);
    for (const r of out) stored.set(r.id, r.casestored);
  };
  if (rows.length <= 1) {
    if (rows.length === 1) await insert(rowsJson);
    return { stored, failed };
  }
  await q.query(sql('savepointAccept'));
  try {
    await insert(rowsJson);
    await q.query(sql('releaseAccept'));
    return { stored, failed };
  } catch (err) {
    await q.query(sql('rollbackAccept'));
    log.warn('storing a batch failed; storing its messages one by one', { err: (err as Error).message });
  }
  stored.clear();
  for (const row of rows) {
    try {
      await insert(JSON.stringify([row]));
      await q.query(sql('releaseAccept'));
      await q.query(sql('savepointAccept'));
    } catch (err) {
      await q.query(sql('rollbackAccept'));
      failed.add(row.id);
      log.error('an accepted message could not be stored', {
        messageId: row.id,
        err: (err as Error).message,
      });
    }
  }
  await q.query(sql('releaseAccept'));
  return { stored, failed };
}

function caseDigestOf({ envelope }: Checked): string | null {
  return envelope.case ? `sha256:${sha256Hex(canonicalJson(envelope.case))}` : null;
}

/** The `acceptInboundMany` row of a message. */
function inboundRow(partner: Partner, { envelope: env, jws, digest }: Checked, caseDigest: string | null) {
  return {
    id: env.id,
    peer: partner.country,
    type: env.type,
    case_id: env.case?.id ?? env.refersTo ?? null,
    case_version: env.case?.version ?? null,
    jws,
    digest,
    origin_country: env.case?.origin.country ?? null,
    doc: env.case ?? null,
    case_digest: caseDigest,
    handling: env.handling,
  };
}

/** The audit events of a message stored now, and the effect of a withdrawal. */
async function auditAccepted(
  q: AuditedTx,
  partner: Partner,
  checked: Checked,
  caseDigest: string | null,
  casestored: boolean,
) {
  const { envelope: env, digest } = checked;
  const actor = { kind: 'partner' as const, id: partner.country };
  const events: AuditInput[] = [
    {
      actor,
      action: 'message.received',
      subject: { message: env.id, partner: partner.country, ...(env.case ? { case: env.case.id } : {}) },
      detail: { type: env.type, digest, tlp: env.handling.tlp, handlingCode: env.handling.code },
    },
  ];
  if (env.case) {
    events.push({
      actor,
      action: casestored ? 'case.received' : 'case.received.known-version',
      subject: { case: env.case.id, message: env.id, partner: partner.country },
      detail: { version: env.case.version, digest: caseDigest },
    });
  }
  if (env.type === 'case.withdraw' && env.refersTo) {
    const withdrawn = await q.query(sql('withdrawReceivedCase'), [env.refersTo, partner.country]);
    events.push({
      actor,
      action: 'case.withdrawn',
      subject: { case: env.refersTo, message: env.id, partner: partner.country },
      detail: { versions: withdrawn.length },
    });
  }
  q.audit(...events);
}

/** Sign the receipt of a single message being stored in this transaction and queue its row. */
export async function writeReceipt(
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
