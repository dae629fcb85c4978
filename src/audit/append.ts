/**
 * Appending to the tamper-evident audit chain (DESIGN §7). Each event's `hash` is the
 * lowercase hex SHA-256 of the RFC 8785 canonical JSON of the event without `hash`; its
 * `prevHash` is the previous event's hash (64 zeros for the first). Appends run inside the
 * caller's transaction, so an event exists exactly when the change it records does, and are
 * serialized by the row lock on `audit_head`; one call appends a batch in one statement.
 */

import { sha256Hex } from '../envelope/digest.js';
import { canonicalJson } from '../envelope/json.js';
import { IcrosError } from '../errors.js';
import type { Queryable } from '../store/db.js';
import { sql } from '../store/sql.js';

/** `operator`: someone at the gateway's console acting on its database directly (migration 007). */
export type ActorKind = 'user' | 'partner' | 'system';

export interface AuditInput {
  actor: { kind: ActorKind; id: string };
  action: string;
  /** Ids only: `case`, `message`, `partner`. */
  subject: { case?: string; message?: string; partner?: string };
  /** Ids, digests, codes and counts only — never personal data. */
  detail?: Record<string, unknown>;
}

export interface AuditEvent {
  seq: number;
  at: string;
  actor: { kind: ActorKind; id: string };
  action: string;
  subject: AuditInput['subject'];
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** The hash of an event: SHA-256 over the canonical JSON of every field but `hash`. */
export function hashEvent(e: Omit<AuditEvent, 'hash'>): string {
  return sha256Hex(eventJcs(e));
}

/**
 * RFC 8785 of the event without `hash`: `eventPieces` around prevHash and seq, which is what
 * JCS prescribes for a hex prevHash and an integer seq (a unit test compares it with
 * canonicalJson of the whole event); anything else (a tampered row) goes through the library.
 */
export function eventJcs(e: Omit<AuditEvent, 'hash'>): string {
  const { seq, at, actor, action, subject, detail, prevHash } = e;
  if (
    !Number.isSafeInteger(seq) ||
    typeof at !== 'string' ||
    typeof action !== 'string' ||
    typeof prevHash !== 'string' ||
    !/^[0-9a-f]*$/.test(prevHash)
  ) {
    return canonicalJson({ seq, at, actor, action, subject, detail, prevHash });
  }
  const { jcsHead, jcsTail } = eventPieces({ actor, action, subject, detail }, at);
  return `${jcsHead}${prevHash}","seq":${seq}${jcsTail}`;
}

/**
 * The canonical JSON of an event in the two pieces around what only the chain head decides:
 * `jcsHead` + prevHash + `","seq":` + seq + `jcsTail`. The top level is written by hand — its
 * members in JCS order (action, actor, at, detail, prevHash, seq, subject), strings as
 * JSON.stringify writes them, which is what JCS prescribes — and the nested objects by the
 * library, at about twice the speed verification needs for millions of events. PostgreSQL
 * joins the pieces when it appends in one statement (migration 009).
 */
export function eventPieces(input: AuditInput, at: string): { jcsHead: string; jcsTail: string } {
  return {
    jcsHead: `{"action":${JSON.stringify(input.action)},"actor":${canonicalJson(input.actor)},"at":${JSON.stringify(at)},"detail":${canonicalJson(input.detail ?? {})},"prevHash":"`,
    jcsTail: `,"subject":${canonicalJson(input.subject)}}`,
  };
}

/** Append `inputs` in order; returns the new head. Must run inside a transaction. */
export async function appendAudit(
  q: Queryable,
  inputs: AuditInput[],
  now: Date = new Date(),
): Promise<AuditHead> {
  const { head, written } = await beginAppend(q, inputs, now);
  await written;
  return head;
}

/**
 * Lock the head and chain `inputs` onto it: the new head is known as soon as the lock is
 * held, while `written` (one statement: the events and the head) is still on its way, so the
 * caller can sign what names the head meanwhile. Must run inside a transaction, and the
 * caller must await `written` before committing.
 */
export async function beginAppend(
  q: Queryable,
  inputs: AuditInput[],
  now: Date = new Date(),
): Promise<{ head: AuditHead; written: Promise<unknown> }> {
  const [head] = await q.query<AuditHead>(sql('lockAuditHead'));
  if (!head) throw new IcrosError('INTERNAL', 'audit_head row missing: migrations not applied');
  let { seq, hash } = { seq: Number(head.seq), hash: head.hash };
  if (inputs.length === 0) return { head: { seq, hash }, written: Promise.resolve() };
  const at = now.toISOString();
  const rows = inputs.map((input) => {
    const event = {
      seq: seq + 1,
      at,
      actor: input.actor,
      action: input.action,
      subject: input.subject,
      detail: input.detail ?? {},
      prevHash: hash,
    };
    seq = event.seq;
    hash = hashEvent(event);
    return {
      seq,
      at,
      actor_kind: input.actor.kind,
      actor_id: input.actor.id,
      action: input.action,
      subject: event.subject,
      detail: event.detail,
      prev_hash: event.prevHash,
      hash,
    };
  });
  const written = q.query(sql('appendAuditEvents'), [JSON.stringify(rows), seq, hash]);
  return { head: { seq, hash }, written };
}

/** The rows an append in one statement takes along, each list as its bulk statement takes it. */
export interface RowsAlong {
  /** Written before the head is locked, by statement name (those of migration 010). */
  before?: Record<string, Record<string, unknown>[]>;
  /** Outbox rows (insertOutboundMany), inserted after the lock. */
  outbox?: Record<string, unknown>[];
}

/**
 * Write the rows `along.before`, append `inputs`, then insert the outbox rows `along.outbox`,
 * in one statement with no transaction around it: PostgreSQL writes the rows, locks the head,
 * chains the events from their `eventPieces`, writes them and the head, and commits
 * (migrations 009 and 010). Returns the new head.
 */
export async function appendInOneStatement(
  q: Queryable,
  inputs: AuditInput[],
  along: RowsAlong = {},
  now: Date = new Date(),
): Promise<AuditHead> {
  const at = now.toISOString();
  const events = inputs.map((input) => ({
    ...eventPieces(input, at),
    at,
    actor_kind: input.actor.kind,
    actor_id: input.actor.id,
    action: input.action,
    subject: input.subject,
    detail: input.detail ?? {},
  }));
  const [head] = await q.query<AuditHead>(sql('appendAuditInOneStatement'), [
    along.before && Object.keys(along.before).length > 0 ? JSON.stringify(along.before) : null,
    JSON.stringify(events),
    along.outbox ? JSON.stringify(along.outbox) : null,
  ]);
  if (!head) throw new IcrosError('INTERNAL', 'the audit append returned no head');
  return { seq: Number(head.seq), hash: head.hash };
}

/** Read events after `afterSeq` in chain order, in the DESIGN §7 shape. */
export async function readAuditEvents(q: Queryable, afterSeq = 0, limit = 1000): Promise<AuditEvent[]> {
  const rows = await q.query<Record<string, unknown>>(sql('listAuditEvents'), [afterSeq, limit]);
  return rows.map(toEvent);
}

/** A row of `audit_events` in the DESIGN §7 shape. */
export function toEvent(r: Record<string, unknown>): AuditEvent {
  return {
    seq: Number(r.seq),
    at: r.at as string,
    actor: { kind: r.actor_kind as ActorKind, id: r.actor_id as string },
    action: r.action as string,
    subject: r.subject as AuditEvent['subject'],
    detail: r.detail as Record<string, unknown>,
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}

/** Recompute the chain over `events` (starting at `prev`); the first bad seq, or null. */
export function firstBrokenLink(
  events: AuditEvent[],
  prev: AuditHead = { seq: 0, hash: GENESIS_HASH },
): number | null {
  let expected = prev;
  for (const e of events) {
    if (e.seq !== expected.seq + 1 || e.prevHash !== expected.hash || hashEvent(e) !== e.hash) return e.seq;
    expected = { seq: e.seq, hash: e.hash };
  }
  return null;
}
