/**
 * `icros forward`, `icros withdraw` and `icros cases …` as a child process against a running
 * FR → DE federation: exit codes 0 / 1 (the API refused, its code printed) / 2 (usage), and
 * where the server and token come from (flags > environment > CLI profile file).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { icros } from '../helpers/cli.js';
import { admin, sampleCase, token } from '../helpers/clients.js';
import { type ConformingProxy, conformingProxy } from '../helpers/conforming-proxy.js';
import { type Federation, freePort, startFederation } from '../helpers/federation.js';
import { warmConformance } from '../helpers/openapi.js';

describe('e2e icros forward / withdraw / cases (pglite)', function () {
  this.timeout(120_000);
  let fed: Federation;
  /** FR's admin API behind a proxy that holds every exchange to the OpenAPI document. */
  let proxy: ConformingProxy;
  let url: string;
  let tok: string;
  let home: string;
  /** No server or token from the test runner's own environment or home folder. */
  const clean = () => ({ ICROS_SERVER: '', ICROS_TOKEN: '', ICROS_CONFIG: '', XDG_CONFIG_HOME: home });
  const run = (args: string[], env: Record<string, string> = {}) => icros(args, { ...clean(), ...env });
  const withApi = (args: string[]) => run([...args, '--server', url, '--token', tok]);

  async function ingest(): Promise<string> {
    const c = sampleCase();
    const r = await admin(url, tok, 'POST', '/api/reports', c);
    expect(r.status).to.equal(201);
    return c.id;
  }

  before(async () => {
    fed = await startFederation('pglite', ['FR', 'DE']);
    warmConformance();
    proxy = await conformingProxy(fed.gateways.FR!.adminUrl);
    url = proxy.url;
    tok = token(fed.pki, 'FR');
    home = mkdtempSync(path.join(os.tmpdir(), 'icros-cli-home-'));
  });
  after(async () => {
    await proxy?.close();
    await fed?.stop();
  });
  // Each request the test's CLI runs made, and each answer they got, as the document says.
  afterEach(() => {
    expect(proxy.violations, 'exchanges off the OpenAPI document').to.deep.equal([]);
  });

  it('forward: 0 and one queued message per partner; 1 with the API code; 2 on usage', async () => {
    const id = await ingest();
    const ok = await withApi([
      'forward',
      id,
      '--to',
      'de',
      '--purpose',
      'Fraud investigation',
      '--legal-basis',
      'MLA',
    ]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/→ DE: forwarded \(AMBER, H1\) queued/);
    const msgs = await admin(url, tok, 'GET', `/api/messages?case=${id}`);
    expect(msgs.json.messages).to.have.length(1);

    const unknown = await withApi(['forward', id, '--to', 'XX', '--purpose', 'p', '--legal-basis', 'MLA']);
    expect(unknown.status).to.equal(1);
    expect(unknown.stderr).to.include('FORWARD_PARTNER_UNKNOWN').and.include('XX');
    const missing = await withApi(['forward', id, '--to', 'DE', '--legal-basis', 'MLA']);
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.include('--purpose');
    const noBasis = await withApi(['forward', id, '--to', 'DE', '--purpose', 'p']);
    expect(noBasis.status).to.equal(2);
    expect(noBasis.stderr).to.include('--legal-basis');
    const badTlp = await withApi([
      'forward',
      id,
      '--to',
      'DE',
      '--purpose',
      'p',
      '--legal-basis',
      'x',
      '--tlp',
      'PINK',
    ]);
    expect(badTlp.status).to.equal(2);
  });

  it('withdraw: 0 with the messages as JSON, then 1 CASE_WITHDRAWN; forward after it is refused', async () => {
    const id = await ingest();
    expect(
      (await withApi(['forward', id, '--to', 'DE', '--purpose', 'p', '--legal-basis', 'MLA', '--code', 'H3']))
        .status,
    ).to.equal(0);
    const w = await withApi(['withdraw', id, '--purpose', 'Retracted', '--reason', 'duplicate', '--json']);
    expect(w.status, w.stderr).to.equal(0);
    const out = JSON.parse(w.stdout);
    expect(out.messages).to.have.length(1);
    expect(out.messages[0]).to.include({ to: 'DE', state: 'queued' });
    const again = await withApi(['withdraw', id, '--purpose', 'Retracted']);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.include('CASE_WITHDRAWN');
    const fwd = await withApi(['forward', id, '--to', 'DE', '--purpose', 'p', '--legal-basis', 'MLA']);
    expect(fwd.status).to.equal(1);
    expect(fwd.stderr).to.include('CASE_WITHDRAWN');
    expect((await withApi(['withdraw', id])).status).to.equal(2);
  });

  it('cases list / show: 0 with data; --all follows pages; 1 for an unknown case; 2 for a bad option', async () => {
    const ids = [await ingest(), await ingest()];
    const all = await withApi([
      'cases',
      'list',
      '--limit',
      '1',
      '--all',
      '--received-from',
      'none',
      '--json',
    ]);
    expect(all.status, all.stderr).to.equal(0);
    const listed = JSON.parse(all.stdout) as { cases: { id: string }[]; next: null };
    for (const id of ids) expect(listed.cases.map((c) => c.id)).to.include(id);
    expect(listed.next).to.equal(null);
    const one = await withApi(['cases', 'list', '--limit', '1']);
    expect(one.status).to.equal(0);
    expect(one.stdout).to.include('FR/FR-PHAROS').and.include('… more');
    expect((await withApi(['cases', 'list', '--withdrawn', 'maybe'])).status).to.equal(2);
    const refused = await withApi(['cases', 'list', '--origin', 'FRA']);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.include('REQUEST_INVALID').and.include('?origin');

    const show = await withApi(['cases', 'show', ids[0]!]);
    expect(show.status, show.stderr).to.equal(0);
    expect(show.stdout).to.include(`case ${ids[0]} version 1`).and.include('"summary"');
    const nope = await withApi(['cases', 'show', crypto.randomUUID()]);
    expect(nope.status).to.equal(1);
    expect(nope.stderr).to.include('CASE_NOT_FOUND');
  });

  it('cases export: one file per case in --out DIR, goes on past a refused id and exits 1; usage errors exit 2', async () => {
    const ids = [await ingest(), await ingest()];
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'icros-export-')), 'out');
    const ok = await withApi([
      'cases',
      'export',
      ...ids,
      '--format',
      'stix-2.1',
      '--purpose',
      'Court file',
      '--out',
      dir,
    ]);
    expect(ok.status, ok.stderr).to.equal(0);
    for (const id of ids) {
      const body = JSON.parse(readFileSync(path.join(dir, `${id}.stix-2.1.json`), 'utf8'));
      expect(body.type).to.equal('bundle');
    }
    expect(ok.stderr).to.include('marked H1');

    const missing = crypto.randomUUID();
    const partial = await withApi(['cases', 'export', missing, ids[0]!, '--purpose', 'p', '--out', dir]);
    expect(partial.status).to.equal(1);
    expect(partial.stderr).to.include(`✗ ${missing}: CASE_NOT_FOUND`);
    expect(existsSync(path.join(dir, `${ids[0]}.icros-case.json`))).to.equal(true);

    const single = await withApi(['cases', 'export', ids[0]!, '--purpose', 'p', '--format', 'de-xml']);
    expect(single.status).to.equal(0);
    expect(single.stdout).to.include('<Weitergabe TLP="AMBER" Code="H1"');
    expect((await withApi(['cases', 'export', ids[0]!, '--format', 'de-xml'])).status).to.equal(2);
    expect((await withApi(['cases', 'export', ...ids, '--purpose', 'p'])).status).to.equal(2);
    const badFormat = await withApi(['cases', 'export', ids[0]!, '--purpose', 'p', '--format', 'nope']);
    expect(badFormat.status).to.equal(1);
    expect(badFormat.stderr).to.include('FORMAT_UNSUPPORTED');
  });

  it('takes server and token from flags, then environment, then the CLI profile file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-profile-'));
    const good = path.join(dir, 'good.json');
    const badToken = path.join(dir, 'bad-token.json');
    writeFileSync(good, JSON.stringify({ server: url, token: tok }));
    writeFileSync(badToken, JSON.stringify({ server: url, token: 'icros_wrong' }));
    for (const f of [good, badToken]) chmodSync(f, 0o600);
    const list = ['cases', 'list', '--limit', '1', '--json'];

    expect((await run(list)).status, 'nothing configured').to.equal(2);
    const fromFile = await run([...list, '--profile', good]);
    expect(fromFile.status, fromFile.stderr).to.equal(0);
    expect(fromFile.stderr).to.not.include('warning');
    expect((await run(list, { ICROS_CONFIG: good })).status, 'ICROS_CONFIG').to.equal(0);
    // The file's token is wrong: the flag and then the environment win over it.
    const wrong = await run(list, { ICROS_CONFIG: badToken });
    expect(wrong.status).to.equal(1);
    expect(wrong.stderr).to.include('AUTH_INVALID');
    expect((await run([...list, '--token', tok], { ICROS_CONFIG: badToken })).status, 'flag > file').to.equal(
      0,
    );
    expect((await run(list, { ICROS_CONFIG: badToken, ICROS_TOKEN: tok })).status, 'env > file').to.equal(0);
    expect(
      (await run([...list, '--token', 'icros_wrong'], { ICROS_CONFIG: good, ICROS_TOKEN: tok })).status,
      'flag > env',
    ).to.equal(1);
    // A server flag pointing nowhere wins over the file's good server.
    const nowhere = await run([...list, '--server', `http://127.0.0.1:${await freePort()}`], {
      ICROS_CONFIG: good,
    });
    expect(nowhere.status).to.equal(1);
    expect(nowhere.stderr).to.include('SERVER_UNREACHABLE');

    // The default file under XDG_CONFIG_HOME, and a warning when others can read it.
    mkdirSync(path.join(home, 'icros'), { recursive: true });
    const dflt = path.join(home, 'icros', 'cli.json');
    writeFileSync(dflt, JSON.stringify({ server: url, token: tok }));
    chmodSync(dflt, 0o644);
    const viaDefault = await run(list);
    expect(viaDefault.status, viaDefault.stderr).to.equal(0);
    expect(viaDefault.stderr).to.include('readable by others');
    // Other API commands read it too.
    expect((await run(['messages', 'list', '--limit', '1'])).status).to.equal(0);

    const absent = await run([...list, '--profile', path.join(dir, 'absent.json')]);
    expect(absent.status).to.equal(2);
    expect(absent.stderr).to.include('ENOENT');
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, JSON.stringify({ server: url, tokn: tok }));
    const invalid = await run([...list, '--profile', broken]);
    expect(invalid.status).to.equal(1);
    expect(invalid.stderr).to.include('CONFIG_INVALID').and.include('/tokn');
  });
});
