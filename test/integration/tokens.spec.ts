/**
 * The local token store (migration 007, src/api/tokens.ts) on PGlite and PostgreSQL: only the
 * hash is stored, names are unique among active tokens, revocation is final, and every
 * creation and revocation is audited without the token.
 */
import { expect } from 'chai';
import { createToken, findToken, hashToken, listTokens, revokeToken } from '../../src/api/tokens.js';
import { readAuditEvents } from '../../src/audit/append.js';
import { createAuditWriter } from '../../src/audit/writer.js';
import type { GatewayConfig } from '../../src/config/load.js';
import type { Db } from '../../src/store/db.js';
import { dbKinds, testDb } from '../helpers/db.js';

const config = {
  admin: { tokens: [{ name: 'dev-admin', role: 'admin', sha256: 'a'.repeat(64) }] },
} as unknown as GatewayConfig;
const operator = { kind: 'user' as const, id: 'operator:root@gateway-host' };
const boss = { kind: 'user' as const, id: 'boss' };

for (const kind of dbKinds()) {
  describe(`token store on ${kind}`, () => {
    let db: Db;
    let tx: ReturnType<typeof createAuditWriter>;
    before(async () => {
      ({ db } = await testDb(kind));
      tx = createAuditWriter(db, () => new Date());
    });
    after(async () => db?.close());

    it('issues a high-entropy token shown once and stores only its SHA-256', async () => {
      const t = await createToken(tx, config, { name: 'alice', role: 'analyst' }, operator);
      expect(t.token).to.match(/^icros_[A-Za-z0-9_-]{43}$/);
      expect(t).to.deep.include({ name: 'alice', role: 'analyst' });
      expect(Date.parse(t.createdAt)).to.be.closeTo(Date.now(), 60_000);
      const rows = await db.query<Record<string, unknown>>('SELECT * FROM api_tokens');
      expect(JSON.stringify(rows)).to.not.include(t.token.slice(6));
      expect(rows[0]!.sha256).to.equal(hashToken(t.token));
      expect(await findToken(db, hashToken(t.token))).to.deep.include({
        name: 'alice',
        role: 'analyst',
        revoked: false,
      });
      expect(await findToken(db, hashToken('icros_other'))).to.equal(undefined);
    });

    it('refuses a name held by an active token, local or in the config, and bad names or roles', async () => {
      const taken = await createToken(tx, config, { name: 'alice', role: 'admin' }, boss).catch((e) => e);
      expect(taken.code).to.equal('USER_NAME_TAKEN');
      const inConfig = await createToken(tx, config, { name: 'dev-admin', role: 'admin' }, boss).catch(
        (e) => e,
      );
      expect(inConfig.code).to.equal('USER_NAME_TAKEN');
      const bad = await createToken(tx, config, { name: ' x', role: 'root' }, boss).catch((e) => e);
      expect(bad.code).to.equal('REQUEST_INVALID');
      expect(bad.errors.map((e: { location: string }) => e.location)).to.deep.equal(['/name', '/role']);
    });

    it('revokes once: the hash is then found revoked, a second revoke is refused, the name can be reissued', async () => {
      const before = await createToken(tx, config, { name: 'bob', role: 'auditor' }, boss);
      const r = await revokeToken(tx, config, 'bob', boss);
      expect(r.name).to.equal('bob');
      expect((await findToken(db, hashToken(before.token)))?.revoked).to.equal(true);
      expect((await revokeToken(tx, config, 'bob', boss).catch((e) => e)).code).to.equal(
        'USER_ALREADY_REVOKED',
      );
      expect((await revokeToken(tx, config, 'nobody', boss).catch((e) => e)).code).to.equal('USER_NOT_FOUND');
      expect((await revokeToken(tx, config, 'dev-admin', boss).catch((e) => e)).code).to.equal(
        'USER_IN_CONFIG',
      );
      const again = await createToken(tx, config, { name: 'bob', role: 'auditor' }, boss);
      expect(again.token).to.not.equal(before.token);
      expect((await findToken(db, hashToken(again.token)))?.revoked).to.equal(false);
      expect((await findToken(db, hashToken(before.token)))?.revoked).to.equal(true);
    });

    it('lists config tokens then every local token with who created and revoked it', async () => {
      const users = await listTokens(db, config);
      expect(users.map((u) => [u.name, u.source, u.revokedAt === null])).to.deep.equal([
        ['dev-admin', 'config', true],
        ['alice', 'local', true],
        ['bob', 'local', false],
        ['bob', 'local', true],
      ]);
      expect(users[1]).to.include({ role: 'analyst', createdBy: operator.id });
      expect(users[0]).to.deep.equal({
        name: 'dev-admin',
        role: 'admin',
        source: 'config',
        createdAt: null,
        createdBy: null,
        revokedAt: null,
      });
    });

    it('audits user.created and user.revoked with actor, name and role, never the token', async () => {
      const events = (await readAuditEvents(db)).filter((e) => e.action.startsWith('user.'));
      expect(events.map((e) => [e.action, e.actor.kind, e.actor.id, e.detail])).to.deep.equal([
        ['user.created', 'user', operator.id, { name: 'alice', role: 'analyst' }],
        ['user.created', 'user', 'boss', { name: 'bob', role: 'auditor' }],
        ['user.revoked', 'user', 'boss', { name: 'bob', role: 'auditor' }],
        ['user.created', 'user', 'boss', { name: 'bob', role: 'auditor' }],
      ]);
    });
  });
}
