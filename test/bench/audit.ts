/**
 * Audit log throughput on PostgreSQL (DATABASE_URL) or PGlite: appends per second one event
 * per transaction (sequential) and group-committed (many writers at once, the way the gateway
 * appends), verification events per second, and export MB per second.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { appendAudit } from '../../src/audit/append.js';
import { eventsFrom, jsonlLines } from '../../src/audit/export.js';
import { verifyEvents } from '../../src/audit/verify.js';
import { createAuditWriter } from '../../src/audit/writer.js';
import type { Db } from '../../src/store/db.js';
import { testDb } from '../helpers/db.js';
import type { Figure } from './report.js';

const event = (i: number) => ({
  actor: { kind: 'user' as const, id: `analyst-${i % 7}` },
  action: 'case.read',
  subject: { case: '0193a0b0-0000-7000-8000-000000000000' },
  detail: { version: 1, n: i },
});

export async function benchAudit(
  kind: 'pglite' | 'postgres',
  n: number,
  say: (l: string) => void,
): Promise<Figure[]> {
  const { db } = await testDb(kind);
  try {
    say(`audit on ${kind}: ${Math.min(n, 2000)} appends, one per transaction …`);
    const single = Math.min(n, 2000);
    let t0 = performance.now();
    for (let i = 0; i < single; i++) await db.tx((q) => appendAudit(q, [event(i)]));
    const singleRate = single / ((performance.now() - t0) / 1000);

    say(`audit on ${kind}: ${n} appends from 64 concurrent writers, group-committed …`);
    const tx = createAuditWriter(db, () => new Date());
    t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < n) {
          const i = next++;
          await tx(async (q) => q.audit(event(i)));
        }
      }),
    );
    const batchedRate = n / ((performance.now() - t0) / 1000);

    const total = single + n;
    say(`audit on ${kind}: verifying ${total} events …`);
    t0 = performance.now();
    const result = await verifyEvents(eventsFrom(db));
    const verifyRate = result.checked / ((performance.now() - t0) / 1000);
    if (!result.ok) throw new Error(`chain does not verify: ${result.reason}`);

    say(`audit on ${kind}: exporting ${total} events as JSON Lines …`);
    const mb = await exportMb(db, total);
    return [
      {
        name: `audit.${kind}.appends_per_s_single`,
        value: Math.round(singleRate),
        unit: 'events/s (1 per transaction)',
      },
      {
        name: `audit.${kind}.appends_per_s_batched`,
        value: Math.round(batchedRate),
        unit: 'events/s (64 writers, group commit)',
        ...(kind === 'postgres' ? { limit: '>= 5000' } : {}),
      },
      {
        name: `audit.${kind}.verify_events_per_s`,
        value: Math.round(verifyRate),
        unit: 'events/s',
        limit: '>= 100000',
      },
      { name: `audit.${kind}.export_mb_per_s`, value: Math.round(mb * 10) / 10, unit: 'MB/s (JSON Lines)' },
    ];
  } finally {
    await db.close();
  }
}

async function exportMb(db: Db, upto: number): Promise<number> {
  let bytes = 0;
  const t0 = performance.now();
  await pipeline(
    Readable.from(jsonlLines(db, { seq: upto, hash: '', at: '', jws: '' })),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        done();
      },
    }),
  );
  return bytes / 1024 / 1024 / ((performance.now() - t0) / 1000);
}
