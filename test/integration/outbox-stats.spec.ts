/**
 * A new outbox gets statistics from the delivery maintenance, not a minute later from
 * autovacuum, so that the BullMQ workers' claim of given messages is planned by primary key.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Db } from '../../src/store/db.js';
import { sql } from '../../src/store/sql.js';
import { analyzeNewOutbox, startOutboxStats } from '../../src/store/stats.js';
import { dbKinds, testDb } from '../helpers/db.js';

async function queueRows(db: Db, n: number): Promise<string[]> {
  const rows = Array.from({ length: n }, () => ({
    id: randomUUID(),
    peer: 'DE',
    type: 'case.transfer',
    case_id: randomUUID(),
    case_version: 1,
    jws: 'x'.repeat(3000),
    digest: 'sha256:x',
  }));
  for (let i = 0; i < rows.length; i += 100)
    await db.query(sql('insertOutboundMany'), [JSON.stringify(rows.slice(i, i + 100))]);
  return rows.map((r) => r.id);
}

/** How many columns of `messages` (`column`, or any) PostgreSQL holds statistics on. */
async function statsOn(db: Db, column?: string): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'messages' AND ($1::text IS NULL OR attname = $1)",
    [column ?? null],
  );
  return row!.n;
}

/** The index scans of PostgreSQL's plan for claiming `ids`. */
async function claimPlanIndexes(db: Db, ids: string[]): Promise<string[]> {
  const [row] = await db.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${sql('claimMany')}`, [
    'DE',
    ids,
    60_000,
  ]);
  const found: string[] = [];
  const walk = (node: Record<string, unknown>) => {
    if (typeof node['Index Name'] === 'string' && node['Relation Name'] === 'messages')
      found.push(`${node.Alias}:${node['Index Name']}`);
    for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
  };
  walk((row!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
  return found;
}

describe('statistics for a new outbox (src/store/stats.ts)', () => {
  for (const kind of dbKinds()) {
    describe(`on ${kind}`, () => {
      let db: Db;
      beforeEach(async () => {
        ({ db } = await testDb(kind));
      });
      afterEach(async () => db?.close());

      if (kind === 'pglite') {
        it('does nothing on PGlite (no autovacuum to wait for, no such load)', async () => {
          await queueRows(db, 10);
          expect(await analyzeNewOutbox(db)).to.equal(true);
        });
        return;
      }

      it('is analyzed by every gateway process, delivery worker or not: startOutboxStats asks until it is done', async () => {
        const stats = startOutboxStats(db, 20);
        try {
          await queueRows(db, 600);
          const deadline = Date.now() + 10_000;
          let n = 0;
          while (n === 0 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50));
            n = await statsOn(db, 'id');
          }
          expect(n, 'statistics on messages.id').to.equal(1);
        } finally {
          await stats.stop();
        }
      });

      it('waits while the table is small, then analyzes it once, and the claim is planned by primary key', async () => {
        expect(await analyzeNewOutbox(db), 'empty').to.equal(false);
        const ids = await queueRows(db, 400);
        expect(await analyzeNewOutbox(db), '400 rows').to.equal(false);
        expect(await statsOn(db), 'no statistics yet').to.equal(0);

        ids.push(...(await queueRows(db, 200)));
        expect(await analyzeNewOutbox(db), '600 rows').to.equal(true);
        expect(await statsOn(db, 'id'), 'statistics on messages.id').to.equal(1);
        expect(await analyzeNewOutbox(db), 'nothing more owed').to.equal(true);

        const plan = await claimPlanIndexes(db, ids.slice(100, 104));
        expect(plan, JSON.stringify(plan)).to.include('c:messages_pkey');
        expect(
          plan.filter((p) => p.startsWith('c:')),
          'the claimed rows are found by key only',
        ).to.deep.equal(['c:messages_pkey']);
      });
    });
  }
});
