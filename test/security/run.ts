/**
 * `npm run security`: a dev PKI in a temp folder, one gateway (FR) on an in-memory
 * database, then the partner listener is probed with `openssl s_client` and `sslscan` and the
 * admin listener with plain HTTP. Prints a table (check, expected, got, ok) and exits 1 when
 * any check fails; a check that could not run is `skipped`, never counted as passed.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/main.js';
import { initPki } from '../../src/pki/init.js';
import { createRootCa, issueTlsCert } from '../../src/pki/issue.js';
import { adminChecks, type Row } from './admin-checks.js';
import { opensslChecks, sslscanChecks } from './tls-checks.js';

const dir = await mkdtemp(path.join(os.tmpdir(), 'icros-security-'));
let exitCode = 1;
try {
  await initPki({ dir, countries: ['FR', 'DE'] });
  // A client certificate that looks right but chains to another CA.
  const otherCa = createRootCa({ commonName: 'Not the federation CA' });
  const foreign = issueTlsCert(otherCa, { commonName: 'DE gateway (impostor)', country: 'DE' });
  writeFileSync(path.join(dir, 'foreign.crt'), foreign.certPem);
  writeFileSync(path.join(dir, 'foreign.key'), foreign.keyPem, { mode: 0o600 });

  const config = loadConfig(path.join(dir, 'FR', 'gateway.json'), {
    listen: { partner: { port: 0 }, admin: { port: 0 } },
    database: { memory: true, dir: undefined },
    logLevel: 'error',
  });
  const gw = await startGateway(config);
  const rows: Row[] = [];
  try {
    const port = Number(new URL(gw.partnerUrl).port);
    const ca = path.join(dir, 'ca.crt');
    const partner = { cert: path.join(dir, 'DE', 'tls.crt'), key: path.join(dir, 'DE', 'tls.key') };
    rows.push(
      ...(await opensslChecks(port, ca, partner, {
        cert: path.join(dir, 'foreign.crt'),
        key: path.join(dir, 'foreign.key'),
      })),
    );
    rows.push(...(await sslscanChecks(port)));
    const tokens = (await import(path.join(dir, 'FR', 'admin-tokens.json'), { with: { type: 'json' } }))
      .default;
    rows.push(...(await adminChecks(gw.adminUrl, tokens.analyst)));
  } finally {
    await gw.stop();
  }
  printTable(rows);
  const failed = rows.filter((r) => r.ok === false).length;
  const skipped = rows.filter((r) => r.ok === 'skipped').length;
  process.stdout.write(`\n${rows.length - failed - skipped} passed, ${failed} failed, ${skipped} skipped\n`);
  exitCode = failed > 0 ? 1 : 0;
} catch (err) {
  process.stderr.write(`security checks could not run: ${(err as Error).stack ?? String(err)}\n`);
  exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(exitCode);

function printTable(rows: Row[]): void {
  const cells = rows.map((r) => [
    r.check,
    r.expected,
    r.got,
    r.ok === 'skipped' ? 'SKIPPED' : r.ok ? 'ok' : 'FAIL',
  ]);
  const head = ['check', 'expected', 'got', 'ok'];
  const widths = head.map((h, i) => Math.min(70, Math.max(h.length, ...cells.map((c) => c[i]!.length))));
  const line = (c: string[]) =>
    c
      .map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!)))
      .join(' | ');
  process.stdout.write(`${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`);
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
}
