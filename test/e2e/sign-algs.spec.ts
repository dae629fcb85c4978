/**
 * Real FR → DE exchanges with the other signing keys the dev PKI issues (the shared test
 * federation signs ES256): Ed25519 on both sides, and a federation whose countries were
 * issued by two runs of `icros pki init` with different `--sign-alg`, wired from the keys.
 */
import { expect } from 'chai';
import type { SigningAlg } from '../../src/config/load.js';
import type { Gateway } from '../../src/main.js';
import { initPki } from '../../src/pki/init.js';
import { sql } from '../../src/store/sql.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { freePorts, ownPki, startOwn } from '../helpers/own-pki.js';
import { waitFor } from '../helpers/wait.js';

const headerAlg = (jws: string): unknown =>
  JSON.parse(Buffer.from(jws.slice(0, jws.indexOf('.')), 'base64url').toString('utf8')).alg;

for (const { title, fr, de } of [
  { title: 'Ed25519 keys (EdDSA)', fr: 'EdDSA', de: 'EdDSA' },
  { title: 'FR on RSA (PS256), DE added later on P-256 (ES256)', fr: 'PS256', de: 'ES256' },
] as { title: string; fr: SigningAlg; de: SigningAlg }[]) {
  describe(`e2e exchange FR → DE with ${title} (pglite)`, () => {
    let pki: string;
    const gws: Record<string, Gateway> = {};
    const closers: (() => Promise<void>)[] = [];

    before(async () => {
      pki = await ownPki(['FR'], fr);
      await initPki({ dir: pki, countries: ['DE'], signAlg: de });
      const ports = await freePorts(['FR', 'DE']);
      for (const cc of ['FR', 'DE']) {
        const g = await startOwn(pki, cc, ports, 'pglite');
        gws[cc] = g.gw;
        closers.push(g.close);
      }
    });
    after(async () => {
      await Promise.all(closers.map((close) => close()));
    });

    it(`FR signs ${fr}; DE stores the case and signs its receipt ${de}, which FR verifies`, async () => {
      const frGw = gws.FR!;
      const deGw = gws.DE!;
      expect(frGw.ctx.config.signing.alg).to.equal(fr);
      expect(deGw.ctx.config.partners[0]!.algorithms).to.deep.equal([fr]);
      expect(frGw.ctx.config.partners[0]!.algorithms).to.deep.equal([de]);

      const c = sampleCase();
      const tok = token(pki, 'FR');
      const ingest = await admin(frGw.adminUrl, tok, 'POST', '/api/reports?format=icros-case', c);
      expect(ingest.status, JSON.stringify(ingest.json)).to.equal(201);
      const fwd = await admin(frGw.adminUrl, tok, 'POST', `/api/cases/${c.id}/forward`, {
        to: ['DE'],
        handling: HANDLING,
      });
      expect(fwd.status, JSON.stringify(fwd.json)).to.equal(202);
      const messageId = fwd.json.messages[0].id as string;
      // Delivered means FR verified DE's receipt with DE's registered certificate (DESIGN §4).
      const delivered = await waitFor(`message ${messageId} settled`, async () => {
        const m = await admin(frGw.adminUrl, tok, 'GET', `/api/messages/${messageId}`);
        return ['delivered', 'dead'].includes(m.json.state) ? m.json : undefined;
      });
      expect(delivered.state, JSON.stringify(delivered.last_error)).to.equal('delivered');

      const atDe = await admin(deGw.adminUrl, token(pki, 'DE'), 'GET', `/api/cases/${c.id}`);
      expect(atDe.status).to.equal(200);
      expect(atDe.json.doc).to.deep.equal(c);

      const [sent] = await frGw.ctx.db.query<{ jws: string }>(
        "SELECT jws FROM messages WHERE direction = 'out' AND peer = 'DE' AND id = $1",
        [messageId],
      );
      expect(headerAlg(sent!.jws)).to.equal(fr);
      const [receipt] = await frGw.ctx.db.query<{ jws: string }>(sql('getReceipt'), ['out', 'DE', messageId]);
      expect(headerAlg(receipt!.jws)).to.equal(de);
    });
  });
}
