/**
 * One delivery attempt of one outbox row, and what it leads to (DESIGN §4, §5):
 * - 200/201 with a receipt that verifies (partner key, our digest) → `delivered`;
 * - network errors, timeouts, 408, 429, 5xx, or a receipt that does not verify → `retrying`
 *   with capped exponential backoff, until attempts run out → `dead`;
 * - any other 4xx → `dead` at once, with the partner's problem stored.
 * The outcome, the attempt row and the audit event commit together.
 */
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { verifyReceipt } from '../envelope/receipt.js';
import { IcrosError } from '../errors.js';
import { log } from '../log.js';
import { sql } from '../store/sql.js';
import { backoffDelay } from './backoff.js';
import type { PartnerClient } from './client.js';

export interface OutboxRow {
  id: string;
  peer: string;
  type: string;
  case_id: string | null;
  jws: string;
  digest: string;
  attempts: number;
  created_at: Date;
}

export type Outcome = 'delivered' | 'retrying' | 'dead';

interface Failure {
  permanent: boolean;
  problem: { code: string; detail: string; status?: number; partnerProblem?: unknown };
}

export async function deliverOne(
  ctx: GatewayContext,
  partner: Partner,
  client: PartnerClient,
  row: OutboxRow,
): Promise<Outcome> {
  const startedAt = ctx.now();
  let httpStatus: number | null = null;
  try {
    const res = await client.postMessage(row.jws);
    httpStatus = res.status;
    if (res.status !== 200 && res.status !== 201) throw PartnerRejection.from(partner, res.status, res.body);
    const receipt = await verifyReceipt(res.body, partner, {
      messageId: row.id,
      messageDigest: row.digest,
      from: ctx.config.country,
    });
    await ctx.tx(async (q) => {
      q.defer('insertReceipts', {
        direction: 'out',
        peer: partner.country,
        message_id: row.id,
        receipt_id: receipt.id,
        jws: res.body,
        message_digest: receipt.messageDigest,
        audit_head_seq: receipt.auditHead.seq,
        audit_head_hash: receipt.auditHead.hash,
      });
      q.defer('markDeliveredMany', { peer: partner.country, id: row.id });
      q.defer('insertAttempts', attemptRow(row, partner, startedAt, 'delivered', httpStatus, null));
      q.audit({
        actor: { kind: 'system', id: 'delivery' },
        action: 'message.delivered',
        subject: {
          message: row.id,
          partner: partner.country,
          ...(row.case_id ? { case: row.case_id } : {}),
        },
        detail: {
          attempt: row.attempts,
          receiptId: receipt.id,
          partnerAuditHead: receipt.auditHead,
          duplicate: res.status === 200,
        },
      });
    });
    return 'delivered';
  } catch (err) {
    return recordFailure(ctx, partner, row, startedAt, httpStatus, classify(err));
  }
}

function attemptRow(
  row: OutboxRow,
  partner: Partner,
  startedAt: Date,
  outcome: 'delivered' | 'transient' | 'permanent',
  httpStatus: number | null,
  problem: Failure['problem'] | null,
) {
  return {
    message_id: row.id,
    peer: partner.country,
    attempt: row.attempts,
    started_at: startedAt.toISOString(),
    outcome,
    http_status: httpStatus,
    problem,
  };
}

/** The partner answered with an error status; its problem+json (or text) is kept. */
class PartnerRejection extends IcrosError {
  constructor(
    partner: Partner,
    readonly httpStatus: number,
    readonly partnerProblem: unknown,
  ) {
    const code = (partnerProblem as { code?: unknown } | null)?.code;
    super(
      'DELIVERY_REJECTED',
      `${partner.country} answered ${httpStatus}${typeof code === 'string' ? ` ${code}` : ''}`,
    );
  }

  static from(partner: Partner, status: number, body: string): PartnerRejection {
    let problem: unknown;
    try {
      problem = JSON.parse(body);
    } catch {
      problem = body.slice(0, 500);
    }
    return new PartnerRejection(partner, status, problem);
  }
}

function classify(err: unknown): Failure {
  const e =
    err instanceof IcrosError
      ? err
      : new IcrosError('DELIVERY_NETWORK_ERROR', String((err as Error)?.message ?? err));
  if (!(e instanceof PartnerRejection))
    return { permanent: false, problem: { code: e.code, detail: e.message } };
  const status = e.httpStatus;
  // DESIGN §4: 4xx other than 408/429 are permanent; everything else may succeed later,
  // including a forged or mismatched receipt (the partner's store is what counts).
  const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
  return {
    permanent,
    problem: { code: e.code, detail: e.message, status, partnerProblem: e.partnerProblem },
  };
}

async function recordFailure(
  ctx: GatewayContext,
  partner: Partner,
  row: OutboxRow,
  startedAt: Date,
  httpStatus: number | null,
  failure: Failure,
): Promise<Outcome> {
  const { maxAttempts, baseDelayMs, maxDelayMs } = ctx.config.delivery;
  const outcome: Outcome = failure.permanent || row.attempts >= maxAttempts ? 'dead' : 'retrying';
  const problem = JSON.stringify(failure.problem);
  const nextAt = new Date(ctx.now().getTime() + backoffDelay(row.attempts, baseDelayMs, maxDelayMs));
  await ctx.tx(async (q) => {
    if (outcome === 'dead') await q.query(sql('markDead'), [partner.country, row.id, problem]);
    else await q.query(sql('markRetrying'), [partner.country, row.id, nextAt, problem]);
    q.defer(
      'insertAttempts',
      attemptRow(
        row,
        partner,
        startedAt,
        failure.permanent ? 'permanent' : 'transient',
        httpStatus,
        failure.problem,
      ),
    );
    q.audit({
      actor: { kind: 'system', id: 'delivery' },
      action: outcome === 'dead' ? 'message.dead' : 'message.attempt.failed',
      subject: {
        message: row.id,
        partner: partner.country,
        ...(row.case_id ? { case: row.case_id } : {}),
      },
      detail: { attempt: row.attempts, code: failure.problem.code, status: httpStatus },
    });
  });
  const line = {
    partner: partner.country,
    messageId: row.id,
    attempt: row.attempts,
    code: failure.problem.code,
    status: httpStatus,
  };
  if (outcome === 'dead') log.warn('message dead', line);
  else log.info('delivery attempt failed; will retry', { ...line, nextAttemptAt: nextAt.toISOString() });
  return outcome;
}
