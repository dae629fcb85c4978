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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
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
  const file = path.join(await testPki(), cc, 'gateway.json');
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
