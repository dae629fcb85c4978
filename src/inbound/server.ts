/**
 * The partner listener: HTTPS, TLS 1.3 only, client certificate required and chained to
 * our trust anchors at the handshake. Session tickets are off so a resumed session never
 * skips certificate validation; the partner is re-identified on every request anyway.
 */
import { constants } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type express from 'express';
import type { GatewayConfig } from '../config/load.js';
import { log } from '../log.js';

/**
 * The secure-context options of the partner listener. `setSecureContext` on a certificate
 * reload (reload.ts) replaces the whole context, so the TLS 1.3-only and no-ticket settings
 * must come along with the new certificate and key, not only at start.
 */
export function secureContextOptions(tls: GatewayConfig['tls']): SecureContextOptions {
  return {
    cert: tls.certPem,
    key: tls.keyPem,
    ca: tls.caPems,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    secureOptions: constants.SSL_OP_NO_TICKET,
    // Key exchange only over groups of at least 128-bit strength: OpenSSL's default list
    // also offers ffdhe2048 (112 bits), which `npm run security` flags.
    ecdhCurve: 'X25519:P-256:P-384:P-521:X448',
  };
}

export function createPartnerServer(config: GatewayConfig, app: express.Express): https.Server {
  const server = https.createServer(
    {
      ...secureContextOptions(config.tls),
      requestCert: true,
      rejectUnauthorized: true,
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
