/**
 * Withdrawing a case we originated: one signed `case.withdraw` (envelope `refersTo` = the
 * case id, no case) to every partner that was sent the case, whatever that message's state,
 * and the local case marked withdrawn — outbox rows, the mark and the audit events in one
 * transaction. Each withdrawal row's predecessor is the partner's latest undelivered message
 * of the case (`insertOutbound`), so it is delivered after the transfer it retracts.
 */
import { v7 as uuidv7 } from 'uuid';
import type { GatewayContext } from '../context.js';
import { messageDigest } from '../envelope/digest.js';
import { MESSAGE_TYP, signJws } from '../envelope/sign.js';
import { IcrosError } from '../errors.js';
import { type EnvelopeV1, type Handling, validateEnvelope } from '../schema/validators.js';
import { sql } from '../store/sql.js';
import type { QueuedMessage } from './forward.js';
import { effectiveHandling, type HandledCase } from './handling.js';

export interface WithdrawRequest {
  caseId: string;
  /** Why this processing happens (the envelope's `handling.purpose`, and audited). */
  purpose: string;
  /** Why the case is withdrawn: audited here, not sent to partners. */
  reason?: string;
  /** Overrides the legal basis taken from the last transfer to each partner. */
  legalBasis?: string;
  actor: string;
}

/** Legal basis of a withdrawal when no earlier transfer to that partner can be read any more (erased). */
const DEFAULT_LEGAL_BASIS = 'Withdrawal of a case report by its originating agency';

export async function withdrawCase(ctx: GatewayContext, req: WithdrawRequest): Promise<QueuedMessage[]> {
  const [row] = await ctx.db.query<HandledCase & { origin_country: string; withdrawn_at: Date | null }>(
    sql('getCase'),
    [req.caseId],
  );
  if (!row) throw new IcrosError('CASE_NOT_FOUND', `no case ${req.caseId}`);
  if (row.received_from || row.origin_country !== ctx.config.country) {
    throw new IcrosError(
      'WITHDRAW_NOT_ORIGIN',
      `case ${req.caseId} originates from ${row.origin_country}${row.received_from ? ` and was received from ${row.received_from}` : ''}: only its originating gateway can withdraw it`,
    );
  }
  if (row.withdrawn_at) {
    throw new IcrosError(
      'CASE_WITHDRAWN',
      `case ${req.caseId} was already withdrawn at ${new Date(row.withdrawn_at).toISOString()}`,
    );
  }
  // A forward committed between reading the recipients and the transaction would miss its
  // withdrawal: the transaction reads them again after locking the case, and on a change
  // everything is signed again for the new set.
  for (let attempt = 1; ; attempt++) {
    try {
      return await withdrawOnce(ctx, req, row);
    } catch (err) {
      if (!(err instanceof RecipientsChanged) || attempt >= 3) throw err;
    }
  }
}

/** Thrown inside the transaction when the recipients are not those signed for. */
class RecipientsChanged extends IcrosError {
  constructor() {
    super('INTERNAL', 'the case was forwarded while it was being withdrawn; try again');
  }
}

async function withdrawOnce(
  ctx: GatewayContext,
  req: WithdrawRequest,
  row: HandledCase,
): Promise<QueuedMessage[]> {
  const recipients = await ctx.db.query<{ peer: string; jws: string }>(sql('caseRecipients'), [req.caseId]);
  const fallback = effectiveHandling(row) ?? { tlp: 'AMBER' as const, code: 'H1' as const };
  const sentAt = ctx.now().toISOString();
  const signed = await Promise.all(
    recipients.map(async ({ peer, jws: earlier }) => {
      const before = earlierHandling(earlier);
      const handling: Handling = {
        tlp: before?.tlp ?? fallback.tlp,
        code: before?.code ?? fallback.code,
        purpose: req.purpose,
        legalBasis: req.legalBasis ?? before?.legalBasis ?? DEFAULT_LEGAL_BASIS,
      };
      const envelope: EnvelopeV1 = {
        v: 1,
        id: uuidv7(),
        type: 'case.withdraw',
        from: ctx.config.country,
        to: peer,
        sentAt,
        handling,
        refersTo: req.caseId,
      };
      if (!validateEnvelope(envelope)) {
        throw new IcrosError('REQUEST_INVALID', 'the withdrawal does not make a valid envelope', {
          errors: validateEnvelope.problems(envelope),
        });
      }
      const jws = await signJws(envelope, ctx.config.signing, MESSAGE_TYP);
      return { envelope, jws, digest: messageDigest(jws) };
    }),
  );

  await ctx.tx(async (q) => {
    // Forwards earlier in this audit-writer batch have their rows deferred: write them first.
    await q.flush('insertOutboundMany');
    const versions = await q.query(sql('withdrawLocalCase'), [req.caseId]);
    // A concurrent withdrawal committed first: this one writes nothing.
    if (versions.length === 0)
      throw new IcrosError('CASE_WITHDRAWN', `case ${req.caseId} was already withdrawn`);
    // Once the chain head lock is held, every forward that got in before is committed and
    // visible (and every later one fails on the withdrawn case, migration 008): the
    // recipients signed for must be exactly those.
    q.afterAppend(async () => {
      const now = await q.query<{ peer: string }>(sql('caseRecipients'), [req.caseId]);
      const signedFor = new Set(signed.map((s) => s.envelope.to));
      if (now.length !== signedFor.size || now.some((r) => !signedFor.has(r.peer)))
        throw new RecipientsChanged();
    });
    for (const { envelope, jws, digest } of signed) {
      await q.query(sql('insertOutbound'), [
        envelope.id,
        envelope.to,
        envelope.type,
        req.caseId,
        null,
        jws,
        digest,
      ]);
    }
    q.audit({
      actor: { kind: 'user', id: req.actor },
      action: 'case.withdrawn',
      subject: { case: req.caseId },
      detail: {
        versions: versions.length,
        purpose: req.purpose,
        ...(req.reason ? { reason: req.reason } : {}),
        partners: signed.map((s) => s.envelope.to),
      },
    });
    for (const { envelope, digest } of signed) {
      q.audit({
        actor: { kind: 'user', id: req.actor },
        action: 'case.withdraw.queued',
        subject: { case: req.caseId, message: envelope.id, partner: envelope.to },
        detail: {
          digest,
          purpose: req.purpose,
          tlp: envelope.handling.tlp,
          handlingCode: envelope.handling.code,
        },
      });
    }
  });
  ctx.cases.drop(req.caseId); // a forward would be refused (migration 008); no need to sign it first
  return signed.map(({ envelope, digest }) => ({
    id: envelope.id,
    to: envelope.to,
    digest,
    state: 'queued' as const,
  }));
}

/** The handling of an earlier message we signed (our own stored bytes); undefined once erased. */
function earlierHandling(jws: string): Partial<Handling> | undefined {
  const payload = jws.split('.')[1];
  if (!payload) return undefined;
  try {
    const env = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      handling?: Partial<Handling>;
    };
    return env.handling;
  } catch {
    return undefined;
  }
}
