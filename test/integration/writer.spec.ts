import { expect } from 'chai';
import { firstBrokenLink, readAuditEvents } from '../../src/audit/append.js';
import { createAuditWriter } from '../../src/audit/writer.js';
import { IcrosError } from '../../src/errors.js';
import type { Db } from '../../src/store/db.js';
import { dbKinds, testDb } from '../helpers/db.js';

/** A delivery attempt row to DE for message …000m, numbered `attempt`. */
const attemptRow = (m: number, attempt: number) => ({
  message_id: `00000000-0000-7000-8000-00000000000${m}`,
  peer: 'DE',
  attempt,
  started_at: new Date().toISOString(),
  outcome: 'delivered',
  http_status: 201,
  problem: null,
});

for (const kind of dbKinds()) {
  describe(`audit writer (group commit) on ${kind}`, () => {
    let db: Db;
    before(async () => {
      ({ db } = await testDb(kind));
      await db.query('CREATE TABLE writer_test (n int PRIMARY KEY)');
    });
    after(async () => db?.close());

    it('commits concurrent writes together, each with its events, the chain intact', async () => {
      const write = createAuditWriter(db, () => new Date());
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, n) =>
          write.withHead(async (q) => {
            await q.query('INSERT INTO writer_test (n) VALUES ($1)', [n]);
            q.audit({ actor: { kind: 'system', id: 't' }, action: `w.${n}`, subject: {} });
            return n;
          }),
        ),
      );
      expect(results.map((r) => r.value)).to.deep.equal(Array.from({ length: 40 }, (_, n) => n));
      const events = await readAuditEvents(db, 0, 1000);
      expect(events.map((e) => e.action)).to.have.members(results.map((r) => `w.${r.value}`));
      expect(firstBrokenLink(events)).to.equal(null);
      // Every write's head includes its own event.
      for (const r of results) {
        const own = events.find((e) => e.action === `w.${r.value}`)!;
        expect(r.head.seq).to.be.at.least(own.seq);
      }
    });

    it('runs afterAppend hooks with the head covering the batch, and deferred rows once per batch', async () => {
      const write = createAuditWriter(db, () => new Date());
      const heads: number[] = [];
      const results = await Promise.all(
        [200, 201, 202].map((n) =>
          write.withHead(async (q) => {
            q.audit({ actor: { kind: 'system', id: 't' }, action: `h.${n}`, subject: {} });
            q.afterAppend(async (head) => {
              heads.push(head.seq);
            });
            q.defer('insertAttempts', attemptRow(0, n));
            return n;
          }),
        ),
      );
      const events = await readAuditEvents(db, 0, 10_000);
      for (const [i, r] of results.entries()) {
        const own = events.find((e) => e.action === `h.${r.value}`)!;
        expect(heads[i], 'hook head covers the write').to.be.at.least(own.seq);
        expect(r.head.seq).to.equal(heads[i]);
      }
      const rows = await db.query<{ attempt: number }>(
        "SELECT attempt FROM delivery_attempts WHERE peer = 'DE' AND attempt >= 200 ORDER BY attempt",
      );
      expect(rows.map((r) => r.attempt)).to.deep.equal([200, 201, 202]);
    });

    it('chains the writes of both lanes, interleaved, into one gap-free chain', async () => {
      const write = createAuditWriter(db, () => new Date());
      const before = (await readAuditEvents(db, 0, 10_000)).length;
      await Promise.all(
        Array.from({ length: 60 }, (_, n) =>
          (n % 2 ? write.background : write)(async (q) => {
            q.audit({ actor: { kind: 'system', id: 't' }, action: `lane.${n}`, subject: {} });
            q.defer('insertAttempts', attemptRow(1, 1000 + n));
          }),
        ),
      );
      const events = await readAuditEvents(db, 0, 10_000);
      expect(events.length).to.equal(before + 60);
      expect(events.map((e) => e.seq)).to.deep.equal(events.map((_, i) => i + 1));
      expect(firstBrokenLink(events)).to.equal(null);
      const counted = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM delivery_attempts WHERE peer = 'DE' AND attempt >= 1000",
      );
      expect(counted[0]?.n).to.equal(60);
    });

    if (kind === 'postgres') {
      // PGlite has one connection, so its transactions take turns whatever the lane.
      it('commits a write while a background batch is still running its statements', async () => {
        const write = createAuditWriter(db, () => new Date());
        const order: string[] = [];
        const slow = write.background(async (q) => {
          await q.query('SELECT pg_sleep(0.5)');
          q.audit({ actor: { kind: 'system', id: 't' }, action: 'lane.slow', subject: {} });
        });
        await new Promise((r) => setTimeout(r, 50));
        const quick = write(async (q) => {
          q.audit({ actor: { kind: 'user', id: 't' }, action: 'lane.quick', subject: {} });
        });
        await Promise.all([slow.then(() => order.push('background')), quick.then(() => order.push('main'))]);
        expect(order).to.deep.equal(['main', 'background']);
        const events = await readAuditEvents(db, 0, 10_000);
        expect(events.map((e) => e.action).slice(-2)).to.deep.equal(['lane.quick', 'lane.slow']);
        expect(firstBrokenLink(events)).to.equal(null);
      });
    }

    it('appends in one statement: any text chains as the gateway computes it, outbox rows go in', async () => {
      const write = createAuditWriter(db, () => new Date());
      // Text the canonical JSON escapes or must not escape: quotes, backslashes, controls, non-ASCII,
      // astral characters; numbers JCS writes in its own form.
      const texts = [
        'plain',
        'quote " back \\ slash',
        'tab\t nl\n bell\u0007 del\u007f',
        'été Ωμέγα 東京',
        '😀 \ud83c\udff3\ufe0f\u200d\ud83c\udf08',
        '</script>\u2028\u2029',
      ];
      const numbers = [0, -1, 0.1, 1e21, 1e-7, 123456789.125, Number.MAX_SAFE_INTEGER];
      const caseId = '00000000-0000-7000-8000-00000000c0de';
      const results = await Promise.all([
        ...texts.map((t, n) =>
          write.append((q) => {
            q.audit({
              actor: { kind: 'user', id: t },
              action: `one.${n}`,
              subject: { case: caseId, partner: t },
              detail: { text: t, numbers, nested: { [t]: [t, null, true, { z: 1, a: 2 }] } },
            });
            q.defer('insertOutboundMany', {
              id: `00000000-0000-7000-8000-0000000001${String(n).padStart(2, '0')}`,
              peer: 'DE',
              type: 'case.transfer',
              case_id: caseId,
              case_version: 1,
              jws: `jws.${n}`,
              digest: `sha256:${n}`,
            });
            return n;
          }),
        ),
        // A write with a transaction in the same moment: both kinds share the chain.
        write(async (q) => {
          await q.query('INSERT INTO writer_test (n) VALUES ($1)', [50]);
          q.audit({ actor: { kind: 'system', id: 't' }, action: 'one.tx', subject: {} });
          return 'tx';
        }),
      ]);
      expect(results).to.deep.equal([...texts.map((_, n) => n), 'tx']);
      const events = await readAuditEvents(db, 0, 10_000);
      expect(firstBrokenLink(events)).to.equal(null);
      for (const [n, t] of texts.entries()) {
        const own = events.find((e) => e.action === `one.${n}`)!;
        expect(own.actor.id).to.equal(t);
        expect(own.detail).to.deep.equal({
          text: t,
          numbers,
          nested: { [t]: [t, null, true, { z: 1, a: 2 }] },
        });
      }
      const head = await db.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_head');
      expect(head[0]).to.deep.equal({ seq: events.at(-1)!.seq, hash: events.at(-1)!.hash });
      // The outbox rows, each chained to the one before it of the same case and partner.
      const rows = await db.query<{ id: string; predecessor: string | null; jws: string }>(
        "SELECT id, predecessor, jws FROM messages WHERE case_id = $1 AND direction = 'out' ORDER BY seq",
        [caseId],
      );
      expect(rows).to.have.length(texts.length);
      expect(rows[0]!.predecessor).to.equal(null);
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.predecessor).to.equal(rows[i - 1]!.id);
    });

    it('commits a delivery outcome (receipt, delivered state, attempt, event) in one statement', async () => {
      const id = '00000000-0000-7000-8000-0000000003a1';
      await createAuditWriter(db, () => new Date()).append((q) =>
        q.defer('insertOutboundMany', { id, peer: 'DE', type: 'ping', jws: 'jws.3a1', digest: 'sha256:3a1' }),
      );
      await db.query("UPDATE messages SET state = 'sending' WHERE id = $1", [id]);
      // The writer sees a database that counts what it is asked and refuses transactions.
      const asked: string[] = [];
      const counting: Db = {
        ...db,
        query: (text, params) => {
          asked.push(text);
          return db.query(text, params);
        },
        tx: () => Promise.reject(new Error('no transaction expected')),
      };
      const write = createAuditWriter(counting, () => new Date());
      await write.background.append((q) => {
        q.defer('insertReceipts', {
          direction: 'out',
          peer: 'DE',
          message_id: id,
          receipt_id: '00000000-0000-7000-8000-0000000003b1',
          jws: 'receipt.3a1',
          message_digest: 'sha256:3a1',
          audit_head_seq: 7,
          audit_head_hash: 'f'.repeat(64),
        });
        q.defer('markDeliveredMany', { peer: 'DE', id });
        q.defer('insertAttempts', { ...attemptRow(1, 1), message_id: id });
        q.audit({
          actor: { kind: 'system', id: 'delivery' },
          action: 'message.delivered',
          subject: { message: id },
        });
      });
      expect(asked).to.have.length(1);
      const [message] = await db.query<{ state: string; receipt: string; attempts: number }>(
        `SELECT m.state, r.jws AS receipt, (SELECT count(*)::int FROM delivery_attempts a WHERE a.message_id = m.id) AS attempts
         FROM messages m JOIN receipts r ON r.message_id = m.id WHERE m.id = $1`,
        [id],
      );
      expect(message).to.deep.equal({ state: 'delivered', receipt: 'receipt.3a1', attempts: 1 });
      const events = await readAuditEvents(db, 0, 10_000);
      expect(events.at(-1)).to.deep.include({ action: 'message.delivered', subject: { message: id } });
      expect(firstBrokenLink(events)).to.equal(null);
    });

    it('refuses, in an append-only write, a deferred statement the one statement cannot take along', async () => {
      const write = createAuditWriter(db, () => new Date());
      const err = await write
        .append((q) => q.defer('insertCases', { id: '00000000-0000-7000-8000-0000000003c1' }))
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(IcrosError).with.property('code', 'INTERNAL');
      expect((err as Error).message).to.contain('insertCases');
    });

    it('fails only the failing append-only write of a batch; the others, their rows and events commit', async () => {
      const write = createAuditWriter(db, () => new Date());
      const before = (await readAuditEvents(db, 0, 10_000)).length;
      const outcomes = await Promise.allSettled(
        [0, 1, 2].map((i) =>
          write.append((q) => {
            q.audit({ actor: { kind: 'system', id: 't' }, action: `a.${i}`, subject: {} });
            q.defer('insertAttempts', attemptRow(2, 2000 + i));
            // Write 1's outbox row is not a valid row: its batch fails, the others are replayed.
            if (i === 1) q.defer('insertOutboundMany', { id: 'not-a-uuid', peer: 'DE', type: 'ping' });
            return i;
          }),
        ),
      );
      expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
      const events = await readAuditEvents(db, 0, 10_000);
      expect(events.length).to.equal(before + 2);
      expect(events.map((e) => e.action))
        .to.include.members(['a.0', 'a.2'])
        .and.not.include('a.1');
      expect(firstBrokenLink(events)).to.equal(null);
      const attempts = await db.query<{ attempt: number }>(
        "SELECT attempt FROM delivery_attempts WHERE peer = 'DE' AND attempt >= 2000 ORDER BY attempt",
      );
      expect(attempts.map((r) => r.attempt)).to.deep.equal([2000, 2002]);
    });

    it('fails only the write that failed; the others and their events commit', async () => {
      const write = createAuditWriter(db, () => new Date());
      const before = (await readAuditEvents(db, 0, 10_000)).length;
      const outcomes = await Promise.allSettled(
        [100, 101, 100, 102].map((n, i) =>
          write(async (q) => {
            q.audit({ actor: { kind: 'system', id: 't' }, action: `f.${i}`, subject: {} });
            if (i === 2) throw new IcrosError('REQUEST_INVALID', 'this write fails');
            await q.query('INSERT INTO writer_test (n) VALUES ($1)', [n]);
            return n;
          }),
        ),
      );
      expect(outcomes.map((o) => o.status)).to.deep.equal([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect(((outcomes[2] as PromiseRejectedResult).reason as IcrosError).code).to.equal('REQUEST_INVALID');
      const events = await readAuditEvents(db, 0, 10_000);
      expect(events.length).to.equal(before + 3);
      expect(events.map((e) => e.action)).to.not.include('f.2');
      expect(firstBrokenLink(events)).to.equal(null);
      const rows = await db.query<{ n: number }>('SELECT n FROM writer_test WHERE n >= 100 ORDER BY n');
      expect(rows.map((r) => r.n)).to.deep.equal([100, 101, 102]);
    });
  });
}
