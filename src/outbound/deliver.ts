/**
 * One delivery attempt of one outbox row, and what it leads to (DESIGN §4, §5), under the
 * partner's delivery policy (`partners[].delivery` over the global `delivery`):
 * - 200/201 with a receipt that verifies (partner key, our digest) → `delivered`;
 * - network errors, timeouts, 408, 429, 5xx, or a receipt that does not verify → `retrying`
 *   with capped exponential backoff and jitter, until the attempts since the last redrive
 *   reach `maxAttempts` or the message is older than `maxAgeSeconds` → `dead`;
 * - any other 4xx → `dead` at once, with the partner's problem stored.
 * The outcome, the attempt row and the audit event commit together; a death is logged at
 * `warn` and counted in `icros_messages_dead_total`.
 */
import type { AppendOnly } from '../audit/writer.js';
import type { Partner } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { verifyBatchReceipt } from '../envelope/batch-receipt.js';
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
  /** Attempts made before the last redrive. */
  attempts_base: number;
  created_at: Date;
}

export type Outcome = 'delivered' | 'retrying' | 'dead';

/** An attempt's outcome, and whether the partner answered at all (for the circuit breaker). */
export interface AttemptResult {
  outcome: Outcome;
  /** success: delivered; permanent: the partner answered and refused; transient: no usable answer. */
  kind: 'success' | 'permanent' | 'transient';
}

interface Failure {
  permanent: boolean;
  problem: { code: string; detail: string; status?: number; partnerProblem?: unknown };
}

export async function deliverOne(
  ctx: GatewayContext,
  partner: Partner,
  client: PartnerClient,
  row: OutboxRow,
): Promise<AttemptResult> {
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
    await ctx.tx.background.append((q) => {
      recordDelivered(q, partner, row, startedAt, httpStatus, {
        receiptId: receipt.id,
        jws: res.body,
        auditHead: receipt.auditHead,
        duplicate: res.status === 200,
      });
    });
    countDelivered(ctx, partner, row);
    return { outcome: 'delivered', kind: 'success' };
  } catch (err) {
    const failure = classify(err);
    const outcome = await recordFailure(ctx, partner, row, startedAt, httpStatus, failure);
    return { outcome, kind: failure.permanent ? 'permanent' : 'transient' };
  }
}

interface ReceiptFacts {
  receiptId: string;
  /**
   * The receipt as received, stored with the message; undefined for a batch receipt, which
   * the caller stores once for the whole batch (insertBatchReceipts).
   */
  jws: string | undefined;
  auditHead: { seq: number; hash: string };
  duplicate: boolean;
}

/** The writes of a delivery, inside the caller's transaction (bulk statements are deferred). */
function recordDelivered(
  q: AppendOnly,
  partner: Partner,
  row: OutboxRow,
  startedAt: Date,
  httpStatus: number | null,
  r: ReceiptFacts,
): void {
  if (r.jws !== undefined) {
    q.defer('insertReceipts', {
      direction: 'out',
      peer: partner.country,
      message_id: row.id,
      receipt_id: r.receiptId,
      jws: r.jws,
      message_digest: row.digest,
      audit_head_seq: r.auditHead.seq,
      audit_head_hash: r.auditHead.hash,
    });
  }
  q.defer('markDeliveredMany', { peer: partner.country, id: row.id });
  q.defer('insertAttempts', attemptRow(row, partner, startedAt, 'delivered', httpStatus, null));
  q.audit({
    actor: { kind: 'system', id: 'delivery' },
    action: 'message.delivered',
    subject: { message: row.id, partner: partner.country, ...(row.case_id ? { case: row.case_id } : {}) },
    detail: {
      attempt: row.attempts,
      receiptId: r.receiptId,
      partnerAuditHead: r.auditHead,
      duplicate: r.duplicate,
    },
  });
}

function countDelivered(ctx: GatewayContext, partner: Partner, row: OutboxRow): void {
  ctx.metrics.attempts.inc({ partner: partner.country, result: 'delivered' });
  ctx.metrics.delivered.inc({ partner: partner.country });
  ctx.metrics.receipts.inc({ direction: 'received', partner: partner.country });
  ctx.metrics.deliveryLatency.observe(
    { partner: partner.country },
    Math.max(0, (ctx.now().getTime() - new Date(row.created_at).getTime()) / 1000),
  );
}

/**
 * Several rows to one partner in one `POST /v1/messages:batch` (docs/protocol.md, Batches):
 * each message keeps its own signature; one batch receipt, verified against the digests we
 * computed, says what became of each. Accepted and duplicate items are delivered (together,
 * in one transaction); a rejected item fails like a single message answered with that
 * problem (permanent for a 4xx other than 408/429). When the request as a whole fails (no
 * answer, 5xx, a receipt that does not verify) every row fails transiently, as it would alone.
 */
export async function deliverBatch(
  ctx: GatewayContext,
  partner: Partner,
  client: PartnerClient,
  path: string,
  rows: OutboxRow[],
): Promise<{ results: AttemptResult[]; status: number | null }> {
  const startedAt = ctx.now();
  let httpStatus: number | null = null;
  let verified: Awaited<ReturnType<typeof verifyBatchReceipt>>;
  try {
    const res = await client.postBatch(
      path,
      rows.map((r) => r.jws),
    );
    httpStatus = res.status;
    if (res.status !== 200 && res.status !== 201) throw PartnerRejection.from(partner, res.status, res.body);
    verified = await verifyBatchReceipt(res.body, partner, {
      from: ctx.config.country,
      items: rows.map((r) => ({ messageId: r.id, messageDigest: r.digest })),
    });
    const { receipt } = verified;
    const delivered = rows.filter((_, i) => verified.results[i]!.status !== 'rejected');
    if (delivered.length) {
      await ctx.tx.background.append((q) => {
        for (const [i, row] of rows.entries()) {
          const result = verified.results[i]!;
          if (result.status === 'rejected') continue;
          recordDelivered(q, partner, row, startedAt, httpStatus, {
            receiptId: receipt.id,
            jws: undefined,
            auditHead: receipt.auditHead,
            duplicate: result.status === 'duplicate',
          });
        }
        // The batch receipt once, as the receipt of each delivered message.
        q.defer('insertBatchReceipts', {
          direction: 'out',
          peer: partner.country,
          receipt_id: receipt.id,
          jws: res.body,
          audit_head_seq: receipt.auditHead.seq,
          audit_head_hash: receipt.auditHead.hash,
          messages: delivered.map((row) => ({ message_id: row.id, message_digest: row.digest })),
        });
      });
      for (const row of delivered) countDelivered(ctx, partner, row);
    }
  } catch (err) {
    // The whole request failed: each row as if it had been sent alone. A batch request the
    // partner refuses as a whole (4xx) is not a verdict on the messages: transient.
    const failure = classify(err);
    const asTransient: Failure = { permanent: false, problem: failure.problem };
    const results = await Promise.all(
      rows.map(async (row) => ({
        outcome: await recordFailure(ctx, partner, row, startedAt, httpStatus, asTransient),
        kind: 'transient' as const,
      })),
    );
    return { results, status: httpStatus };
  }
  const results = await Promise.all(
    rows.map(async (row, i): Promise<AttemptResult> => {
      const result = verified.results[i]!;
      if (result.status !== 'rejected') return { outcome: 'delivered', kind: 'success' };
      const status = result.problem?.status ?? 0;
      const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
      const failure: Failure = {
        permanent,
        problem: {
          code: 'DELIVERY_REJECTED',
          detail: `${partner.country} rejected it in a batch: ${result.problem?.code ?? 'no code'}`,
          status,
          partnerProblem: result.problem ?? null,
        },
      };
      const outcome = await recordFailure(ctx, partner, row, startedAt, httpStatus, failure);
      return { outcome, kind: permanent ? 'permanent' : 'transient' };
    }),
  );
  return { results, status: httpStatus };
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
  const { maxAttempts, maxAgeSeconds, baseDelayMs, maxDelayMs } = partner.delivery;
  const used = row.attempts - (row.attempts_base ?? 0);
  const ageSeconds = (ctx.now().getTime() - new Date(row.created_at).getTime()) / 1000;
  const nextAt = new Date(ctx.now().getTime() + backoffDelay(used, baseDelayMs, maxDelayMs));
  // Dead now if the partner refused for good, the attempts ran out, or the next attempt
  // would come after the message's maximum age.
  const expired =
    !failure.permanent && ageSeconds + (nextAt.getTime() - ctx.now().getTime()) / 1000 > maxAgeSeconds;
  const outcome: Outcome = failure.permanent || used >= maxAttempts || expired ? 'dead' : 'retrying';
  const stored =
    expired && !failure.permanent && used < maxAttempts
      ? {
          code: 'MESSAGE_EXPIRED',
          detail: `not delivered within ${maxAgeSeconds} s of being queued; last attempt: ${failure.problem.code}: ${failure.problem.detail}`,
          last: failure.problem,
        }
      : failure.problem;
  const problem = JSON.stringify(stored);
  ctx.metrics.attempts.inc({
    partner: partner.country,
    result: failure.permanent ? 'permanent' : 'transient',
  });
  if (outcome === 'dead') ctx.metrics.dead.inc({ partner: partner.country, code: stored.code });
  await ctx.tx.background(async (q) => {
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
      detail: { attempt: row.attempts, code: stored.code, status: httpStatus },
    });
  });
  const line = {
    partner: partner.country,
    messageId: row.id,
    attempt: row.attempts,
    code: stored.code,
    status: httpStatus,
  };
  if (outcome === 'dead') log.warn('message dead', line);
  else log.info('delivery attempt failed; will retry', { ...line, nextAttemptAt: nextAt.toISOString() });
  return outcome;
}
