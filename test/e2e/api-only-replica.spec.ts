/**
 * `icros gateway start --no-delivery` (docs/operations.md §9b), as a real child process: an
 * API-only replica queues what analysts forward and sends nothing; a replica on the same
 * PostgreSQL database delivers it. With PGlite (one process) the option is refused.
 */
import path from 'node:path';
import { expect } from 'chai';
import { type Gateway, startGateway } from '../../src/main.js';
import { icros } from '../helpers/cli.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { dbKinds, testDb } from '../helpers/db.js';
import { configFrom } from '../helpers/federation.js';
import {
  editJson,
  freePorts,
  type GatewayProcess,
  ownPki,
  startGatewayProcess,
  startOwn,
} from '../helpers/own-pki.js';
import { waitFor } from '../helpers/wait.js';

describe('e2e an API-only replica: icros gateway start --no-delivery', function () {
  this.timeout(120_000);

  it('is refused with PGlite, where no other process could deliver (exit 2, before listening)', async () => {
    const pki = await ownPki(['FR', 'DE']);
    // DATABASE_URL would override the file's PGlite directory (operations §5).
    const r = await icros(
      ['gateway', 'start', '--config', path.join(pki, 'FR', 'gateway.json'), '--no-delivery'],
      { DATABASE_URL: '' },
    );
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('--no-delivery needs a PostgreSQL database.url');
    expect(r.stdout).to.not.contain('gateway running');
  });

  if (!dbKinds().includes('postgres')) {
    it.skip('queues without sending, another replica sends: needs DATABASE_URL (PostgreSQL); CI sets it');
    return;
  }

  it('queues forwards without sending them; a delivering replica on the same database sends them', async () => {
    const pki = await ownPki(['FR', 'DE']);
    const ports = await freePorts(['FR', 'DE']);
    const de = await startOwn(pki, 'DE', ports, 'pglite');
    const { db, options } = await testDb('postgres');
    const { url, schema } = options as { url: string; schema: string };
    editJson(path.join(pki, 'FR', 'gateway.json'), (doc) => {
      doc.database = { url, schema };
      doc.delivery = { ...(doc.delivery as object), pollIntervalMs: 50 };
      doc.partners = (doc.partners as { country: string }[]).map((p) => ({
        ...p,
        url: `https://127.0.0.1:${ports.DE!.partner}`,
      }));
    });
    let child: GatewayProcess | undefined;
    let replica: Gateway | undefined;
    try {
      // DATABASE_URL would replace the file's database (operations §5).
      child = await startGatewayProcess(pki, 'FR', ports, {
        args: ['--no-delivery'],
        env: { DATABASE_URL: '' },
      });
      expect(child.stdout()).to.contain('delivery off (other replicas send)');

      const api = `http://127.0.0.1:${ports.FR!.admin}`;
      const t = token(pki, 'FR');
      const c = sampleCase();
      expect((await admin(api, t, 'POST', '/api/reports?format=icros-case', c)).status).to.be.oneOf([
        200, 201,
      ]);
      const fwd = await admin(api, t, 'POST', `/api/cases/${c.id}/forward`, {
        to: ['DE'],
        handling: HANDLING,
      });
      expect(fwd.status).to.equal(202);
      const id = fwd.json.messages[0].id as string;
      // Twenty of its own poll intervals later, nothing has been sent.
      await new Promise((r) => setTimeout(r, 1000));
      expect((await admin(api, t, 'GET', `/api/messages/${id}`)).json.state).to.equal('queued');

      const replicaPorts = await freePorts(['FR']);
      replica = await startGateway(
        configFrom(
          pki,
          'FR',
          { FR: replicaPorts.FR!, DE: ports.DE! },
          {
            database: { url, schema, memory: undefined, dir: undefined },
          },
        ),
        { db },
      );
      const delivered = await waitFor('the delivering replica to send it', async () => {
        const m = (await admin(api, t, 'GET', `/api/messages/${id}`)).json;
        return m.state === 'delivered' ? m : undefined;
      });
      expect(delivered.receipt).to.be.an('object');
      const atDe = await de.gw.ctx.db.query<{ id: string }>(
        "SELECT id FROM messages WHERE direction = 'in' AND peer = 'FR'",
      );
      expect(atDe.map((r) => r.id)).to.deep.equal([id]);
    } finally {
      if (child?.child.exitCode === null) {
        child.child.kill('SIGTERM');
        await child.exited;
      }
      await replica?.stop();
      await db.close();
      await de.close();
    }
  });
});
