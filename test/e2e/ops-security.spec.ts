/**
 * The admin-listener half of `npm run security`, fast enough for every test run: security
 * headers on every answer and no stack trace or internal detail in provoked errors. The same
 * checks run against a bare Express app that leaks, to show they can fail.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { token } from '../helpers/clients.js';
import { type Federation, startFederation } from '../helpers/federation.js';
import { adminChecks } from '../security/admin-checks.js';

describe('security: admin listener headers and error bodies', () => {
  let fed: Federation;
  before(async () => {
    fed = await startFederation('pglite', ['FR']);
  });
  after(async () => fed?.stop());

  it('sends the security headers and answers every provoked error as a clean problem', async () => {
    const rows = await adminChecks(fed.gateways.FR!.adminUrl, token(fed.pki, 'FR'));
    expect(rows.length).to.be.greaterThan(10);
    for (const r of rows) expect(r.ok, `${r.check}: got ${r.got}`).to.equal(true);
  });

  it('an undecodable path parameter is a 400 REQUEST_INVALID, not a 500', async () => {
    const res = await fetch(`${fed.gateways.FR!.adminUrl}/api/cases/%E0%A4%A`, {
      headers: { authorization: `Bearer ${token(fed.pki, 'FR')}` },
    });
    expect(res.status).to.equal(400);
    expect(((await res.json()) as { code: string }).code).to.equal('REQUEST_INVALID');
  });

  it('fails an app without helmet whose errors leak their stack', async () => {
    const app = express();
    app.use(() => {
      throw new TypeError('boom');
    });
    // The classic mistake: the error, stack and all, as the answer.
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ message: err.message, stack: err.stack });
    });
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const rows = await adminChecks(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'x');
      expect(rows.find((r) => r.check === 'admin header referrer-policy')!.ok).to.equal(false);
      expect(rows.find((r) => r.check === 'admin header x-powered-by')!.ok).to.equal(false);
      const errors = rows.filter((r) => r.check.startsWith('admin error'));
      expect(errors.every((r) => r.ok === false)).to.equal(true);
      expect(errors.some((r) => r.got.includes('leaks'))).to.equal(true);
    } finally {
      server.close();
    }
  });
});
