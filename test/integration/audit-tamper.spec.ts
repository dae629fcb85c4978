/**
 * Tampering with the audit log in the database, each way an insider could, and the first bad
 * seq the verifier reports (docs/audit.md). A chain of 100 events with signed checkpoints at
 * 50 and 100, on PGlite and on PostgreSQL.
 */
import path from 'node:path';
import { expect } from 'chai';
import { verifyStored } from '../../src/api/audit.js';
import { type AuditEvent, appendAudit, hashEvent, readAuditEvents } from '../../src/audit/append.js';
import { checkpointKey, writeCheckpoint } from '../../src/audit/checkpoint.js';
import { type GatewayConfig, loadConfig } from '../../src/config/load.js';
import type { GatewayContext } from '../../src/context.js';
import type { Db } from '../../src/store/db.js';
import { dbKinds, testDb } from '../helpers/db.js';
import { testPki } from '../helpers/federation.js';

describe('audit chain tampering is detected with the first bad seq', () => {
  let config: GatewayConfig;
  before(async () => {
    config = loadConfig(path.join(await testPki(), 'FR', 'gateway.json'), {}, {});
  });

  for (const kind of dbKinds()) {
    describe(`on ${kind}`, () => {
      let db: Db;
      beforeEach(async () => {
        ({ db } = await testDb(kind));
        for (let i = 1; i <= 100; i++) {
          await db.tx((q) =>
            appendAudit(q, [
              {
                actor: { kind: 'user', id: `analyst-${i % 3}` },
                action: 'case.read',
                subject: { case: crypto.randomUUID() },
                detail: { n: i },
              },
            ]),
          );
          if (i === 50 || i === 100) await db.tx((q) => writeCheckpoint(q, config.signing, 'FR', new Date()));
        }
      });
      afterEach(async () => db?.close());

      const verify = () =>
        verifyStored({ config, db } as GatewayContext, checkpointKey(config.signing.certPem));
      const events = async () => readAuditEvents(db, 0, 1000);
      /** Write an event back as the attacker wants it (optionally with a recomputed hash). */
      const put = (e: AuditEvent, rehash = false) => {
        const hash = rehash ? hashEvent(e) : e.hash;
        return db.query(
          'UPDATE audit_events SET at = $2, actor_id = $3, action = $4, subject = $5::jsonb, detail = $6::jsonb, prev_hash = $7, hash = $8 WHERE seq = $1',
          [
            e.seq,
            e.at,
            e.actor.id,
            e.action,
            JSON.stringify(e.subject),
            JSON.stringify(e.detail),
            e.prevHash,
            hash,
          ],
        );
      };

      it('verifies the untouched chain against both checkpoints', async () => {
        const r = await verify();
        expect(r).to.deep.include({ ok: true, checked: 100, firstBadSeq: null, checkpoints: 2 });
      });

      it('an edited field: at that seq', async () => {
        await db.query(`UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 37`);
        expect(await verify()).to.deep.include({ ok: false, firstBadSeq: 37, checked: 36 });
      });

      it('a deleted row: at the missing seq', async () => {
        await db.query('DELETE FROM audit_events WHERE seq = 42');
        const r = await verify();
        expect(r).to.deep.include({ ok: false, firstBadSeq: 42 });
        expect(r.reason).to.contain('missing');
      });

      it('an inserted row (later ones renumbered): at the first event that no longer verifies', async () => {
        const all = await events();
        await db.query('DELETE FROM audit_events WHERE seq > 60');
        const forged: AuditEvent = {
          ...all[60]!,
          seq: 61,
          actor: { kind: 'user', id: 'forger' },
          prevHash: all[59]!.hash,
        };
        forged.hash = hashEvent(forged);
        const shifted = [forged, ...all.slice(60).map((e) => ({ ...e, seq: e.seq + 1 }))];
        for (const e of shifted) {
          await db.query(
            'INSERT INTO audit_events (seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7::jsonb,$8,$9)',
            [
              e.seq,
              e.at,
              e.actor.kind,
              e.actor.id,
              e.action,
              JSON.stringify(e.subject),
              JSON.stringify(e.detail),
              e.prevHash,
              e.hash,
            ],
          );
        }
        // The forged event itself links up; the one after it was renumbered and no longer hashes.
        expect(await verify()).to.deep.include({ ok: false, firstBadSeq: 62 });
      });

      it('two rows swapped: at the first of them', async () => {
        const all = await events();
        await put({ ...all[70]!, seq: 70 });
        await put({ ...all[69]!, seq: 71 });
        expect(await verify()).to.deep.include({ ok: false, firstBadSeq: 70 });
      });

      it('a truncated tail: at the first missing seq, because a signed checkpoint names a later one', async () => {
        await db.query('DELETE FROM audit_events WHERE seq > 90');
        await db.query(
          `UPDATE audit_head SET seq = 90, hash = (SELECT hash FROM audit_events WHERE seq = 90)`,
        );
        const r = await verify();
        expect(r).to.deep.include({ ok: false, firstBadSeq: 91 });
        expect(r.reason).to.contain('tail was cut');
      });

      it('a rewritten tail with every hash recomputed (no signing key): found by the checkpoint', async () => {
        const all = await events();
        let prev = all[73]!.hash;
        for (const e of all.slice(74)) {
          const changed: AuditEvent =
            e.seq === 75 ? { ...e, actor: { kind: 'user', id: 'nobody' } } : { ...e };
          changed.prevHash = prev;
          changed.hash = hashEvent(changed);
          prev = changed.hash;
          await put(changed);
        }
        const r = await verify();
        // Hashes link up; only the signed checkpoint at 100 knows better. The rewrite lies in
        // 51…100 (after the last checkpoint that still matches): the first possible bad seq.
        expect(r).to.deep.include({ ok: false, firstBadSeq: 51 });
        expect(r.reason).to.contain('checkpoint of seq 100');
      });

      it('a checkpoint row changed without its signature: at that checkpoint', async () => {
        await db.query(`UPDATE audit_checkpoints SET hash = repeat('a', 64) WHERE seq = 50`);
        const r = await verify();
        expect(r).to.deep.include({ ok: false, firstBadSeq: 50 });
        expect(r.reason).to.contain('does not match its signature');
      });
    });
  }
});
