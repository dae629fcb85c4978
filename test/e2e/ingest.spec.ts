/**
 * `icros ingest` end to end: the real CLI process against a running gateway's admin API.
 * Files are split into uploads; every good report is stored once, every bad one is named by
 * its row or index in the whole file; a re-run stores nothing twice.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { icros } from '../helpers/cli.js';
import { token } from '../helpers/clients.js';
import { type ConformingProxy, conformingProxy } from '../helpers/conforming-proxy.js';
import { type Federation, startFederation } from '../helpers/federation.js';
import { warmConformance } from '../helpers/openapi.js';

const columns = (
  JSON.parse(readFileSync('schemas/national/fr-pharos-csv/format.json', 'utf8')) as {
    parser: { columns: string[] };
  }
).parser.columns;

/** A PHAROS spreadsheet of `n` reports; the reports at `bad` have a decimal point in the amount. */
function spreadsheet(n: number, bad: number[]): string {
  const rows = [columns.join(';')];
  for (let i = 0; i < n; i++) {
    const cells: Record<string, string> = {
      numero_signalement: `PHAROS-2026-${String(500_000 + i)}`,
      date_signalement: '03/11/2026 20:14',
      categorie: 'ESCROQUERIE',
      resume: `Faux site de vente numéro ${i}; paiement par virement.`,
      prejudice_montant: bad.includes(i) ? '12.50' : '1 250,50',
      prejudice_devise: 'EUR',
      urls: `https://shop-${i}.example/pay`,
    };
    rows.push(columns.map((c) => (cells[c]?.includes(';') ? `"${cells[c]}"` : (cells[c] ?? ''))).join(';'));
  }
  return `${rows.join('\r\n')}\r\n`;
}

describe('e2e icros ingest (pglite)', function () {
  this.timeout(180_000);
  let fed: Federation;
  /** FR's admin API behind a proxy that holds every exchange to the OpenAPI document. */
  let proxy: ConformingProxy;
  let url: string;
  let tok: string;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-ingest-'));
  before(async () => {
    fed = await startFederation('pglite', ['FR', 'DE'], { FR: { noWorker: true } });
    warmConformance();
    proxy = await conformingProxy(fed.gateways.FR!.adminUrl);
    url = proxy.url;
    tok = token(fed.pki, 'FR');
  });
  after(async () => {
    await proxy?.close();
    await fed?.stop();
  });
  // Each request the test's CLI runs made, and each answer they got, as the document says.
  afterEach(() => {
    expect(proxy.violations, 'exchanges off the OpenAPI document').to.deep.equal([]);
  });

  const countCases = async () =>
    Number((await fed.gateways.FR!.ctx.db.query<{ n: string }>('SELECT count(*) AS n FROM cases'))[0]!.n);

  it('stores every good report of a 1,200-row spreadsheet in uploads of 250, and names each bad row', async () => {
    const file = path.join(dir, 'pharos.csv');
    writeFileSync(file, spreadsheet(1200, [100, 600, 1199]));
    const before = await countCases();
    const r = await icros(['ingest', '--format', 'fr-pharos-csv', '--batch', '250', '--server', url, file], {
      ICROS_TOKEN: tok,
    });
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stdout).to.contain(`${file}: 1200 reports, 1197 stored (1197 new, 0 unchanged), 3 rejected`);
    // Rows count from the header (row 1): report index 600 is row 602, in the third upload.
    for (const [report, row] of [
      [101, 102],
      [601, 602],
      [1200, 1201],
    ]) {
      expect(r.stderr).to.contain(`report ${report} rejected`);
      expect(r.stderr).to.contain(`at row ${row}, column N (prejudice_montant)`);
    }
    expect((await countCases()) - before).to.equal(1197);

    // Running it again stores nothing twice.
    const again = await icros([
      'ingest',
      '--format',
      'fr-pharos-csv',
      '--server',
      url,
      '--token',
      tok,
      '--json',
      file,
    ]);
    const summary = JSON.parse(again.stdout.trim());
    expect(summary).to.deep.include({ total: 1200, created: 0, unchanged: 1197, rejectedCount: 3 });
    expect((await countCases()) - before).to.equal(1197);
  });

  it('ingests XML and JSON exports, locating errors in the whole file across uploads', async () => {
    const xml = readFileSync('schemas/national/de-xml/samples/export.input.xml', 'utf8')
      .replaceAll('BKA-CC-2026-118834', 'FR-XML-1')
      .replaceAll('LKA-BW-2026-00917', 'FR-XML-2')
      .replace('<Meldedatum>', '<Herkunftsstaat>FR</Herkunftsstaat><Meldedatum>')
      .replace(
        '<Dienststelle>DE-LKA-BW</Dienststelle>',
        '<Herkunftsstaat>FR</Herkunftsstaat><Dienststelle>FR-OCLCTIC</Dienststelle>',
      )
      .replace('Waehrung="EUR"', 'Waehrung="euro"');
    const file = path.join(dir, 'meldungen.xml');
    writeFileSync(file, xml);
    const r = await icros([
      'ingest',
      '--format',
      'de-xml',
      '--batch',
      '1',
      '--server',
      url,
      '--token',
      tok,
      file,
    ]);
    expect(r.stdout).to.contain('2 reports, 1 stored (1 new, 0 unchanged), 1 rejected');
    expect(r.stderr).to.contain('at /Meldungen/Meldung[1]/Schaden/@Waehrung');

    const json = JSON.parse(readFileSync('schemas/national/fr-pharos/samples/export.input.json', 'utf8'));
    json.signalements[1].prejudice.devise = 'EURO';
    const jfile = path.join(dir, 'pharos.json');
    writeFileSync(jfile, JSON.stringify(json));
    const j = await icros([
      'ingest',
      '--format',
      'fr-pharos',
      '--batch',
      '1',
      '--server',
      url,
      '--token',
      tok,
      jfile,
    ]);
    expect(j.stdout).to.contain('2 reports, 1 stored');
    expect(j.stderr).to.contain('at /signalements/1/prejudice/devise');
  });

  it('exits 2 without a server or token, 1 naming the file when it cannot be read or parsed, 1 when the server is down', async () => {
    const noToken = await icros(['ingest', '--format', 'fr-pharos', '--server', url, 'x.json'], {
      ICROS_TOKEN: '',
    });
    expect(noToken.status).to.equal(2);
    expect(noToken.stderr).to.contain('--token');
    const missing = await icros([
      'ingest',
      '--format',
      'fr-pharos',
      '--server',
      url,
      '--token',
      tok,
      path.join(dir, 'nope.json'),
    ]);
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.contain('FILE_UNREADABLE');
    const broken = path.join(dir, 'broken.xml');
    writeFileSync(broken, '<Meldungen><Meldung></Meldungen>');
    const b = await icros(['ingest', '--format', 'de-xml', '--server', url, '--token', tok, broken]);
    expect(b.status).to.equal(1);
    expect(b.stderr).to.contain('BODY_MALFORMED').and.contain('line 1');
    const down = await icros([
      'ingest',
      '--format',
      'fr-pharos',
      '--server',
      'http://127.0.0.1:9',
      '--token',
      tok,
      'schemas/national/fr-pharos/samples/export.input.json',
    ]);
    expect(down.status).to.equal(1);
    expect(down.stderr).to.contain('SERVER_UNREACHABLE');
  });

  it('stops at once when the token is refused', async () => {
    const r = await icros([
      'ingest',
      '--format',
      'fr-pharos',
      '--server',
      url,
      '--token',
      'icros_wrong',
      'schemas/national/fr-pharos/samples/export.input.json',
    ]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.contain('the server refused the token (401 AUTH_INVALID)');
  });
});
