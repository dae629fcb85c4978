/**
 * The outbox claim on a real database: ordering per case and partner, one partner at a
 * time, leases, redrive and expiry, exactly as the queue drivers use them.
 */
import { expect } from 'chai';
import type { Db } from '../../src/store/db.js';
import { sql } from '../../src/store/sql.js';
import { dbKinds, testDb } from '../helpers/db.js';

const LEASE = 60_000;

describe('outbox claims (ordering per case and partner, redrive, expiry)', () => {
  for (const kind of dbKinds()) {
    describe(`on ${kind}`, () => {
      let db: Db;
      before(async () => {
        ({ db } = await testDb(kind));
      });
      after(async () => db?.close());

      let n = 0;
      const queue = async (peer: string, caseId: string | null) => {
        const id = crypto.randomUUID();
        n += 1;
        await db.query(sql('insertOutbound'), [
          id,
          peer,
          'case.transfer',
          caseId,
          caseId ? 1 : null,
          `jws${n}`,
          `d${n}`,
        ]);
        return id;
      };
      const claim = async (peer: string, max = 10) =>
        (await db.query<{ id: string }>(sql('claimDue'), [peer, max, LEASE])).map((r) => r.id);
      const set = (id: string, state: string, extra = '') =>
        db.query(`UPDATE messages SET state = $2${extra} WHERE id = $1`, [id, state]);

      it('holds back a later message of a case until the earlier one is delivered', async () => {
        const c = crypto.randomUUID();
        const first = await queue('DE', c);
        const second = await queue('DE', c);
        const other = await queue('DE', crypto.randomUUID());
        const elsewhere = await queue('BE', c);
        expect(await claim('DE')).to.have.members([first, other]);
        // The first failed and waits for its retry: the second still may not overtake it.
        await set(first, 'retrying', ", next_attempt_at = now() + interval '1 hour', lease_until = NULL");
        expect(await claim('DE')).to.deep.equal([]);
        // Dead: the second waits for an operator (redrive), it never jumps the queue.
        await set(first, 'dead', ', next_attempt_at = NULL');
        expect(await claim('DE')).to.deep.equal([]);
        await set(first, 'delivered');
        expect(await claim('DE')).to.deep.equal([second]);
        // Ordering is per partner: BE's copy of the case never waited for DE's.
        expect(await claim('BE')).to.deep.equal([elsewhere]);
      });

      it('chains the rows of one bulk insert (the audit writer batch of concurrent forwards) per case and partner', async () => {
        const c = crypto.randomUUID();
        const other = crypto.randomUUID();
        const earlier = await queue('DE', c);
        const row = (peer: string, caseId: string) => ({
          id: crypto.randomUUID(),
          peer,
          type: 'case.transfer',
          case_id: caseId,
          case_version: 1,
          jws: 'jws',
          digest: 'd',
        });
        const rows = [row('DE', c), row('DE', other), row('DE', c), row('BE', c)];
        await db.query(sql('insertOutboundMany'), [JSON.stringify(rows)]);
        const pred = new Map(
          (
            await db.query<{ id: string; predecessor: string | null }>(
              'SELECT id, predecessor FROM messages WHERE id = ANY($1::uuid[])',
              [rows.map((r) => r.id)],
            )
          ).map((r) => [r.id, r.predecessor]),
        );
        expect(pred.get(rows[0]!.id)).to.equal(earlier);
        expect(pred.get(rows[2]!.id)).to.equal(rows[0]!.id);
        expect(pred.get(rows[1]!.id)).to.equal(null);
        expect(pred.get(rows[3]!.id)).to.equal(null);
        // Claimed strictly one after the other.
        expect(await claim('DE')).to.have.members([earlier, rows[1]!.id]);
        await set(earlier, 'delivered');
        expect(await claim('DE')).to.deep.equal([rows[0]!.id]);
        await set(rows[0]!.id, 'delivered');
        expect(await claim('DE')).to.deep.equal([rows[2]!.id]);
        expect(await claim('BE')).to.deep.equal([rows[3]!.id]);
      });

      it('refuses in the database to queue a transfer or update of a withdrawn case, not its withdrawal', async () => {
        const c = crypto.randomUUID();
        await db.query(
          `INSERT INTO cases (id, version, origin_country, doc, digest, withdrawn_at) VALUES ($1, 1, 'FR', '{}', 'd', now())`,
          [c],
        );
        const row = (type: string) => ({
          id: crypto.randomUUID(),
          peer: 'DE',
          type,
          case_id: c,
          case_version: 1,
          jws: 'jws',
          digest: 'd',
        });
        for (const type of ['case.transfer', 'case.update']) {
          const err = await db.query(sql('insertOutboundMany'), [JSON.stringify([row(type)])]).then(
            () => undefined,
            (e: { code?: string }) => e,
          );
          expect(err?.code, type).to.equal('IC409');
        }
        await db.query(sql('insertOutboundMany'), [JSON.stringify([row('case.withdraw')])]);
        const queued = await db.query("SELECT type FROM messages WHERE case_id = $1 AND direction = 'out'", [
          c,
        ]);
        expect(queued).to.deep.equal([{ type: 'case.withdraw' }]);
      });

      it('claims only due rows of the partner asked, at most as many as asked, each once', async () => {
        const ids = [await queue('ES', null), await queue('ES', null), await queue('ES', null)];
        const [a, b] = await Promise.all([claim('ES', 2), claim('ES', 2)]);
        expect([...a!, ...b!]).to.have.members(ids);
        expect(await claim('ES')).to.deep.equal([]);
        // A sender that died: its lease runs out and the row is owed again.
        await db.query("UPDATE messages SET lease_until = now() - interval '1 second' WHERE id = $1", [
          ids[0],
        ]);
        expect(await claim('ES')).to.deep.equal([ids[0]]);
      });

      it('redrives a dead message with a fresh attempt budget, and only a dead one', async () => {
        const id = await queue('IT', null);
        await claim('IT');
        await claim('IT').then(() =>
          db.query("UPDATE messages SET lease_until = now() - interval '1 s' WHERE id = $1", [id]),
        );
        await claim('IT');
        await set(id, 'dead', ', lease_until = NULL, next_attempt_at = NULL');
        const [r] = await db.query<{ attempts: number }>(sql('redriveOne'), [id]);
        expect(r!.attempts).to.equal(2);
        const [row] = await db.query<{ state: string; attempts_base: number }>(
          'SELECT state, attempts_base FROM messages WHERE id = $1',
          [id],
        );
        expect(row).to.deep.equal({ state: 'queued', attempts_base: 2 });
        expect(await db.query(sql('redriveOne'), [id])).to.deep.equal([]);
        expect(await claim('IT')).to.deep.equal([id]);
      });

      it('claims in order and reads only what it takes and skips, whatever the backlog (migration 012)', async () => {
        const row = (peer: string, caseId = crypto.randomUUID()) => ({
          id: crypto.randomUUID(),
          peer,
          type: 'case.transfer',
          case_id: caseId,
          case_version: 1,
          jws: 'x'.repeat(3000),
          digest: 'sha256:x',
        });
        // 1,000 messages to PL, delivered: what a hash of every delivered message would read.
        const pl = Array.from({ length: 1000 }, () => row('PL'));
        for (let i = 0; i < pl.length; i += 250)
          await db.query(sql('insertOutboundMany'), [JSON.stringify(pl.slice(i, i + 250))]);
        await db.query("UPDATE messages SET state = 'delivered' WHERE peer = 'PL'");
        // At the head of NL's queue, five second messages whose first one waits for its retry.
        const blocked: string[] = [];
        for (let i = 0; i < 5; i++) {
          const [first, second] = [row('NL'), row('NL')];
          second.case_id = first.case_id;
          await db.query(sql('insertOutboundMany'), [JSON.stringify([first, second])]);
          await set(first.id, 'retrying', ", next_attempt_at = now() + interval '1 hour'");
          blocked.push(second.id);
        }
        // Then a backlog of 2,000.
        const backlog = Array.from({ length: 2000 }, () => row('NL'));
        for (let i = 0; i < backlog.length; i += 250)
          await db.query(sql('insertOutboundMany'), [JSON.stringify(backlog.slice(i, i + 250))]);
        await db.query('ANALYZE messages');

        const [plan] = await db.query<{ 'QUERY PLAN': { Plan: Record<string, unknown> }[] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${sql('claimDue')}`,
          ['NL', 10, LEASE],
        );
        // Rows read by the claim's own scans (c: the candidates, e: their predecessors); the
        // update's join (m) finds the ten rows it was given.
        const read: Record<string, number> = {};
        const walk = (node: Record<string, unknown>) => {
          const alias = String(node.Alias ?? '');
          if (node['Relation Name'] === 'messages' && /^[ce](_\d+)?$/.test(alias)) {
            const key = alias[0]!;
            read[key] = (read[key] ?? 0) + Number(node['Actual Rows']) * Number(node['Actual Loops']);
          }
          for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
        };
        walk(plan!['QUERY PLAN'][0]!.Plan);
        expect(read.c, JSON.stringify(read)).to.be.at.most(20);
        expect(read.e ?? 0, JSON.stringify(read)).to.be.at.most(5);

        const [taken] = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM messages WHERE peer = 'NL' AND state = 'sending'",
        );
        expect(taken?.n, 'the EXPLAIN ANALYZE claimed ten').to.equal(10);
        // The next claim goes on in outbox order, past the blocked rows.
        const next = await claim('NL', 20);
        expect(next).to.deep.equal(backlog.slice(10, 30).map((r) => r.id));
        expect(next).to.not.include.members(blocked);
      });

      it('expires waiting messages past the maximum age, not those being sent', async () => {
        const old = await queue('PT', null);
        const sending = await queue('PT', null);
        const young = await queue('PT', null);
        await db.query(
          "UPDATE messages SET created_at = now() - interval '2 hours' WHERE id = ANY($1::uuid[])",
          [[old, sending]],
        );
        await set(sending, 'sending', ", lease_until = now() + interval '1 minute'");
        const expired = await db.query<{ id: string }>(sql('expireOld'), [
          'PT',
          3600,
          '{"code":"MESSAGE_EXPIRED"}',
        ]);
        expect(expired.map((r) => r.id)).to.deep.equal([old]);
        const states = await db.query<{ id: string; state: string }>(
          'SELECT id, state FROM messages WHERE id = ANY($1::uuid[])',
          [[old, sending, young]],
        );
        expect(Object.fromEntries(states.map((s) => [s.id, s.state]))).to.deep.equal({
          [old]: 'dead',
          [sending]: 'sending',
          [young]: 'queued',
        });
      });
    });
  }
});
