/**
 * The only place that reads `process.env` and the config file. The document is merged with
 * environment overrides, validated against schemas/config.schema.json (defaults filled in),
 * its PEM files loaded, and the result frozen. Private keys are non-enumerable so they never
 * reach a log line, a JSON dump or a stack trace.
 */
import { createHash, createPrivateKey, KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { algFor, describeKey, keyFitsAlg, SIGNING_ALGS } from '../envelope/jws-crypto.js';
import { IcrosError } from '../errors.js';
import { validateConfigDoc } from '../schema/validators.js';

export type Role = 'analyst' | 'auditor' | 'admin';
export type SigningAlg = 'PS256' | 'ES256' | 'EdDSA';

export interface Address {
  host: string;
  port: number;
}

export interface PartnerKey {
  /** base64url SHA-256 thumbprint of the certificate (JWS `kid`, `x5t#S256`). */
  kid: string;
  cert: X509Certificate;
  publicKey: KeyObject;
}

export interface Partner {
  country: string;
  agency: string;
  url: string;
  /** Upper-case hex with colons, as Node's `fingerprint256`. */
  tlsFingerprints: string[];
  signingKeys: PartnerKey[];
  algorithms: SigningAlg[];
  ratePerSecond: number;
  /** Delivery towards this partner: the global `delivery` values with the partner's overrides. */
  delivery: DeliveryPolicy;
}

/** How messages are delivered to one partner (DESIGN §4; schemas/config.schema.json). */
export interface DeliveryPolicy {
  maxAttempts: number;
  maxAgeSeconds: number;
  baseDelayMs: number;
  maxDelayMs: number;
  requestTimeoutMs: number;
  concurrency: number;
  /** Attempts per second; 0 = no limit. */
  ratePerSecond: number;
  circuitFailureThreshold: number;
  circuitProbeIntervalMs: number;
  queuedAgeAlertSeconds: number;
  /** Largest batch for a partner that advertises batches; 0 or 1: single messages only. */
  batchMaxMessages: number;
}

export interface GatewayConfig {
  country: string;
  agency: string;
  listen: { partner: Address; admin: Address };
  database: { url?: string; schema?: string; dir?: string; memory?: true; poolSize: number };
  redis?: { url: string };
  tls: { certPem: string; readonly keyPem: string; caPems: string[]; handshakeTimeoutMs: number };
  signing: { alg: SigningAlg; kid: string; certPem: string; readonly key: KeyObject };
  partners: Partner[];
  admin: {
    tokens: { name: string; role: Role; sha256: string }[];
    maxBodyBytes: number;
    oidc?: OidcConfig;
    rateLimit: { perSecond: number; burst: number };
  };
  limits: {
    maxBodyBytes: number;
    clockSkewSeconds: number;
    maxMessageAgeSeconds: number;
    requestTimeoutMs: number;
  };
  delivery: DeliveryPolicy & { pollIntervalMs: number; maintenanceIntervalMs: number };
  audit: { checkpointEvery: number; checkpointIntervalMs: number };
  retention: { intervalMs: number };
  /** Cases kept in memory for forwards (outbound/case-cache.ts, 10 minutes each): at most this many bytes of JSON; 0 = none. */
  cases: { cacheBytes: number };
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** `/readyz` fails when an own certificate expires within `minCertDays`. */
  readiness: { minCertDays: number };
  /** How long a graceful stop waits for in-flight requests and deliveries. */
  shutdownTimeoutMs: number;
  /** Absolute paths of every PEM file read (TLS, signing, partners' certificates): the reload watcher's list. */
  files: string[];
  /** Folder of the config file; relative paths were resolved against it. */
  baseDir: string;
}

/** OIDC bearer JWTs accepted on the admin API (`admin.oidc`). */
export interface OidcConfig {
  issuer: string;
  audience: string;
  jwksUrl: string;
  roleClaim: string;
  algorithms: string[];
  clockToleranceSeconds: number;
}

/** Partial config document, deep-merged over the file (tests, the demo). */
export type ConfigOverrides = Record<string, unknown>;

/** Read, override, validate, load keys and freeze the config of one gateway. */
export function loadConfig(
  file: string,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): GatewayConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new IcrosError('CONFIG_UNREADABLE', `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  if (!isObject(doc)) throw new IcrosError('CONFIG_INVALID', `${file}: the config must be a JSON object`);
  return buildConfig(merge(merge(doc, envOverrides(env)), overrides), path.dirname(path.resolve(file)), file);
}

/** The environment variables that override the file (documented in docs/operations.md). */
export function envOverrides(env: NodeJS.ProcessEnv): ConfigOverrides {
  const o: Record<string, unknown> = {};
  if (env.DATABASE_URL) o.database = { url: env.DATABASE_URL, dir: undefined, memory: undefined };
  if (env.REDIS_URL) o.redis = { url: env.REDIS_URL };
  if (env.LOG_LEVEL) o.logLevel = env.LOG_LEVEL;
  const listen: Record<string, unknown> = {};
  for (const side of ['partner', 'admin'] as const) {
    const host = env[`ICROS_${side.toUpperCase()}_HOST`];
    const port = env[`ICROS_${side.toUpperCase()}_PORT`];
    if (host || port) listen[side] = { ...(host ? { host } : {}), ...(port ? { port: Number(port) } : {}) };
  }
  if (Object.keys(listen).length) o.listen = listen;
  return o;
}

export function buildConfig(doc: Record<string, unknown>, baseDir: string, source = 'config'): GatewayConfig {
  const d = structuredClone(doc);
  const problems = validateConfigDoc.problems(d);
  if (problems.length) {
    const lines = problems.map((p) => `${p.location}: ${p.message}`).join('; ');
    throw new IcrosError('CONFIG_INVALID', `${source}: ${lines}`, { errors: problems });
  }
  // biome-ignore lint/suspicious/noExplicitAny: validated against the schema just above
  const c = d as any;
  const files: string[] = [];
  const read = (p: string, field: string) => {
    files.push(path.resolve(baseDir, p));
    return readPem(path.resolve(baseDir, p), field, source);
  };

  const signingCertPem = read(c.signing.cert, '/signing/cert');
  const signingKey = loadKey(read(c.signing.key, '/signing/key'), '/signing/key', source);
  const signing = {
    alg: signingAlg(c.signing.alg as SigningAlg | undefined, signingKey, source),
    kid: thumbprint(signingCertPem, '/signing/cert', source),
    certPem: signingCertPem,
  };
  hide(signing, 'key', signingKey);

  const tls = {
    certPem: read(c.tls.cert, '/tls/cert'),
    caPems: (c.tls.ca as string[]).map((p, i) => read(p, `/tls/ca/${i}`)),
    handshakeTimeoutMs: c.tls.handshakeTimeoutMs,
  };
  hide(tls, 'keyPem', read(c.tls.key, '/tls/key'));

  const seen = new Set<string>();
  const partners: Partner[] = (c.partners as Record<string, unknown>[]).map((p, i) => {
    const country = p.country as string;
    if (country === c.country)
      fail(source, `/partners/${i}/country`, `a gateway cannot list itself (${country}) as a partner`);
    if (seen.has(country)) fail(source, `/partners/${i}/country`, `partner ${country} is listed twice`);
    seen.add(country);
    return {
      country,
      agency: (p.agency as string | undefined) ?? country,
      url: (p.url as string).replace(/\/+$/, ''),
      tlsFingerprints: (p.tlsFingerprints as string[]).map(normalizeFingerprint),
      signingKeys: (p.signingCerts as string[]).map((certPath, j) => {
        const field = `/partners/${i}/signingCerts/${j}`;
        const pem = read(certPath, field);
        const cert = parseCert(pem, field, source);
        return { kid: thumbprint(pem, field, source), cert, publicKey: cert.publicKey };
      }),
      algorithms: p.algorithms as SigningAlg[],
      ratePerSecond: p.ratePerSecond as number,
      delivery: policyFor(c.delivery, p.delivery as Partial<DeliveryPolicy> | undefined),
    };
  });

  if (c.admin.oidc) checkJwksUrl(c.admin.oidc.jwksUrl, source);

  const config: GatewayConfig = {
    country: c.country,
    agency: c.agency,
    listen: c.listen,
    database: c.database,
    ...(c.redis?.url ? { redis: c.redis } : {}),
    tls: tls as GatewayConfig['tls'],
    signing: signing as GatewayConfig['signing'],
    partners,
    admin: c.admin,
    limits: c.limits,
    delivery: c.delivery,
    audit: c.audit,
    retention: c.retention,
    cases: c.cases,
    logLevel: c.logLevel,
    readiness: c.readiness,
    shutdownTimeoutMs: c.shutdownTimeoutMs,
    files,
    baseDir,
  };
  if (config.database.dir) config.database.dir = path.resolve(baseDir, config.database.dir);
  return deepFreeze(config);
}

/** The JWKS decides whom the gateway trusts: https, except on a loopback address (tests, a local proxy). */
function checkJwksUrl(url: string, source: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    fail(source, '/admin/oidc/jwksUrl', 'is not a URL', cause);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || /^127\./.test(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback))
    fail(source, '/admin/oidc/jwksUrl', 'must be https (http only on a loopback address)');
}

function policyFor(global: DeliveryPolicy, own: Partial<DeliveryPolicy> = {}): DeliveryPolicy {
  const keys: (keyof DeliveryPolicy)[] = [
    'maxAttempts',
    'maxAgeSeconds',
    'baseDelayMs',
    'maxDelayMs',
    'requestTimeoutMs',
    'concurrency',
    'ratePerSecond',
    'circuitFailureThreshold',
    'circuitProbeIntervalMs',
    'queuedAgeAlertSeconds',
    'batchMaxMessages',
  ];
  return Object.fromEntries(keys.map((k) => [k, own[k] ?? global[k]])) as unknown as DeliveryPolicy;
}

/** `AB:CD:…` upper case, whatever form the operator wrote. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replaceAll(':', '').toUpperCase();
  return hex.match(/../g)!.join(':');
}

/** base64url SHA-256 of a certificate's DER: the JWS `x5t#S256` and our `kid`. */
export function certThumbprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('base64url');
}

function thumbprint(pem: string, field: string, source: string): string {
  return certThumbprint(parseCert(pem, field, source));
}

function parseCert(pem: string, field: string, source: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (cause) {
    return fail(source, field, `is not a PEM certificate (${(cause as Error).message})`, cause);
  }
}

function loadKey(pem: string, field: string, source: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (cause) {
    return fail(source, field, 'is not a PEM private key', cause);
  }
}

// `alg` as configured, else the one the key fits. Caught here, not at the first signature: a
// gateway whose key does not fit its alg could start, then fail every message and receipt it signs.
function signingAlg(alg: SigningAlg | undefined, key: KeyObject, source: string): SigningAlg {
  if (alg !== undefined && keyFitsAlg(key, alg)) return alg;
  const fits = algFor(key);
  if (alg === undefined && fits) return fits;
  return fail(
    source,
    alg === undefined ? '/signing/key' : '/signing/alg',
    alg === undefined
      ? `(${describeKey(key)}) fits none of ${SIGNING_ALGS.join(', ')}`
      : `is ${alg}, which does not fit the ${describeKey(key)} key in /signing/key: ` +
          (fits ? `set it to ${fits}` : `that key fits none of ${SIGNING_ALGS.join(', ')}`),
  );
}

function readPem(file: string, field: string, source: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    return fail(
      source,
      field,
      `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      cause,
    );
  }
}

function fail(source: string, field: string, message: string, cause?: unknown): never {
  throw new IcrosError('CONFIG_INVALID', `${source}: ${field} ${message}`, {
    cause,
    errors: [{ location: field, rule: 'file', message }],
  });
}

function hide(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: false, writable: false });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; `undefined` deletes; anything else replaces. */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete out[k];
    else if (isObject(v) && isObject(out[k])) out[k] = merge(out[k] as Record<string, unknown>, v);
    else out[k] = v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (
    o &&
    typeof o === 'object' &&
    !Object.isFrozen(o) &&
    !(o instanceof X509Certificate) &&
    !(o instanceof KeyObject)
  ) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
