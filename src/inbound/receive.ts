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
 *
 * Single messages (`POST /v1/messages`) and batches (`POST /v1/messages:batch`, batch.ts)
 * take the same path: `checkMessage` per message, then `settleMessages` for all of them
 * (duplicate check, then one group-committed transaction that stores the accepted ones).
 * They differ only in how they answer: a single message gets its own receipt or a problem,
 * a batch one receipt listing every message's outcome.
 */

import type { AuditHead } from '../audit/append.js';
import type { AuditedTx } from '../audit/writer.js';
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { messageDigest } from '../envelope/digest.js';
import { MESSAGE_TYP } from '../envelope/sign.js';
import { verifyJws } from '../envelope/verify.js';
import { IcrosError } from '../errors.js';
import { type EnvelopeV1, validateCase, validateEnvelope } from '../schema/validators.js';
import type { Queryable } from '../store/db.js';
import { sql } from '../store/sql.js';
import { storeMessages, writeReceipt } from './accept.js';
import { findInbound } from './dedup.js';

/** A message that passed every check that needs no database (steps 6–15). */
export interface Checked {
  jws: string;
  digest: string;
  envelope: EnvelopeV1;
  /**
   * A failed sentAt or case check (steps 17–18). Final only if the message is not a
   * duplicate: step 16 comes first, so a resend of a message we hold gets its receipt.
   */
  late?: IcrosError;
}

/** What became of one message. */
export type Outcome =
  | { status: 'accepted' | 'duplicate'; messageId: string; digest: string; envelope: EnvelopeV1 }
  | {
      status: 'rejected';
      /** Known once the envelope matched its schema. */
      messageId: string | null;
      digest: string;
      error: IcrosError;
    };

export type Rejected = Extract<Outcome, { status: 'rejected' }>;

/** Where a message stands before the storing transaction. */
export type Pending =
  | { kind: 'decided'; outcome: Outcome }
  | { kind: 'new'; checked: Checked }
  /** A later copy of an id that appears earlier in the same request (`leader` its index). */
  | { kind: 'follows'; leader: number; checked: Checked };

export interface SettleOptions<R> {
  /** The request path, for the audit events of rejections. */
  path: string;
  /**
   * Record rejections decided here in the audit log, in the storing transaction (batches).
   * A single message's rejection is thrown and audited by the app's error handler instead.
   */
  auditRejections: boolean;
  /** Go through the storing transaction even with nothing to store (a batch receipt needs the audit head). */
  alwaysStore: boolean;
  /**
   * Sign the answer once the audit head after this request's events is known, inside the
   * transaction, and store the receipt rows of the accepted messages (`outcomes` is final).
   */
  answer: (q: AuditedTx, head: AuditHead, outcomes: Outcome[]) => Promise<R>;
}

export interface Received {
  status: 200 | 201;
  receiptJws: string;
  envelope?: EnvelopeV1;
}

/** `POST /v1/messages`: one message; a rejection is thrown as its problem. */
export async function receiveMessage(ctx: GatewayContext, partner: Partner, body: Buffer): Promise<Received> {
  const checked = await checkMessage(ctx, partner, body.toString('latin1'));
  if ('status' in checked) throw checked.error;
  const { outcome, receiptJws } = await settleTogether(ctx, partner, checked);
  if (outcome.status === 'rejected') throw outcome.error;
  if (outcome.status === 'accepted' && receiptJws)
    return { status: 201, receiptJws, envelope: checked.envelope };
  // A duplicate (or a concurrent copy stored first): replay the receipt stored with it,
  // read after our transaction committed, so also when that copy committed in the same one.
  const previous = await findInbound(ctx.db, partner.country, checked.envelope.id);
  if (!previous) throw new IcrosError('INTERNAL', 'duplicate detected but the original message is missing');
  return replay(partner, checked.envelope, checked.digest, previous);
}

interface Waiting {
  checked: Checked;
  resolve: (r: { outcome: Outcome; receiptJws: string | undefined }) => void;
  reject: (err: unknown) => void;
}

/** Per gateway and partner: single messages waiting for the next storing transaction. */
const waitingFor = new WeakMap<GatewayContext, Map<string, { queue: Waiting[]; running: boolean }>>();

/**
 * Settle a single message together with the other single messages from the same partner that
 * arrive while a storing transaction runs: one insert statement for all of them instead of
 * one each (as a batch is stored), each still answered with its own receipt or problem.
 */
function settleTogether(
  ctx: GatewayContext,
  partner: Partner,
  checked: Checked,
): Promise<{ outcome: Outcome; receiptJws: string | undefined }> {
  const lanes = waitingFor.get(ctx) ?? new Map<string, { queue: Waiting[]; running: boolean }>();
  waitingFor.set(ctx, lanes);
  const lane = lanes.get(partner.country) ?? { queue: [], running: false };
  lanes.set(partner.country, lane);
  const settled = new Promise<{ outcome: Outcome; receiptJws: string | undefined }>((resolve, reject) =>
    lane.queue.push({ checked, resolve, reject }),
  );
  if (!lane.running) void drainLane(ctx, partner, lane);
  return settled;
}

async function drainLane(
  ctx: GatewayContext,
  partner: Partner,
  lane: { queue: Waiting[]; running: boolean },
): Promise<void> {
  lane.running = true;
  try {
    while (lane.queue.length > 0) {
      const group = lane.queue.splice(0, 256);
      try {
        const { outcomes, value } = await settleMessages(
          ctx,
          partner,
          group.map((w) => w.checked),
          {
            path: '/v1/messages',
            auditRejections: false,
            alwaysStore: false,
            answer: async (q, head, outcomes) =>
              Promise.all(
                outcomes.map((o) =>
                  o.status === 'accepted'
                    ? writeReceipt(ctx, q, partner, o.messageId, o.digest, head)
                    : undefined,
                ),
              ),
          },
        );
        for (const [i, w] of group.entries()) w.resolve({ outcome: outcomes[i]!, receiptJws: value?.[i] });
      } catch (err) {
        for (const w of group) w.reject(err);
      }
    }
  } finally {
    lane.running = false;
  }
}

/**
 * Steps 6–15 for one message, and steps 17–18 recorded as `late`. A failed check is
 * returned as a rejection (not thrown) so that one message of a batch cannot fail the
 * others; anything that is not an IcrosError (a bug) is thrown.
 */
export async function checkMessage(
  ctx: GatewayContext,
  partner: Partner,
  jws: string,
): Promise<Checked | Rejected> {
  const digest = messageDigest(jws);
  let envelope: EnvelopeV1 | undefined;
  try {
    const verified = await verifyJws(jws, partner, MESSAGE_TYP);
    const payload = verified.payload;
    if (!validateEnvelope(payload)) {
      throw new IcrosError('ENVELOPE_INVALID', 'the envelope does not match schemas/envelope/1.0.json', {
        errors: validateEnvelope.problems(payload),
      });
    }
    const bytes = verified.payloadBytes;
    if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('\\u0000')) refuseNul(payload);
    envelope = payload;
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
  } catch (err) {
    if (!(err instanceof IcrosError)) throw err;
    return { status: 'rejected', messageId: envelope?.id ?? null, digest, error: err };
  }
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
    if (!(err instanceof IcrosError)) throw err;
    return { jws, digest, envelope, late: err };
  }
  return { jws, digest, envelope };
}

/**
 * Step 16 and on for the messages of one request, in request order: the duplicate check,
 * then one group-committed transaction storing every message that passed (accept.ts).
 * Only the first copy of an id in one request is processed; a later one gets the first's
 * outcome (`duplicate` when it was accepted) if its bytes are the same, DUPLICATE_CONFLICT
 * otherwise.
 */
export async function settleMessages<R>(
  ctx: GatewayContext,
  partner: Partner,
  checks: (Checked | Rejected)[],
  opts: SettleOptions<R>,
): Promise<{ outcomes: Outcome[]; value: R | undefined }> {
  const firstOf = new Map<string, number>();
  const pending = checks.map((c, i): Pending => {
    if ('status' in c) return { kind: 'decided', outcome: c };
    const leader = firstOf.get(c.envelope.id);
    if (leader !== undefined) return { kind: 'follows', leader, checked: c };
    firstOf.set(c.envelope.id, i);
    return { kind: 'new', checked: c };
  });

  // The duplicate check comes first for a message that failed a late check: a resend of a
  // message we hold gets its receipt whatever its age. Looked up only for those (and, in
  // the transaction, on an insert conflict), which is the same outcome as looking every
  // message up first, one query cheaper on the common path.
  const late = pending.flatMap((p, i) => (p.kind === 'new' && p.checked.late ? [i] : []));
  if (late.length > 0) {
    const held = await heldDigests(
      ctx.db,
      partner.country,
      late.map((i) => (pending[i] as { checked: Checked }).checked.envelope.id),
    );
    for (const i of late) {
      const { checked } = pending[i] as { checked: Checked };
      const previous = held.get(checked.envelope.id);
      pending[i] = {
        kind: 'decided',
        outcome:
          previous === undefined
            ? rejection(checked, checked.late!)
            : againstHeld(partner, checked, previous),
      };
    }
  }

  if (!opts.alwaysStore && !pending.some((p) => p.kind === 'new')) {
    return { outcomes: resolveFollowers(pending, new Map()), value: undefined };
  }
  return storeMessages(ctx, partner, pending, opts);
}

/** A message whose id we already hold with `heldDigest`: a duplicate, or a conflict. */
export function againstHeld(partner: Partner, checked: Checked, heldDigest: string): Outcome {
  if (heldDigest === checked.digest) {
    return {
      status: 'duplicate',
      messageId: checked.envelope.id,
      digest: checked.digest,
      envelope: checked.envelope,
    };
  }
  return rejection(
    checked,
    new IcrosError(
      'DUPLICATE_CONFLICT',
      `message ${checked.envelope.id} from ${partner.country} was already received with digest ${heldDigest}`,
    ),
  );
}

export function rejection(checked: Checked, error: IcrosError): Rejected {
  return { status: 'rejected', messageId: checked.envelope.id, digest: checked.digest, error };
}

/**
 * Every outcome in request order, given the outcomes of the messages processed (`decided`
 * or stored: `known`); a later copy of an id takes its first copy's outcome.
 */
export function resolveFollowers(pending: Pending[], known: Map<number, Outcome>): Outcome[] {
  const outcomes: Outcome[] = [];
  for (const [i, p] of pending.entries()) {
    if (p.kind === 'decided') outcomes.push(p.outcome);
    else if (p.kind === 'new') {
      const o = known.get(i);
      if (!o)
        throw new IcrosError('INTERNAL', `message ${p.checked.envelope.id} was neither stored nor refused`);
      outcomes.push(o);
    } else {
      const first = outcomes[p.leader]!;
      const { checked } = p;
      if (first.digest !== checked.digest) {
        outcomes.push(
          rejection(
            checked,
            new IcrosError(
              'DUPLICATE_CONFLICT',
              `message ${checked.envelope.id} appears earlier in this request with digest ${first.digest}`,
            ),
          ),
        );
      } else if (first.status === 'rejected') {
        outcomes.push(rejection(checked, first.error));
      } else {
        outcomes.push({ ...first, status: 'duplicate' });
      }
    }
  }
  return outcomes;
}

/** The digests of the messages among `ids` already received from `peer`. */
export async function heldDigests(q: Queryable, peer: string, ids: string[]): Promise<Map<string, string>> {
  const rows = await q.query<{ id: string; digest: string }>(sql('findInboundDigests'), [
    peer,
    JSON.stringify(ids),
  ]);
  return new Map(rows.map((r) => [r.id, r.digest]));
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

/**
 * PostgreSQL cannot store U+0000 in `text` or `jsonb`: such a message would fail its insert
 * with a 500 on every resend (and, in a batch, take the others down with it). Refused as a
 * located schema problem instead. Only looked for when the payload has the escape at all.
 */
function refuseNul(envelope: EnvelopeV1): void {
  const at = nulAt(envelope, '');
  if (at === undefined) return;
  const inCase = at === '/case' || at.startsWith('/case/');
  throw new IcrosError(
    inCase ? 'CASE_INVALID' : 'ENVELOPE_INVALID',
    `the ${inCase ? 'case' : 'envelope'} contains the character U+0000, which this gateway cannot store`,
    { errors: [{ location: at || '/', rule: 'no-nul', message: 'must not contain the character U+0000' }] },
  );
}

function nulAt(value: unknown, pointer: string): string | undefined {
  if (typeof value === 'string') return value.includes('\0') ? pointer : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const here = `${pointer}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    if (k.includes('\0')) return here;
    const found = nulAt(v, here);
    if (found !== undefined) return found;
  }
  return undefined;
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
