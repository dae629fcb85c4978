import { randomBytes } from 'node:crypto';
import { hashToken } from '../api/auth.js';
import type { SigningAlg } from '../config/load.js';
import { PkiError } from './errors.js';

/** Listener ports of one dev gateway. */
export interface DevPorts {
  partner: number;
  admin: number;
}

/** Plain-text dev admin tokens, one per role (DESIGN §5); written to `admin-tokens.json`. */
export interface DevTokens {
  analyst: string;
  auditor: string;
  admin: string;
}

/** What `buildGatewayConfig` needs to know about one country of the federation. */
export interface DevCountry {
  country: string;
  ports: DevPorts;
  tlsFingerprint: string;
  /** The algorithm the key in the country's `sign.crt` fits. */
  signAlg: SigningAlg;
}

const ROLES = ['analyst', 'auditor', 'admin'] as const;
const HOST = '127.0.0.1';

/**
 * Upper-cases, checks and de-duplicates a country list: each entry must be an ISO 3166-1
 * alpha-2 shape (two ASCII letters), at least one entry. Throws `PKI_BAD_COUNTRIES`.
 */
export function normalizeCountries(countries: readonly string[]): string[] {
  if (countries.length === 0) throw new PkiError('PKI_BAD_COUNTRIES', 'at least one country is required');
  const seen = new Set<string>();
  for (const raw of countries) {
    const cc = raw.toUpperCase();
    if (!/^[A-Z]{2}$/.test(cc)) {
      throw new PkiError('PKI_BAD_COUNTRIES', `not a two-letter country code: ${JSON.stringify(raw)}`);
    }
    if (seen.has(cc)) throw new PkiError('PKI_BAD_COUNTRIES', `country listed twice: ${JSON.stringify(raw)}`);
    seen.add(cc);
  }
  return [...seen];
}

/**
 * Slot i listens on partner 8443 + 1000·i and admin 8080 + 1000·i: DESIGN §6 fixes FR at
 * 8443/8080 and DE at 9443/9080 for the demo, and "a third country adds 1000".
 */
export function portsForSlot(slot: number): DevPorts {
  return { partner: 8443 + 1000 * slot, admin: 8080 + 1000 * slot };
}

/**
 * Gives every country in `order` its ports. Countries in `existing` keep theirs, so a re-run
 * never moves a gateway that operators already script against. A new country takes the slot
 * of its position in `order` (the order `--countries` gave), or the next free one after it.
 */
export function assignPorts(
  order: readonly string[],
  existing: ReadonlyMap<string, DevPorts>,
): Map<string, DevPorts> {
  const result = new Map<string, DevPorts>();
  const used = new Set<number>();
  for (const [cc, ports] of existing) {
    if (!order.includes(cc)) continue;
    result.set(cc, ports);
    used.add(ports.partner).add(ports.admin);
  }
  order.forEach((cc, position) => {
    if (result.has(cc)) return;
    let slot = position;
    let ports = portsForSlot(slot);
    while (used.has(ports.partner) || used.has(ports.admin)) ports = portsForSlot(++slot);
    if (ports.partner > 65535) throw new PkiError('PKI_BAD_COUNTRIES', `no free dev port left for ${cc}`);
    result.set(cc, ports);
    used.add(ports.partner).add(ports.admin);
  });
  return result;
}

/** Fresh dev tokens: `icros_` + 32 random bytes base64url (the prefix makes leaked ones greppable). */
export function newDevTokens(): DevTokens {
  const token = (): string => `icros_${randomBytes(32).toString('base64url')}`;
  return { analyst: token(), auditor: token(), admin: token() };
}

/** Reads back an `admin-tokens.json`; undefined when it is not what `newDevTokens` writes. */
export function parseDevTokens(json: string): DevTokens | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const ok = ROLES.every(
    (role) => typeof record[role] === 'string' && /^icros_[\w-]{43}$/.test(record[role]),
  );
  return ok
    ? { analyst: `${record.analyst}`, auditor: `${record.auditor}`, admin: `${record.admin}` }
    : undefined;
}

// Token hashing lives with authentication (src/api/auth.ts); re-exported for callers of the dev PKI.
export { hashToken };

/**
 * The `gateway.json` of `self`, wired to every other member of `federation`. Paths are
 * relative to the file's own folder (`D/<cc>/`), so the tree can be moved as a whole. Each
 * partner is accepted with exactly the algorithm of its own signing key.
 */
export function buildGatewayConfig(self: DevCountry, federation: readonly DevCountry[], tokens: DevTokens) {
  return {
    country: self.country,
    agency: `${self.country}-DEV`,
    listen: {
      partner: { host: HOST, port: self.ports.partner },
      admin: { host: HOST, port: self.ports.admin },
    },
    database: { dir: 'data' },
    tls: { cert: 'tls.crt', key: 'tls.key', ca: ['../ca.crt'] },
    signing: { cert: 'sign.crt', key: 'sign.key', alg: self.signAlg },
    partners: federation
      .filter((other) => other.country !== self.country)
      .map((other) => ({
        country: other.country,
        agency: `${other.country}-DEV`,
        url: `https://${HOST}:${other.ports.partner}`,
        tlsFingerprints: [other.tlsFingerprint],
        signingCerts: [`../${other.country}/sign.crt`],
        algorithms: [other.signAlg],
      })),
    admin: {
      tokens: ROLES.map((role) => ({ name: `dev-${role}`, role, sha256: hashToken(tokens[role]) })),
    },
  };
}

/** Ports recorded in an existing `gateway.json`, if it holds valid ones. */
export function portsFromGatewayConfig(json: string): DevPorts | undefined {
  try {
    const config = JSON.parse(json) as {
      listen?: { partner?: { port?: unknown }; admin?: { port?: unknown } };
    };
    const partner = config.listen?.partner?.port;
    const admin = config.listen?.admin?.port;
    return isPort(partner) && isPort(admin) && partner !== admin ? { partner, admin } : undefined;
  } catch {
    return undefined;
  }
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= 65535;
}
