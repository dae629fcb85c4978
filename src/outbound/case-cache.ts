/**
 * The cases this process ingested or read lately, so that a forward of one signs it at once
 * instead of reading it first: the forward is then one round trip to the database (its
 * append) instead of two. An analyst ingests or opens a case and forwards it soon after.
 *
 * What is kept may be out of date: another replica can store a newer version, erase this one
 * or withdraw the case. The database decides, not this cache: the outbox insert refuses a
 * transfer of a version that is no longer the latest or was erased (migration 013, IC412)
 * or of a withdrawn case (migration 008, IC409), and the forward then reads the case again.
 *
 * A case is kept for at most `KEEP_MS` (10 minutes) from when it was ingested or read, and the
 * oldest go first once the documents held exceed `maxBytes` (their JSON length). A row is kept
 * as given, not copied: nothing changes a case row once read or stored.
 * A forward signs the canonical JSON of the case (RFC 8785), so a kept document and one read
 * back from jsonb give the same bytes.
 */
import type { CaseV1 } from '../schema/validators.js';
import type { HandledCase } from './handling.js';

/** A case version as `getCase` returns it, as far as a forward needs it. */
export type CachedCase = HandledCase & { version: number; doc: CaseV1; withdrawn_at: Date | null };

export interface CaseCache {
  get(id: string): CachedCase | undefined;
  /**
   * Keep `row` (a committed version), unless a later version of the case is kept already.
   * `bytes`: the document's JSON length, when the caller has it.
   */
  put(row: CachedCase, bytes?: number): void;
  drop(id: string): void;
  readonly bytes: number;
}

/** How long a case is kept: an analyst forwards soon after ingesting or opening it. */
export const KEEP_MS = 10 * 60_000;

export function createCaseCache(maxBytes: number, keepMs = KEEP_MS, now = Date.now): CaseCache {
  // In the order they were kept, so the oldest are at the front, first to go.
  const entries = new Map<string, { row: CachedCase; bytes: number; at: number }>();
  let held = 0;
  let sweeper: NodeJS.Timeout | undefined;
  const drop = (id: string) => {
    const e = entries.get(id);
    if (!e) return;
    entries.delete(id);
    held -= e.bytes;
  };
  /** Drop what was kept longer than `keepMs`; stop sweeping once nothing is kept. */
  const sweep = () => {
    for (const [id, e] of entries) {
      if (now() - e.at <= keepMs) break;
      drop(id);
    }
    if (entries.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  return {
    get(id) {
      const e = entries.get(id);
      if (!e) return undefined;
      if (now() - e.at <= keepMs) return e.row;
      drop(id);
      return undefined;
    },
    put(row, bytes) {
      if (maxBytes === 0) return;
      bytes ??= JSON.stringify(row.doc).length;
      if (bytes > maxBytes) return;
      const kept = entries.get(row.id);
      if (kept && kept.row.version > row.version) return;
      drop(row.id);
      entries.set(row.id, { row, bytes, at: now() });
      held += bytes;
      for (const [id] of entries) {
        if (held <= maxBytes) break;
        drop(id);
      }
      sweep();
      // Even when nothing else happens, a kept case leaves memory within about keepMs (an
      // erasure elsewhere must not linger here).
      sweeper ??= setInterval(sweep, Math.min(keepMs, 60_000)).unref();
    },
    drop,
    get bytes() {
      return held;
    },
  };
}
