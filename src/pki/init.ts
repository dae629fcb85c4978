import { X509Certificate } from 'node:crypto';
import { access, chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { SigningAlg } from '../config/load.js';
import { algFor, describeKey, SIGNING_ALGS } from '../envelope/jws-crypto.js';
import {
  assignPorts,
  buildGatewayConfig,
  type DevCountry,
  type DevPorts,
  type DevTokens,
  newDevTokens,
  normalizeCountries,
  parseDevTokens,
  portsFromGatewayConfig,
} from './dev-config.js';
import { PkiError } from './errors.js';
import {
  assertCa,
  checkSigningAlg,
  createRootCa,
  DEFAULT_SIGNING_ALG,
  fingerprint256,
  type Issued,
  issueSigningCert,
  issueTlsCert,
} from './issue.js';

/** What `initPki` left on disk. */
export interface PkiLayout {
  /** Absolute path of the PKI folder. */
  dir: string;
  /** Absolute path of the federation root CA certificate. */
  caCert: string;
  /** Every country now in the folder: the requested ones in the given order, then those found. */
  countries: string[];
}

/** Options of `initPki`; see DESIGN §6 (`icros pki init`). */
export interface InitPkiOptions {
  dir: string;
  countries: string[];
  /** New CA, certificates, tokens and ports for every country, found ones included. */
  force?: boolean;
  /**
   * Algorithm of the signing certificates issued by this run (default `DEFAULT_SIGNING_ALG`,
   * ES256). Countries kept from an earlier run keep their key and its algorithm.
   */
  signAlg?: SigningAlg;
  log?: (line: string) => void;
}

const CA_NAME = 'ICROS Dev Federation Root CA';
const SECRET = 0o600;
const CERT_FILES = ['tls.crt', 'tls.key', 'sign.crt', 'sign.key'] as const;

/**
 * Writes a dev federation (DESIGN §6): `D/ca.crt`, `D/ca.key` and, per country,
 * `tls.*`, `sign.*`, `gateway.json` and `admin-tokens.json`. Keys and tokens are 0600.
 *
 * Re-running is additive: an existing CA, complete country folders and their tokens and
 * ports are kept, missing countries are issued, and every `gateway.json` is rewritten so all
 * countries in the folder (requested or already there with a `tls.crt`) are partners of each
 * other. `force` starts over with a new CA. Each `gateway.json` signs with, and accepts from
 * each partner, the algorithm of the key actually in that country's `sign.crt`, so a folder
 * whose countries were issued with different `signAlg`s still works as one federation.
 * Throws `PkiError` (`PKI_BAD_COUNTRIES`, `PKI_BAD_ALG`, `PKI_BAD_CA`, `PKI_BAD_CERT`,
 * `PKI_STALE_COUNTRY`) before writing any file, `PKI_IO` when the disk fails.
 */
export async function initPki(opts: InitPkiOptions): Promise<PkiLayout> {
  try {
    return await writeLayout(opts);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('PKI_IO', `cannot write the dev PKI in ${opts.dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

async function writeLayout(opts: InitPkiOptions): Promise<PkiLayout> {
  const log = opts.log ?? (() => {});
  const force = opts.force === true;
  const requested = normalizeCountries(opts.countries);
  const signAlg = checkSigningAlg(opts.signAlg ?? DEFAULT_SIGNING_ALG);
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });

  const caPath = join(dir, 'ca.crt');
  const existingCa = force ? undefined : await readCa(dir);
  const ca = existingCa ?? createRootCa({ commonName: CA_NAME });
  const found = (await findCountries(dir)).filter((cc) => !requested.includes(cc));
  const countries = [...requested, ...found];

  // Read and check everything first, so a stale folder fails the run before any file is written.
  const kept = new Set<string>();
  const algs = new Map<string, SigningAlg>();
  const existingPorts = new Map<string, DevPorts>();
  const tokens = new Map<string, DevTokens>();
  for (const cc of countries) {
    const folder = join(dir, cc);
    if (!force && (await hasAll(folder, CERT_FILES))) {
      await assertIssuedBy(ca, dir, cc);
      kept.add(cc);
      algs.set(cc, await signingAlgOf(dir, cc));
    } else {
      algs.set(cc, signAlg);
    }
    const recorded = force
      ? undefined
      : portsFromGatewayConfig(await readOptional(join(folder, 'gateway.json')));
    if (recorded) existingPorts.set(cc, recorded);
    const previous = force
      ? undefined
      : parseDevTokens(await readOptional(join(folder, 'admin-tokens.json')));
    tokens.set(cc, previous ?? newDevTokens());
  }
  const ports = assignPorts(countries, existingPorts);

  if (existingCa) {
    log(`reusing CA ${caPath}`);
  } else {
    await writeFile(caPath, ca.certPem);
    await writeSecret(join(dir, 'ca.key'), ca.keyPem);
    log(`created CA ${caPath}`);
  }
  for (const cc of countries) {
    const folder = join(dir, cc);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    if (kept.has(cc)) {
      log(`keeping ${cc} (signing ${algs.get(cc)})`);
    } else {
      await issueCountry(ca, folder, cc, signAlg);
      log(`issued ${cc} TLS and signing certificates (signing ${signAlg})`);
    }
    // Rewritten even when reused, so an old file also ends up 0600.
    await writeSecret(join(folder, 'admin-tokens.json'), `${JSON.stringify(tokens.get(cc), null, 2)}\n`);
  }

  const federation: DevCountry[] = [];
  for (const cc of countries) {
    const tlsCert = await readFile(join(dir, cc, 'tls.crt'), 'utf8');
    federation.push({
      country: cc,
      ports: ports.get(cc)!,
      tlsFingerprint: fingerprint256(tlsCert),
      signAlg: algs.get(cc)!,
    });
  }
  for (const self of federation) {
    const config = buildGatewayConfig(self, federation, tokens.get(self.country)!);
    await writeFile(join(dir, self.country, 'gateway.json'), `${JSON.stringify(config, null, 2)}\n`);
    log(`wrote ${self.country}/gateway.json (partner ${self.ports.partner}, admin ${self.ports.admin})`);
  }
  return { dir, caCert: caPath, countries };
}

async function issueCountry(ca: Issued, folder: string, cc: string, alg: SigningAlg): Promise<void> {
  const tls = issueTlsCert(ca, { commonName: `${cc} gateway (dev)`, country: cc, organization: `${cc}-DEV` });
  const sign = issueSigningCert(ca, {
    commonName: `${cc} message signing (dev)`,
    country: cc,
    organization: `${cc}-DEV`,
    alg,
  });
  await writeFile(join(folder, 'tls.crt'), tls.certPem);
  await writeSecret(join(folder, 'tls.key'), tls.keyPem);
  await writeFile(join(folder, 'sign.crt'), sign.certPem);
  await writeSecret(join(folder, 'sign.key'), sign.keyPem);
}

async function readCa(dir: string): Promise<Issued | undefined> {
  const certPem = await readOptional(join(dir, 'ca.crt'));
  if (certPem === '') return undefined;
  const keyPem = await readOptional(join(dir, 'ca.key'));
  if (keyPem === '')
    throw new PkiError('PKI_BAD_CA', `${dir}/ca.crt exists without ca.key; use force to start over`);
  const ca = { certPem, keyPem };
  assertCa(ca);
  return ca;
}

// A folder issued under another CA would look wired but fail every handshake.
async function assertIssuedBy(ca: Issued, dir: string, cc: string): Promise<void> {
  const caCert = new X509Certificate(ca.certPem);
  for (const name of ['tls.crt', 'sign.crt']) {
    const pem = await readFile(join(dir, cc, name), 'utf8');
    let issued = false;
    try {
      const cert = new X509Certificate(pem);
      issued = cert.checkIssued(caCert) && cert.verify(caCert.publicKey);
    } catch {
      // Unreadable counts as not issued by this CA: same remedy.
    }
    if (!issued) {
      throw new PkiError(
        'PKI_STALE_COUNTRY',
        `${cc}/${name} was not issued by ${dir}/ca.crt; use force to start over`,
      );
    }
  }
}

// The key decides, not an earlier run's gateway.json: that file may be older than the key.
async function signingAlgOf(dir: string, cc: string): Promise<SigningAlg> {
  const key = new X509Certificate(await readFile(join(dir, cc, 'sign.crt'), 'utf8')).publicKey;
  const alg = algFor(key);
  if (alg) return alg;
  throw new PkiError(
    'PKI_BAD_CERT',
    `${cc}/sign.crt holds an ${describeKey(key)} key, which fits none of ${SIGNING_ALGS.join(', ')}; ` +
      'use force to start over',
  );
}

// Country folders are exactly two upper-case letters; `data/` and the like are not countries.
async function findCountries(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const found: string[] = [];
  for (const entry of entries) {
    if (
      entry.isDirectory() &&
      /^[A-Z]{2}$/.test(entry.name) &&
      (await hasAll(join(dir, entry.name), ['tls.crt']))
    ) {
      found.push(entry.name);
    }
  }
  return found.sort();
}

// writeFile's mode applies only when it creates the file; chmod also tightens an old one.
async function writeSecret(path: string, data: string): Promise<void> {
  await writeFile(path, data, { mode: SECRET });
  await chmod(path, SECRET);
}

async function hasAll(folder: string, names: readonly string[]): Promise<boolean> {
  try {
    await Promise.all(names.map((name) => access(join(folder, name))));
    return true;
  } catch {
    return false;
  }
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
