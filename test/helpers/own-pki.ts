/**
 * Gateways on a dev PKI of their own, for tests that change certificate and config files on
 * disk (rotation, shutdown, the security scan): the shared test PKI of federation.ts must
 * stay as it is for every other spec of the run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { GatewayConfig, SigningAlg } from '../../src/config/load.js';
import { type Gateway, startGateway } from '../../src/main.js';
import { initPki } from '../../src/pki/init.js';
import { type Issued, issueSigningCert, issueTlsCert } from '../../src/pki/issue.js';
import { type DbKind, testDb } from './db.js';
import { configFrom, freePort } from './federation.js';

export type Ports = Record<string, { partner: number; admin: number }>;

/** A dev PKI of its own for `countries`, their signing keys for `signAlg` (default: initPki's). */
export async function ownPki(countries: string[], signAlg?: SigningAlg): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'icros-ops-pki-'));
  await initPki({ dir, countries, ...(signAlg ? { signAlg } : {}) });
  return dir;
}

export async function freePorts(countries: string[]): Promise<Ports> {
  const ports: Ports = {};
  for (const cc of countries) ports[cc] = { partner: await freePort(), admin: await freePort() };
  return ports;
}

/** `pki/cc/gateway.json` as it is on disk now, with this run's ports (federation.ts configFrom). */
export function configOf(pki: string, cc: string, ports: Ports): GatewayConfig {
  return configFrom(pki, cc, ports);
}

/** Start `cc` on `kind` storage, reloading from its gateway.json (and watching it when `watchMs`). */
export async function startOwn(
  pki: string,
  cc: string,
  ports: Ports,
  kind: DbKind,
  watchMs?: number,
): Promise<{ gw: Gateway; close(): Promise<void> }> {
  const { db } = await testDb(kind);
  const gw = await startGateway(configOf(pki, cc, ports), {
    db,
    reloadConfig: () => configOf(pki, cc, ports),
    configFile: path.join(pki, cc, 'gateway.json'),
    ...(watchMs !== undefined ? { watchDebounceMs: watchMs } : {}),
  });
  return {
    gw,
    async close() {
      await gw.stop();
      await db.close();
    },
  };
}

export function caOf(pki: string): Issued {
  return {
    certPem: readFileSync(path.join(pki, 'ca.crt'), 'utf8'),
    keyPem: readFileSync(path.join(pki, 'ca.key'), 'utf8'),
  };
}

export function newTlsCert(pki: string, cc: string): Issued {
  return issueTlsCert(caOf(pki), { commonName: `${cc} gateway (rotated)`, country: cc });
}

export function newSigningCert(pki: string, cc: string): Issued {
  return issueSigningCert(caOf(pki), { commonName: `${cc} message signing (rotated)`, country: cc });
}

/** Replace a file the way an operator should: write beside it, then rename over it. */
export function swapFile(file: string, text: string): void {
  writeFileSync(`${file}.new`, text, { mode: 0o600 });
  renameSync(`${file}.new`, file);
}

export function editJson(file: string, edit: (doc: Record<string, unknown>) => void): void {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(doc);
  swapFile(file, `${JSON.stringify(doc, null, 2)}\n`);
}

/** `icros gateway start` of `cc` as a child process, with everything it prints. */
export interface GatewayProcess {
  child: ChildProcess;
  stdout: () => string;
  exited: Promise<number | null>;
}

/**
 * Start `icros gateway start --config pki/cc/gateway.json [args…]` on this run's ports
 * (environment overrides, operations §5) and resolve once it says it is running.
 */
export async function startGatewayProcess(
  pki: string,
  cc: string,
  ports: Ports,
  opts: { args?: string[]; env?: Record<string, string> } = {},
): Promise<GatewayProcess> {
  let out = '';
  const child = spawn(
    process.execPath,
    [
      'bin/icros.js',
      'gateway',
      'start',
      '--config',
      path.join(pki, cc, 'gateway.json'),
      ...(opts.args ?? []),
    ],
    {
      env: {
        ...process.env,
        LOG_LEVEL: 'error',
        ICROS_PARTNER_PORT: String(ports[cc]!.partner),
        ICROS_ADMIN_PORT: String(ports[cc]!.admin),
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const end = Date.now() + 40_000;
  while (!out.includes('gateway running')) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`gateway did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stdout: () => out, exited };
}
