/**
 * Real gateways for e2e tests: a dev PKI made once per test process (FR, DE, BE), and
 * gateways started on free loopback ports over PGlite or PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type ConfigOverrides, type GatewayConfig, loadConfig } from '../../src/config/load.js';
import { type Gateway, type StartOptions, startGateway } from '../../src/main.js';
import { initPki } from '../../src/pki/init.js';
import { type DbKind, testDb } from './db.js';

let pkiDir: Promise<string> | undefined;

/** The dev PKI of this test run (FR, DE, BE). */
export function testPki(): Promise<string> {
  pkiDir ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'icros-pki-'));
    await initPki({ dir, countries: ['FR', 'DE', 'BE'] });
    return dir;
  })();
  return pkiDir;
}

/** Ports this process has handed out: free when asked, but perhaps not yet listened on. */
const handedOut = new Set<number>();

/**
 * A port free now, below Linux's ephemeral range (32768–60999): a port the kernel hands out
 * for listen(0) can be taken by an outgoing connection (to PostgreSQL, to a partner) before
 * the gateway listens on it, which made long runs fail now and then with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    if (tries > 100) throw new Error('no free port between 20000 and 32000');
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    // Two calls before either port is bound could otherwise both get the same free port
    // (a CI run once failed with EADDRINUSE that way); a port is handed out once per process.
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
}

export interface Federation {
  pki: string;
  gateways: Record<string, Gateway>;
  ports: Record<string, { partner: number; admin: number }>;
  stop(): Promise<void>;
}

/** Config of `cc` from the test PKI with every partner URL pointing at `ports`. */
export async function testConfig(
  cc: string,
  ports: Record<string, { partner: number; admin: number }>,
  overrides: ConfigOverrides = {},
): Promise<GatewayConfig> {
  return configFrom(await testPki(), cc, ports, overrides);
}

/**
 * `pki/cc/gateway.json` as it is on disk now, with this run's ports, an in-memory database
 * and quick delivery settings (what a reload reads again, for tests on a PKI of their own).
 */
export function configFrom(
  pki: string,
  cc: string,
  ports: Record<string, { partner: number; admin: number }>,
  overrides: ConfigOverrides = {},
): GatewayConfig {
  const file = path.join(pki, cc, 'gateway.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { partners: { country: string }[] };
  return loadConfig(
    file,
    {
      listen: { partner: { port: ports[cc]!.partner }, admin: { port: ports[cc]!.admin } },
      database: { memory: true, dir: undefined },
      // Partner paths stay relative to the file; only the URL moves to this run's port.
      partners: doc.partners.map((p) => ({
        ...p,
        url: `https://127.0.0.1:${ports[p.country]?.partner ?? 1}`,
      })),
      delivery: { baseDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 50, requestTimeoutMs: 3000 },
      logLevel: 'error',
      // Tests drive the admin API faster than a person; users.spec tests the limit itself.
      admin: { rateLimit: { perSecond: 100_000, burst: 100_000 } },
      ...overrides,
    },
    {},
  );
}

/** Start gateways for `countries` on `kind` storage, wired to each other. */
export async function startFederation(
  kind: DbKind,
  countries: string[] = ['FR', 'DE'],
  opts: Record<string, StartOptions & { overrides?: ConfigOverrides }> = {},
): Promise<Federation> {
  const pki = await testPki();
  const ports: Federation['ports'] = {};
  for (const cc of countries) ports[cc] = { partner: await freePort(), admin: await freePort() };
  const gateways: Record<string, Gateway> = {};
  const dbs: { close(): Promise<void> }[] = [];
  for (const cc of countries) {
    const { db } = await testDb(kind);
    dbs.push(db);
    const config = await testConfig(cc, ports, opts[cc]?.overrides);
    gateways[cc] = await startGateway(config, { ...opts[cc], db });
  }
  return {
    pki,
    gateways,
    ports,
    async stop() {
      await Promise.all(Object.values(gateways).map((g) => g.stop()));
      await Promise.all(dbs.map((d) => d.close()));
    },
  };
}
