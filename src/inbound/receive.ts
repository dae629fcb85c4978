/**
 * The receiver rules of DESIGN §4 after transport checks: JWS header, kid and signature
 * (401) → envelope schema (422) → from/to (403) → duplicate (200 same receipt / 409) →
 * sentAt window (422) → case schema (422) → store + audit in one transaction → 201 with a
 * signed receipt.
 *
 * Deliberate change from the DESIGN §4 order (recorded in docs/protocol.md): the duplicate
 * check comes before the sentAt check, and the window is asymmetric — at most
 * `clockSkewSeconds` in the future, at most `maxMessageAgeSeconds` in the past. A sender
 * resends the same signed bytes on every retry, so a window of ±5 minutes would turn every
 * retry after a partner outage into a permanent rejection, and a retry of a message we hold
 * (whose receipt was lost) must get that receipt, not an error (DESIGN §8).
 */
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { messageDigest } from '../envelope/digest.js';
import { MESSAGE_TYP } from '../envelope/sign.js';
import { verifyJws } from '../envelope/verify.js';
import { IcrosError } from '../errors.js';
import { type EnvelopeV1, validateCase, validateEnvelope } from '../schema/validators.js';
import { acceptMessage } from './accept.js';
import { findInbound } from './dedup.js';

export interface Received {
  status: 200 | 201;
  receiptJws: string;
  envelope?: EnvelopeV1;
}

export async function receiveMessage(ctx: GatewayContext, partner: Partner, body: Buffer): Promise<Received> {
  const jws = body.toString('latin1');
  const verified = await verifyJws(jws, partner, MESSAGE_TYP);
  const envelope = verified.payload;
  if (!validateEnvelope(envelope)) {
    throw new IcrosError('ENVELOPE_INVALID', 'the envelope does not match schemas/envelope/1.0.json', {
      errors: validateEnvelope.problems(envelope),
    });
  }
  if (envelope.from !== partner.country) {
    throw new IcrosError(
      'SENDER_MISMATCH',
      `from is ${envelope.from} but the mTLS partner is ${partner.country}`,
    );
  }
  if (envelope.to !== ctx.config.country) {
    throw new IcrosError(
      'RECIPIENT_MISMATCH',
      `to is ${envelope.to} but this gateway is ${ctx.config.country}`,
    );
  }
  const digest = messageDigest(jws);
  try {
    checkSentAt(envelope.sentAt, ctx.now(), ctx.config.limits);
    if (envelope.case !== undefined && !validateCase(envelope.case)) {
      throw new IcrosError('CASE_INVALID', 'the case does not match schemas/icros-case/1.0.json', {
        errors: validateCase
          .problems(envelope.case)
          .map((p) => ({ ...p, location: `/case${p.location === '/' ? '' : p.location}` })),
      });
    }
  } catch (err) {
    // The duplicate check comes first in the contract: a resend of a message we hold gets
    // its receipt whatever its age. Looked up only here and on an insert conflict, which is
    // the same outcome as looking it up first, one query cheaper on the common path.
    const previous = await findInbound(ctx.db, partner.country, envelope.id);
    if (previous) return replay(partner, envelope, digest, previous);
    throw err;
  }
  const accepted = await acceptMessage(ctx, partner, envelope, jws, digest);
  if (accepted === 'duplicate') {
    const previous = await findInbound(ctx.db, partner.country, envelope.id);
    if (!previous) throw new IcrosError('INTERNAL', 'duplicate detected but the original message is missing');
    return replay(partner, envelope, digest, previous);
  }
  return { status: 201, receiptJws: accepted.receiptJws, envelope };
}

function replay(
  partner: Partner,
  envelope: EnvelopeV1,
  digest: string,
  previous: { digest: string; receiptJws: string | null },
): Received {
  if (previous.digest !== digest) {
    throw new IcrosError(
      'DUPLICATE_CONFLICT',
      `message ${envelope.id} from ${partner.country} was already received with digest ${previous.digest}`,
    );
  }
  // The receipt commits with the message (accept.ts), so a stored message always has one.
  if (!previous.receiptJws)
    throw new IcrosError('INTERNAL', `message ${envelope.id} is stored without its receipt`);
  return { status: 200, receiptJws: previous.receiptJws, envelope };
}

/** RFC 3339 `sentAt` no further ahead than the clock skew, no older than the max message age. */
function checkSentAt(
  sentAt: string,
  now: Date,
  limits: { clockSkewSeconds: number; maxMessageAgeSeconds: number },
): void {
  const t = Date.parse(sentAt);
  const offset = Math.round((t - now.getTime()) / 1000);
  if (!Number.isFinite(t) || offset > limits.clockSkewSeconds || -offset > limits.maxMessageAgeSeconds) {
    throw new IcrosError(
      'SENT_AT_OUT_OF_WINDOW',
      `sentAt ${sentAt} is ${offset}s from this gateway's clock; accepted: up to ${limits.clockSkewSeconds}s ahead and ${limits.maxMessageAgeSeconds}s behind`,
    );
  }
}
