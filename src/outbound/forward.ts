/**
 * Forwarding a case: one message per partner, each signed once here; the exact JWS bytes
 * and the audit events are written to the outbox in one transaction (DESIGN §4: every retry
 * resends these bytes). The delivery queue picks the rows up from there.
 */
import { v7 as uuidv7 } from 'uuid';
import type { GatewayContext } from '../context.js';
import { messageDigest } from '../envelope/digest.js';
import { MESSAGE_TYP, signJws } from '../envelope/sign.js';
import { IcrosError } from '../errors.js';
import { type EnvelopeV1, type Handling, validateEnvelope } from '../schema/validators.js';
import { sql } from '../store/sql.js';
import type { CachedCase } from './case-cache.js';
import { assertForwardAllowed, assertNotRelaxed } from './handling.js';

export interface ForwardRequest {
  caseId: string;
  to: string[];
  handling: Handling;
  /** Who asked (user name), for the audit log. */
  actor: string;
}

export interface QueuedMessage {
  id: string;
  to: string;
  digest: string;
  state: 'queued';
}

export async function forwardCase(ctx: GatewayContext, req: ForwardRequest): Promise<QueuedMessage[]> {
  const to = [...new Set(req.to)];
  if (to.length === 0) throw new IcrosError('REQUEST_INVALID', '"to" must name at least one partner country');
  for (const cc of to) {
    if (!ctx.registry.byCountry(cc)) {
      throw new IcrosError(
        'FORWARD_PARTNER_UNKNOWN',
        `${JSON.stringify(cc)} is not a registered partner of ${ctx.config.country}`,
      );
    }
  }
  // A kept copy saves the read; if it is out of date, the insert says so (IC412) and the
  // case is read again. Reading it again once is enough unless new versions keep arriving.
  for (let attempt = 1; ; attempt++) {
    const cached = attempt === 1 ? ctx.cases.get(req.caseId) : undefined;
    ctx.metrics.caseCache.inc({ result: cached ? 'hit' : 'miss' });
    const row = cached ?? (await readCase(ctx, req.caseId));
    try {
      return await signAndQueue(ctx, req, to, row);
    } catch (err) {
      if ((err as { code?: string }).code !== 'IC412') throw err;
      ctx.metrics.caseCache.inc({ result: 'stale' });
      ctx.cases.drop(req.caseId);
      if (attempt === 3)
        throw new IcrosError(
          'CASE_CHANGED',
          `case ${req.caseId} got a new version or was erased each time it was about to be forwarded`,
        );
    }
  }
}

async function readCase(ctx: GatewayContext, caseId: string): Promise<CachedCase> {
  const [row] = await ctx.db.query<CachedCase>(sql('getCase'), [caseId]);
  if (!row) throw new IcrosError('CASE_NOT_FOUND', `no case ${caseId}`);
  ctx.cases.put(row);
  return row;
}

async function signAndQueue(
  ctx: GatewayContext,
  req: ForwardRequest,
  to: string[],
  row: CachedCase,
): Promise<QueuedMessage[]> {
  if ((row.doc as { erased?: boolean }).erased) {
    throw new IcrosError('CASE_ERASED', `case ${req.caseId} was erased at the end of its retention period`);
  }
  if (row.withdrawn_at)
    throw new IcrosError('CASE_WITHDRAWN', `case ${req.caseId} was withdrawn and cannot be forwarded`);
  assertForwardAllowed(row);
  assertNotRelaxed(row, req.handling);

  const sentAt = ctx.now().toISOString();
  const signed = await Promise.all(
    to.map(async (country) => {
      const envelope: EnvelopeV1 = {
        v: 1,
        id: uuidv7(),
        type: 'case.transfer',
        from: ctx.config.country,
        to: country,
        sentAt,
        handling: req.handling,
        case: row.doc,
      };
      if (!validateEnvelope(envelope)) {
        throw new IcrosError('REQUEST_INVALID', 'the forward request does not make a valid envelope', {
          errors: validateEnvelope.problems(envelope),
        });
      }
      const jws = await signJws(envelope, ctx.config.signing, MESSAGE_TYP);
      return { envelope, jws, digest: messageDigest(jws) };
    }),
  );

  // The rows go in with those of the other writes of the audit writer's batch, under the chain
  // head lock, which also orders concurrent forwards of one case; with the events, one
  // statement and no transaction (migration 009). A withdrawal committed meanwhile makes the
  // insert fail in the database (migration 008), and so does a newer version or an erasure
  // (migration 013, answered by the caller).
  await ctx.tx
    .append((q) => {
      for (const { envelope, jws, digest } of signed) {
        q.defer('insertOutboundMany', {
          id: envelope.id,
          peer: envelope.to,
          type: envelope.type,
          case_id: row.doc.id,
          case_version: row.doc.version,
          jws,
          digest,
        });
        q.audit({
          actor: { kind: 'user', id: req.actor },
          action: 'case.forwarded',
          subject: { case: row.doc.id, message: envelope.id, partner: envelope.to },
          detail: {
            version: row.doc.version,
            digest,
            tlp: req.handling.tlp,
            handlingCode: req.handling.code,
            purpose: req.handling.purpose,
            legalBasis: req.handling.legalBasis,
          },
        });
      }
    })
    .catch((err: unknown) => {
      if ((err as { code?: string }).code === 'IC409')
        throw new IcrosError('CASE_WITHDRAWN', `case ${req.caseId} was withdrawn and cannot be forwarded`);
      throw err;
    });
  return signed.map(({ envelope, digest }) => ({
    id: envelope.id,
    to: envelope.to,
    digest,
    state: 'queued' as const,
  }));
}
