import { expect } from 'chai';
import { appendAudit, firstBrokenLink, GENESIS_HASH, readAuditEvents } from '../../src/audit/append.js';
import type { Db } from '../../src/store/db.js';
import { listMigrations } from '../../src/store/migrate.js';
import { sql, statementNames } from '../../src/store/sql.js';
import { dbKinds, testDb } from '../helpers/db.js';

describe('store', () => {
  it('every migration file is numbered and has a header comment saying what it does', () => {
    const ms = listMigrations();
    expect(ms.map((m) => m.version)).to.deep.equal(ms.map((_, i) => i + 1));
    for (const m of ms) expect(m.sql.startsWith(`-- ${m.name.replace('.sql', '')}:`), m.name).to.equal(true);
  });

  it('names every SQL statement once', () => {
    expect(statementNames()).to.include.members([
      'insertOutbound',
      'claimDue',
      'lockAuditHead',
      'acceptInbound',
      'insertReceipts',
    ]);
    expect(() => sql('noSuchStatement')).to.throw(/no SQL statement named/);
  });

  for (const kind of dbKinds()) {
    describe(`on ${kind}`, () => {
      let db: Db;
      before(async () => {
        ({ db } = await testDb(kind));
      });
      after(async () => db?.close());

      it('appends audit events as a hash chain starting from 64 zeros', async () => {
        const head = await db.tx((q) =>
          appendAudit(q, [
            { actor: { kind: 'system', id: 'test' }, action: 'test.one', subject: {} },
            {
              actor: { kind: 'user', id: 'alice' },
              action: 'test.two',
              subject: { case: 'c1' },
              detail: { n: 2 },
            },
          ]),
        );
        expect(head.seq).to.equal(2);
        const events = await readAuditEvents(db);
        expect(events).to.have.length(2);
        expect(events[0]!.prevHash).to.equal(GENESIS_HASH);
        expect(events[1]!.prevHash).to.equal(events[0]!.hash);
        expect(events[1]!.hash).to.equal(head.hash);
        expect(firstBrokenLink(events)).to.equal(null);
        const tampered = events.map((e) => (e.seq === 2 ? { ...e, detail: { n: 3 } } : e));
        expect(firstBrokenLink(tampered)).to.equal(2);
      });

      it('serializes concurrent appends on the chain head', async () => {
        const before = (await readAuditEvents(db)).length;
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            db.tx((q) =>
              appendAudit(q, [{ actor: { kind: 'system', id: 't' }, action: `c.${i}`, subject: {} }]),
            ),
          ),
        );
        const events = await readAuditEvents(db);
        expect(events).to.have.length(before + 20);
        expect(firstBrokenLink(events)).to.equal(null);
      });

      it('compresses JWS, case documents and batch receipts with lz4 where the server has it (migration 011)', async () => {
        const hasLz4 = await db
          .tx(async (q) => {
            await q.query("SET LOCAL default_toast_compression = 'lz4'");
            return true;
          })
          .catch(() => false);
        if (kind === 'postgres') expect(hasLz4, 'the test PostgreSQL is built with lz4').to.equal(true);
        const cols = await db.query<{ col: string; c: string }>(
          `SELECT attrelid::regclass::text || '.' || attname AS col, attcompression::text AS c FROM pg_attribute
           WHERE (attrelid, attname) IN (('messages'::regclass, 'jws'), ('cases'::regclass, 'doc'),
                                         ('batch_receipts'::regclass, 'jws')) ORDER BY 1`,
        );
        const want = hasLz4 ? 'l' : '';
        expect(cols.map((r) => `${r.col}=${r.c}`)).to.deep.equal(
          ['batch_receipts.jws', 'cases.doc', 'messages.jws'].map((c) => `${c}=${want}`),
        );
        // A large compressible value is stored compressed with that method, and reads back whole.
        const jws = 'eyJhbGciOiJFUzI1NiJ9.'.repeat(400);
        const id = '0192f000-0000-7000-8000-00000000c011';
        await db.query(
          "INSERT INTO messages (id, direction, peer, type, jws, digest, state) VALUES ($1, 'in', 'XX', 't', $2, 'd', 'accepted')",
          [id, jws],
        );
        const [row] = await db.query<{ method: string; back: string }>(
          "SELECT pg_column_compression(jws) AS method, jws AS back FROM messages WHERE direction = 'in' AND peer = 'XX' AND id = $1",
          [id],
        );
        expect(row?.method).to.equal(hasLz4 ? 'lz4' : 'pglz');
        expect(row?.back).to.equal(jws);
      });

      it('rolls back the audit event with the transaction that failed', async () => {
        const before = (await readAuditEvents(db)).length;
        let failed = false;
        try {
          await db.tx(async (q) => {
            await appendAudit(q, [
              { actor: { kind: 'system', id: 't' }, action: 'rolled.back', subject: {} },
            ]);
            await q.query('SELECT * FROM no_such_table');
          });
        } catch {
          failed = true;
        }
        expect(failed).to.equal(true);
        expect(await readAuditEvents(db)).to.have.length(before);
      });
    });
  }
});
