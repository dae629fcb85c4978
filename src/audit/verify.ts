/**
 * Verifying the audit chain (docs/audit.md states the algorithm exactly). Streams: events
 * come one at a time from the database or an export file, so millions verify in constant
 * memory. Checks, in order, for each event: its `seq` follows the previous one, its
 * `prevHash` is the previous hash (64 zeros before seq 1), its `hash` is the SHA-256 of its
 * canonical JSON without `hash`, and — where a signed checkpoint names its seq — its hash is
 * the checkpoint's. At the end: the log reaches the last checkpoint (no truncated tail) and,
 * when asked, ends exactly at a checkpoint (an export). The first failure is reported with
 * its seq and a reason; nothing after it is trusted.
 */
import { type AuditEvent, type AuditHead, GENESIS_HASH, hashEvent } from './append.js';

export interface VerifyResult {
  ok: boolean;
  /** Events checked before the first failure (all of them when ok). */
  checked: number;
  /** The last event that verified. */
  head: AuditHead | null;
  firstBadSeq: number | null;
  reason: string | null;
  /** Signed checkpoints matched against the events. */
  checkpoints: number;
}

export interface VerifyOptions {
  /** Checkpoints whose signatures were verified (verifyCheckpoint), any order. */
  checkpoints?: { seq: number; hash: string }[];
  /** An export must end exactly at a checkpoint (its last line is one). */
  mustEndAtCheckpoint?: boolean;
  /** Where the events start, when not at seq 1. */
  from?: AuditHead;
}

export async function verifyEvents(
  events: AsyncIterable<AuditEvent> | Iterable<AuditEvent>,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const marks = new Map((opts.checkpoints ?? []).map((c) => [Number(c.seq), c.hash]));
  const sorted = [...marks.keys()].sort((a, b) => a - b);
  let prev: AuditHead = opts.from ?? { seq: 0, hash: GENESIS_HASH };
  let checked = 0;
  let matched = 0;
  let lastGoodCheckpoint = opts.from?.seq ?? 0;
  const fail = (seq: number, reason: string): VerifyResult => ({
    ok: false,
    checked,
    head: checked ? prev : null,
    firstBadSeq: seq,
    reason,
    checkpoints: matched,
  });
  for await (const e of events) {
    const seq = Number(e.seq);
    if (seq !== prev.seq + 1) {
      return seq > prev.seq + 1
        ? fail(prev.seq + 1, `seq ${prev.seq + 1} is missing: seq ${seq} follows seq ${prev.seq}`)
        : fail(seq, `seq ${seq} is out of order or repeated: it follows seq ${prev.seq}`);
    }
    if (e.prevHash !== prev.hash) return fail(seq, `prevHash is not the hash of seq ${prev.seq}`);
    if (hashEvent(e) !== e.hash) return fail(seq, 'the hash does not match the event: a field was changed');
    const signed = marks.get(seq);
    if (signed !== undefined) {
      if (signed !== e.hash) {
        // The chain is consistent but not the one that was signed: events after the last
        // matching checkpoint were rewritten and re-hashed (without the signing key).
        return fail(
          lastGoodCheckpoint + 1,
          `the hash at seq ${seq} is not the one signed in the checkpoint of seq ${seq}: events ${lastGoodCheckpoint + 1}…${seq} were rewritten`,
        );
      }
      matched++;
      lastGoodCheckpoint = seq;
    }
    checked++;
    prev = { seq, hash: e.hash };
  }
  const beyond = sorted.filter((s) => s > prev.seq);
  if (beyond.length) {
    return fail(
      prev.seq + 1,
      `the log ends at seq ${prev.seq} but a signed checkpoint names seq ${beyond.at(-1)}: the tail was cut`,
    );
  }
  if (opts.mustEndAtCheckpoint && (sorted.length === 0 || sorted.at(-1) !== prev.seq)) {
    return fail(
      prev.seq + 1,
      sorted.length === 0
        ? 'the export has no signed checkpoint'
        : `the export ends at seq ${prev.seq}, not at its last signed checkpoint`,
    );
  }
  return {
    ok: true,
    checked,
    head: checked ? prev : null,
    firstBadSeq: null,
    reason: null,
    checkpoints: matched,
  };
}
