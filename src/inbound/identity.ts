/**
 * Who is calling: the partner whose registered TLS fingerprint matches the peer
 * certificate of this request's connection. Looked up on every request (not only at the
 * handshake: a resumed session skips certificate validation), and never by parsing
 * certificate fields (CVE-2021-44531/44532).
 */
import type { TLSSocket } from 'node:tls';
import type { GatewayConfig, Partner } from '../config/load.js';
import { IcrosError } from '../errors.js';

export interface PartnerRegistry {
  byFingerprint(fp: string): Partner | undefined;
  byCountry(country: string): Partner | undefined;
}

export function partnerRegistry(config: GatewayConfig): PartnerRegistry {
  const fps = new Map<string, Partner>();
  for (const p of config.partners) for (const fp of p.tlsFingerprints) fps.set(fp, p);
  const countries = new Map(config.partners.map((p) => [p.country, p]));
  return { byFingerprint: (fp) => fps.get(fp), byCountry: (cc) => countries.get(cc) };
}

/** The authenticated partner of this socket, or PARTNER_UNKNOWN. */
export function identify(
  socket: TLSSocket,
  registry: PartnerRegistry,
): { partner: Partner; fingerprint: string } {
  const fingerprint = peerFingerprint(socket);
  if (!fingerprint)
    throw new IcrosError('PARTNER_UNKNOWN', 'no verified client certificate on this connection');
  const partner = registry.byFingerprint(fingerprint);
  if (!partner) {
    throw new IcrosError(
      'PARTNER_UNKNOWN',
      `client certificate ${fingerprint} is not registered for any partner`,
    );
  }
  return { partner, fingerprint };
}

/** A connection's client certificate does not change (TLS 1.3 has no renegotiation): read it once. */
const fingerprints = new WeakMap<TLSSocket, string | undefined>();

function peerFingerprint(socket: TLSSocket): string | undefined {
  if (fingerprints.has(socket)) return fingerprints.get(socket);
  // `authorized` is true only when the chain verified against our trust anchors.
  const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
  const fingerprint = cert && 'fingerprint256' in cert ? cert.fingerprint256 : undefined;
  fingerprints.set(socket, fingerprint);
  return fingerprint;
}
