/**
 * A forward of a case this gateway just ingested or read signs it without reading it again
 * (outbound/case-cache.ts): one statement to the database. What it kept may be out of date,
 * because another replica stored a newer version, erased or withdrew the case; the database
 * refuses the outbox row then (migrations 008 and 013) and the forward reads the case again.
 * "Another replica" here is a write straight to the database, which this gateway's cache
 * does not see.
 */
import { expect } from 'chai';
import type { GatewayContext } from '../../src/context.js';
import { forwardCase } from '../../src/outbound/forward.js';
import { sql } from '../../src/store/sql.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { dbKinds } from '../helpers/db.js';
import { type Federation, startFederation } from '../helpers/federation.js';

for (const kind of dbKinds()) {
  describe(`e2e forward of a kept case (${kind})`, () => {
    let fed: Federation;
    let ctx: GatewayContext;
    let statements: string[] = [];
    /** Called after each statement this gateway runs, with its text. */
    let afterStatement: (text: string) => Promise<void> = async () => {};

    before(async () => {
      fed = await startFederation(kind, ['FR', 'DE'], { FR: { noWorker: true } });
      ctx = fed.gateways.FR!.ctx;
      const query = ctx.db.query.bind(ctx.db);
      ctx.db.query = async (text, params) => {
        statements.push(text);
        const rows = await query(text, params);
        await afterStatement(text);
        return rows as never;
      };
    });
    afterEach(() => {
      afterStatement = async () => {};
    });
    after(async () => fed?.stop());

    const call = (method: string, p: string, body?: unknown) =>
      admin(fed.gateways.FR!.adminUrl, token(fed.pki, 'FR', 'analyst'), method, p, body);

    async function ingest(overrides: Record<string, unknown> = {}) {
      const c = sampleCase(overrides);
      const r = await call('POST', '/api/reports', c);
      expect(r.status, JSON.stringify(r.json)).to.equal(201);
      return c as { id: string; version: number };
    }

    const forward = (id: string) =>
      forwardCase(ctx, { caseId: id, to: ['DE'], handling: HANDLING, actor: 'test' });

    /** Another replica stores version `version` of case `id`. */
    const storeVersion = (id: string, version: number) =>
      query(sql('insertCase'), [
        id,
        version,
        'FR',
        null,
        null,
        JSON.stringify(sampleCase({ id, version })),
        `sha256:${'0'.repeat(64)}`,
        null,
      ]);
    const query = (text: string, params: unknown[]) => {
      const run = ctx.db.query(text, params);
      statements.pop(); // not the gateway's own
      return run;
    };

    async function queued(id: string) {
      return ctx.db.query<{ case_version: number; jws: string }>(
        "SELECT case_version, jws FROM messages WHERE direction = 'out' AND case_id = $1 ORDER BY seq",
        [id],
      );
    }
    /** icros_case_cache_total by result, and icros_case_cache_bytes, as a scrape gives them. */
    async function cacheMetrics() {
      const counts = (await ctx.metrics.caseCache.get()).values;
      const by = (result: string) => counts.find((v) => v.labels.result === result)?.value ?? 0;
      const gauge = await ctx.metrics.registry.getSingleMetric('icros_case_cache_bytes')!.get();
      return { hit: by('hit'), miss: by('miss'), stale: by('stale'), bytes: gauge.values[0]!.value };
    }
    /** [hit, miss, stale] counted between two readings of cacheMetrics(). */
    const since = (a: CacheCounts, b: CacheCounts) => [b.hit - a.hit, b.miss - a.miss, b.stale - a.stale];
    type CacheCounts = Awaited<ReturnType<typeof cacheMetrics>>;
    /** The case reads among the statements since `statements` was last emptied. */
    const reads = () => statements.filter((s) => s === sql('getCase'));
    const payloadOf = (jws: string) => JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString());

    it('forwards a case it just ingested in one statement, and one it just read for an analyst too', async () => {
      const before = await cacheMetrics();
      const c = await ingest();
      statements = [];
      await forward(c.id);
      expect(statements, 'the statements of a forward of a kept case').to.have.length(1);
      expect(statements[0]).to.not.equal(sql('getCase'));

      ctx.cases.drop(c.id);
      statements = [];
      await forward(c.id);
      expect(reads(), 'a case not kept is read').to.have.length(1);

      ctx.cases.drop(c.id);
      expect((await call('GET', `/api/cases/${c.id}`)).status).to.equal(200);
      statements = [];
      await forward(c.id);
      expect(reads(), 'a case the analyst just read is kept').to.have.length(0);
      const now = await cacheMetrics();
      expect(since(before, now)).to.deep.equal([2, 1, 0]);
      expect(now.bytes).to.equal(ctx.cases.bytes).and.to.be.above(1000);

      // The kept document and the one read back from jsonb sign the same case bytes.
      const [a, b, third] = (await queued(c.id)).map((m) => payloadOf(m.jws).case);
      expect(JSON.stringify(a)).to.equal(JSON.stringify(b));
      expect(third).to.deep.equal(a);
    });

    it('signs the newer version another replica stored since, and audits one forward', async () => {
      const c = await ingest();
      await storeVersion(c.id, c.version + 1);
      const before = await cacheMetrics();
      const [m] = await forward(c.id);
      const now = await cacheMetrics();
      expect(since(before, now)).to.deep.equal([1, 1, 1]);
      const rows = await queued(c.id);
      expect(rows.map((r) => r.case_version)).to.deep.equal([c.version + 1]);
      expect(payloadOf(rows[0]!.jws).case.version).to.equal(c.version + 1);
      const events = await ctx.db.query<{ detail: { version: number } }>(
        "SELECT detail FROM audit_events WHERE action = 'case.forwarded' AND subject->>'case' = $1",
        [c.id],
      );
      expect(events.map((e) => e.detail.version)).to.deep.equal([c.version + 1]);
      expect(m!.to).to.equal('DE');
      expect(ctx.cases.get(c.id)?.version, 'what it read is kept').to.equal(c.version + 1);
    });

    it('refuses a case another replica erased or withdrew since, and queues nothing', async () => {
      const erased = await ingest();
      await query(sql('eraseCase'), [erased.id, erased.version]);
      const e = await forward(erased.id).catch((err: unknown) => err as { code: string });
      expect(e).to.include({ code: 'CASE_ERASED' });

      const withdrawn = await ingest();
      await query(sql('withdrawLocalCase'), [withdrawn.id]);
      const w = await forward(withdrawn.id).catch((err: unknown) => err as { code: string });
      expect(w).to.include({ code: 'CASE_WITHDRAWN' });
      expect(await queued(erased.id)).to.have.length(0);
      expect(await queued(withdrawn.id)).to.have.length(0);
    });

    it('gives up with CASE_CHANGED (409) when each read of the case is overtaken by a newer version', async () => {
      const c = await ingest();
      let version = c.version;
      await storeVersion(c.id, ++version);
      afterStatement = async (text) => {
        if (text === sql('getCase')) await storeVersion(c.id, ++version);
      };
      const err = await forward(c.id).catch((e: unknown) => e as { code: string; status: number });
      expect(err).to.include({ code: 'CASE_CHANGED', status: 409 });
      expect(version, 'the kept copy, then two reads').to.equal(c.version + 3);
      expect(await queued(c.id)).to.have.length(0);
    });
  });
}
