/**
 * Signed checkpoints of the audit chain (docs/audit.md). A checkpoint is the chain head
 * `{seq, hash}` at a moment, signed as a JWS (`typ: icros-checkpoint+jws`) with the gateway's
 * message-signing key. Hashes alone let anyone who can write the database rewrite the tail
 * and recompute every hash after it; a checkpoint cannot be recomputed without the key, so a
 * verifier holding the signing certificate detects such a rewrite up to the last checkpoint.
 *
 * The gateway writes one every `audit.checkpointEvery` events or `audit.checkpointIntervalMs`
 * (when the head moved), and at the end of every export.
 */
import { X509Certificate } from 'node:crypto';
import type { Partner, SigningAlg } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { CHECKPOINT_TYP, type Signer, signJws } from '../envelope/sign.js';
import { verifyJws } from '../envelope/verify.js';
import { IcrosError } from '../errors.js';
import { log } from '../log.js';
import type { Queryable } from '../store/db.js';
import { sql } from '../store/sql.js';
import type { AuditHead } from './append.js';

export interface CheckpointV1 {
  v: 1;
  type: 'audit.checkpoint';
  /** Country of the gateway whose chain this is. */
  gateway: string;
  seq: number;
  hash: string;
  at: string;
}

export interface StoredCheckpoint {
  seq: number;
  hash: string;
  at: string;
  jws: string;
}

/** Sign and store a checkpoint of the current head (none when the chain is empty or already checkpointed). */
export async function writeCheckpoint(
  q: Queryable,
  signer: Signer,
  gateway: string,
  now: Date,
): Promise<StoredCheckpoint | undefined> {
  const [head] = await q.query<AuditHead>(sql('getAuditHead'));
  if (!head || Number(head.seq) === 0) return undefined;
  const [last] = await q.query<StoredCheckpoint>(sql('latestCheckpoint'));
  if (last && Number(last.seq) === Number(head.seq)) return { ...last, seq: Number(last.seq) };
  const checkpoint: CheckpointV1 = {
    v: 1,
    type: 'audit.checkpoint',
    gateway,
    seq: Number(head.seq),
    hash: head.hash,
    at: now.toISOString(),
  };
  const jws = await signJws(checkpoint, signer, CHECKPOINT_TYP);
  await q.query(sql('insertCheckpoint'), [checkpoint.seq, checkpoint.hash, checkpoint.at, jws]);
  return { seq: checkpoint.seq, hash: checkpoint.hash, at: checkpoint.at, jws };
}

/** The key that signs a gateway's checkpoints, from its signing certificate (PEM). */
export function checkpointKey(certPem: string, gateway = 'this gateway'): Partner {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (cause) {
    throw new IcrosError('CHECKPOINT_INVALID', `the signing certificate of ${gateway} cannot be read`, {
      cause,
    });
  }
  const kid = Buffer.from(cert.fingerprint256.replaceAll(':', ''), 'hex').toString('base64url');
  return {
    country: gateway,
    agency: gateway,
    url: '',
    tlsFingerprints: [],
    signingKeys: [{ kid, cert, publicKey: cert.publicKey }],
    algorithms: ['PS256', 'ES256', 'EdDSA'] as SigningAlg[],
    ratePerSecond: 0,
    delivery: undefined as never,
  };
}

/** Verify a checkpoint JWS with `key` (checkpointKey); its payload, or CHECKPOINT_INVALID. */
export async function verifyCheckpoint(jws: string, key: Partner): Promise<CheckpointV1> {
  let payload: unknown;
  try {
    ({ payload } = await verifyJws(jws, key, CHECKPOINT_TYP));
  } catch (cause) {
    throw new IcrosError('CHECKPOINT_INVALID', `a checkpoint does not verify: ${(cause as Error).message}`, {
      cause,
    });
  }
  const c = payload as Partial<CheckpointV1>;
  if (
    c?.v !== 1 ||
    c.type !== 'audit.checkpoint' ||
    typeof c.gateway !== 'string' ||
    !Number.isInteger(c.seq) ||
    typeof c.hash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(c.hash) ||
    typeof c.at !== 'string'
  ) {
    throw new IcrosError('CHECKPOINT_INVALID', 'a checkpoint does not have the checkpoint v1 shape');
  }
  return c as CheckpointV1;
}

/**
 * The gateway's checkpoint timer: every `intervalMs` it looks at the head and signs a
 * checkpoint when `everyEvents` events were appended since the last one, or when the head
 * moved and `maxAgeMs` passed. Cheap when idle.
 */
export function startCheckpointer(
  ctx: GatewayContext,
  opts: { everyEvents: number; maxAgeMs: number; intervalMs: number },
): { stop(): Promise<void>; now(): Promise<StoredCheckpoint | undefined> } {
  let lastAt = Date.now();
  let running: Promise<unknown> | undefined;
  const run = async (force: boolean) => {
    const [head] = await ctx.db.query<AuditHead>(sql('getAuditHead'));
    const [last] = await ctx.db.query<StoredCheckpoint>(sql('latestCheckpoint'));
    const since = Number(head?.seq ?? 0) - Number(last?.seq ?? 0);
    if (since <= 0) return last ? { ...last, seq: Number(last.seq) } : undefined;
    if (!force && since < opts.everyEvents && Date.now() - lastAt < opts.maxAgeMs) return undefined;
    lastAt = Date.now();
    return ctx.db.tx((q) => writeCheckpoint(q, ctx.config.signing, ctx.config.country, ctx.now()));
  };
  const timer = setInterval(() => {
    running ??= run(false)
      .catch((err) =>
        log.error('cannot write an audit checkpoint; will try again', { err: (err as Error).message }),
      )
      .finally(() => {
        running = undefined;
      });
  }, opts.intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
    now: () => run(true),
  };
}
