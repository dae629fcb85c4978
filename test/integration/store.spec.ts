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
