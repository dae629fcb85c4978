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
 * Least recently used entries go first, once the documents held exceed `maxBytes` (their JSON
 * length). A row is kept as given, not copied: nothing changes a case row once read or stored.
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

export function createCaseCache(maxBytes: number): CaseCache {
  const entries = new Map<string, { row: CachedCase; bytes: number }>();
  let held = 0;
  const drop = (id: string) => {
    const e = entries.get(id);
    if (!e) return;
    entries.delete(id);
    held -= e.bytes;
  };
  return {
    get(id) {
      const e = entries.get(id);
      if (!e) return undefined;
      entries.delete(id); // to the back: most recently used
      entries.set(id, e);
      return e.row;
    },
    put(row, bytes) {
      if (maxBytes === 0) return;
      bytes ??= JSON.stringify(row.doc).length;
      if (bytes > maxBytes) return;
      const kept = entries.get(row.id);
      if (kept && kept.row.version > row.version) return;
      drop(row.id);
      entries.set(row.id, { row, bytes });
      held += bytes;
      for (const [id] of entries) {
        if (held <= maxBytes) break;
        drop(id);
      }
    },
    drop,
    get bytes() {
      return held;
    },
  };
}
