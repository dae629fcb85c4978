/**
 * Reading the chain out: page by page from the database (constant memory for millions of
 * events), as JSON Lines that verify on their own (events in chain order, each signed
 * checkpoint as a `{"checkpoint": "<JWS>"}` line right after the event it names, and a fresh
 * checkpoint as the last line), or as CSV for people. Used by the API and by
 * `icros audit export --config`.
 */
import { stringify } from 'csv-stringify/sync';
import { neutralizeCell } from '../convert/parse.js';
import type { Queryable } from '../store/db.js';
import { sql } from '../store/sql.js';
import { type AuditEvent, readAuditEvents, toEvent } from './append.js';
import type { StoredCheckpoint } from './checkpoint.js';

const PAGE = 5000;

/** Every event after `afterSeq` (up to `uptoSeq` when given), in chain order, a page at a time. */
export async function* eventsFrom(q: Queryable, afterSeq = 0, uptoSeq?: number): AsyncGenerator<AuditEvent> {
  let after = afterSeq;
  for (;;) {
    const page =
      uptoSeq === undefined
        ? await readAuditEvents(q, after, PAGE)
        : (await q.query<Record<string, unknown>>(sql('listAuditEventsUpTo'), [after, uptoSeq, PAGE])).map(
            toEvent,
          );
    for (const e of page) yield e;
    if (page.length < PAGE) return;
    after = page.at(-1)!.seq;
  }
}

export async function allCheckpoints(q: Queryable): Promise<StoredCheckpoint[]> {
  const out: StoredCheckpoint[] = [];
  let after = 0;
  for (;;) {
    const page = await q.query<StoredCheckpoint>(sql('listCheckpoints'), [after, PAGE]);
    out.push(...page.map((c) => ({ ...c, seq: Number(c.seq) })));
    if (page.length < PAGE) return out;
    after = Number(page.at(-1)!.seq);
  }
}

/** The JSON Lines of an export up to `last` (a checkpoint written for it). */
export async function* jsonlLines(q: Queryable, last: StoredCheckpoint): AsyncGenerator<string> {
  const checkpoints = (await allCheckpoints(q)).filter((c) => c.seq <= last.seq);
  const bySeq = new Map(checkpoints.map((c) => [c.seq, c.jws]));
  for await (const e of eventsFrom(q, 0, last.seq)) {
    yield `${JSON.stringify(e)}\n`;
    const jws = bySeq.get(e.seq);
    if (jws) yield `${JSON.stringify({ checkpoint: jws })}\n`;
  }
}

export const CSV_COLUMNS = [
  'seq',
  'at',
  'actor_kind',
  'actor_id',
  'action',
  'case',
  'message',
  'partner',
  'detail',
  'prev_hash',
  'hash',
];

/** One CSV line of an event (subject split into columns, detail as JSON), formula-safe for spreadsheets. */
export function csvLine(e: AuditEvent): string {
  const cells: (string | number)[] = [
    e.seq,
    e.at,
    e.actor.kind,
    e.actor.id,
    e.action,
    e.subject.case ?? '',
    e.subject.message ?? '',
    e.subject.partner ?? '',
    JSON.stringify(e.detail),
    e.prevHash,
    e.hash,
  ];
  return stringify([cells.map((c) => (typeof c === 'string' ? neutralizeCell(c) : c))]);
}

export const CSV_HEADER = stringify([CSV_COLUMNS]);
