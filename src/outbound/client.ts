/**
 * The mTLS client towards one partner: undici `Agent` with keep-alive, TLS 1.3, our
 * certificate, the federation trust anchors, and the server's certificate pinned to the
 * fingerprints registered for that partner (a certificate from the right CA but for
 * another gateway is refused).
 */
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Agent, errors } from 'undici';
import type { GatewayConfig, Partner } from '../config/load.js';
import { IcrosError } from '../errors.js';

export interface PartnerResponse {
  status: number;
  contentType: string;
  body: string;
}

export interface PartnerClient {
  postMessage(jws: string): Promise<PartnerResponse>;
  /** `POST <path>` (`/v1/messages:batch`) with `{"messages": [jws…]}`. */
  postBatch(path: string, jws: string[]): Promise<PartnerResponse>;
  /** `GET /v1/ping`: the circuit breaker's probe and the discovery of the partner's capabilities. */
  ping(): Promise<PartnerResponse>;
  close(): Promise<void>;
}

export function createPartnerClient(config: GatewayConfig, partner: Partner): PartnerClient {
  const timeout = partner.delivery.requestTimeoutMs;
  const agent = new Agent({
    connect: {
      cert: config.tls.certPem,
      key: config.tls.keyPem,
      ca: config.tls.caPems,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      timeout,
      checkServerIdentity: (host: string, cert: PeerCertificate) => {
        const err = checkServerIdentity(host, cert);
        if (err) return err;
        if (!partner.tlsFingerprints.includes(cert.fingerprint256)) {
          return new IcrosError(
            'DELIVERY_NETWORK_ERROR',
            `the server at ${partner.url} presented ${cert.fingerprint256}, not a certificate registered for ${partner.country}`,
          );
        }
        return undefined;
      },
    },
    keepAliveTimeout: 20_000,
    connections: Math.max(2, partner.delivery.concurrency),
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  const url = new URL(partner.url);
  const origin = url.origin;
  const base = url.pathname.replace(/\/+$/, '');
  const send = async (method: 'GET' | 'POST', p: string, body?: string, contentType?: string) => {
    try {
      const res = await agent.request({
        origin,
        path: `${base}${p}`,
        method,
        ...(contentType ? { headers: { 'content-type': contentType } } : {}),
        ...(body !== undefined ? { body } : {}),
      });
      const text = await res.body.text();
      return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), body: text };
    } catch (cause) {
      if (
        cause instanceof errors.HeadersTimeoutError ||
        cause instanceof errors.BodyTimeoutError ||
        cause instanceof errors.ConnectTimeoutError
      ) {
        throw new IcrosError('DELIVERY_TIMEOUT', `${partner.country} did not answer within ${timeout} ms`, {
          cause,
        });
      }
      // Our own pin check surfaces as the connect error: keep its sentence, not its code.
      const reason =
        cause instanceof IcrosError
          ? cause.message
          : ((cause as NodeJS.ErrnoException).code ?? (cause as Error).message);
      throw new IcrosError(
        'DELIVERY_NETWORK_ERROR',
        `cannot reach ${partner.country} at ${partner.url}: ${reason}`,
        { cause },
      );
    }
  };
  return {
    postMessage: (jws) => send('POST', '/v1/messages', jws, 'application/jose'),
    postBatch: (p, jws) => send('POST', p, JSON.stringify({ messages: jws }), 'application/json'),
    ping: () => send('GET', '/v1/ping'),
    close: () => agent.close(),
  };
}
