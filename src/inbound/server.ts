/**
 * The partner listener: HTTPS, TLS 1.3 only, client certificate required and chained to
 * our trust anchors at the handshake. Session tickets are off so a resumed session never
 * skips certificate validation; the partner is re-identified on every request anyway.
 */
import { constants } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { GatewayConfig } from '../config/load.js';
import { log } from '../log.js';

export function createPartnerServer(config: GatewayConfig, app: express.Express): https.Server {
  const server = https.createServer(
    {
      cert: config.tls.certPem,
      key: config.tls.keyPem,
      ca: config.tls.caPems,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      secureOptions: constants.SSL_OP_NO_TICKET,
      handshakeTimeout: config.tls.handshakeTimeoutMs,
    },
    app,
  );
  server.requestTimeout = config.limits.requestTimeoutMs;
  server.headersTimeout = Math.min(config.limits.requestTimeoutMs, 10_000);
  server.keepAliveTimeout = 30_000;
  server.on('tlsClientError', (err) => {
    log.warn('TLS handshake refused', { code: (err as NodeJS.ErrnoException).code, reason: err.message });
  });
  return server;
}

/** Listen and resolve with the bound port (0 in tests picks a free one). */
export function listen(server: import('node:net').Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
