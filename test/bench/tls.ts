import https from 'node:https';
import { Agent } from 'undici';
import { listen } from '../../src/inbound/server.js';
import { createRootCa, issueTlsCert } from '../../src/pki/issue.js';
import { type Figure, ratePerSecond } from './report.js';

/** Raw mTLS keep-alive requests/s on loopback (TLS 1.3, client cert), a trivial handler. */
export async function benchTls(): Promise<Figure[]> {
  const ca = createRootCa({ commonName: 'bench CA' });
  const server = issueTlsCert(ca, { commonName: 'server', country: 'DE' });
  const client = issueTlsCert(ca, { commonName: 'client', country: 'FR' });
  const srv = https.createServer(
    {
      cert: server.certPem,
      key: server.keyPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (_req, res) => {
      _req.resume();
      _req.on('end', () => res.end('ok'));
    },
  );
  srv.keepAliveTimeout = 30_000;
  const port = await listen(srv, '127.0.0.1', 0);
  const agent = new Agent({
    connect: { cert: client.certPem, key: client.keyPem, ca: ca.certPem, minVersion: 'TLSv1.3' },
    connections: 16,
  });
  const body = 'x'.repeat(2000);
  const rate = await ratePerSecond(
    async () => {
      const r = await agent.request({ origin: `https://localhost:${port}`, path: '/', method: 'POST', body });
      await r.body.text();
    },
    3000,
    32,
  );
  await agent.close();
  srv.close();
  srv.closeAllConnections();
  return [{ name: 'mtls.keepalive.requests', value: rate, unit: 'req/s (client and server in one process)' }];
}
