/**
 * `icros users add|list|revoke`: the first admin created offline on the gateway's own
 * database (`--config`, audited as an operator), then tokens managed through the admin API
 * with it; exit codes 0 ok, 1 refused, 2 usage.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.js';
import { type Gateway, startGateway } from '../../src/main.js';
import { icros } from '../helpers/cli.js';
import { admin, token } from '../helpers/clients.js';
import { conformingProxy } from '../helpers/conforming-proxy.js';
import { freePort, testPki } from '../helpers/federation.js';

/** The CLI with no server, token or database from the environment of the test run. */
const NO_ENV = { DATABASE_URL: '', REDIS_URL: '', ICROS_SERVER: '', ICROS_TOKEN: '' };
const run = (args: string[], env: Record<string, string> = {}) => icros(args, { ...NO_ENV, ...env });

describe('e2e icros users (pglite)', function () {
  this.timeout(180_000);
  let file: string;
  let gateway: Gateway | undefined;
  let bossToken: string;

  before(async () => {
    const pki = await testPki();
    const doc = JSON.parse(await readFile(path.join(pki, 'FR', 'gateway.json'), 'utf8'));
    doc.database = { dir: await mkdtemp(path.join(os.tmpdir(), 'icros-users-')) };
    doc.listen = {
      partner: { host: '127.0.0.1', port: await freePort() },
      admin: { host: '127.0.0.1', port: await freePort() },
    };
    doc.logLevel = 'error';
    // Beside gateway.json, so its relative PEM paths still resolve.
    file = path.join(pki, 'FR', `users-cli-${process.pid}.json`);
    await writeFile(file, JSON.stringify(doc));
  });
  after(async () => gateway?.stop());

  it('add --config creates the first admin offline: the token alone on stdout, exit 0', async () => {
    const r = await run(['users', 'add', 'boss', '--role', 'admin', '--config', file]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^icros_[A-Za-z0-9_-]{43}\n$/);
    expect(r.stderr).to.include('shown only this once');
    bossToken = r.stdout.trim();
  });

  it('exits 1 on a refused add and 2 on usage errors', async () => {
    const taken = await run(['users', 'add', 'boss', '--role', 'auditor', '--config', file]);
    expect(taken.status).to.equal(1);
    expect(taken.stderr).to.include('USER_NAME_TAKEN');
    const badRole = await run(['users', 'add', 'x', '--role', 'root', '--config', file]);
    expect(badRole.status).to.equal(2);
    expect(badRole.stderr).to.include('root');
    expect((await run(['users', 'add', 'x', '--config', file])).status).to.equal(2);
    const nowhere = await run(['users', 'list']);
    expect(nowhere.status).to.equal(2);
    expect(nowhere.stderr).to.include('--server');
    expect(
      (await run(['users', 'list', '--config', file, '--server', 'http://127.0.0.1:1'])).status,
    ).to.equal(2);
  });

  it('through the API with that admin: add --json, list, revoke; the revoked token is refused', async () => {
    gateway = await startGateway(loadConfig(file, {}, {}), { noWorker: true });
    // The CLI talks to it through a proxy that holds each exchange to the OpenAPI document.
    const proxy = await conformingProxy(gateway.adminUrl);
    const server = proxy.url;
    const added = await run([
      'users',
      'add',
      'ana',
      '--role',
      'analyst',
      '--server',
      server,
      '--token',
      bossToken,
      '--json',
    ]);
    expect(added.status, added.stderr).to.equal(0);
    const created = JSON.parse(added.stdout);
    expect(created).to.include({ name: 'ana', role: 'analyst' });
    expect((await admin(server, created.token, 'GET', '/api/messages')).status).to.equal(200);

    const listed = await run(['users', 'list', '--json'], { ICROS_SERVER: server, ICROS_TOKEN: bossToken });
    expect(listed.status, listed.stderr).to.equal(0);
    const users = JSON.parse(listed.stdout).users as { name: string; source: string; createdBy: string }[];
    expect(users.filter((u) => u.source === 'local').map((u) => [u.name, u.createdBy])).to.deep.equal([
      ['boss', `operator:${os.userInfo().username}@${os.hostname()}`],
      ['ana', 'boss'],
    ]);
    const table = await run(['users', 'list', '--server', server, '--token', bossToken]);
    expect(table.stdout).to.match(/^NAME/).and.include('dev-analyst').and.include('ana ');

    const revoked = await run(['users', 'revoke', 'ana', '--server', server, '--token', bossToken]);
    expect(revoked.status, revoked.stderr).to.equal(0);
    expect(revoked.stdout).to.match(/^ana: revoked at \d{4}-/);
    expect((await admin(server, created.token, 'GET', '/api/messages')).status).to.equal(401);
    const again = await run(['users', 'revoke', 'ana', '--server', server, '--token', bossToken]);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.include('USER_ALREADY_REVOKED');

    const asRevoked = await run([
      'users',
      'add',
      'y',
      '--role',
      'admin',
      '--server',
      server,
      '--token',
      created.token,
    ]);
    expect(asRevoked.status).to.equal(1);
    expect(asRevoked.stderr).to.include('AUTH_INVALID').and.include('revoked');
    const asAnalyst = await run([
      'users',
      'list',
      '--server',
      server,
      '--token',
      token(path.dirname(path.dirname(file)), 'FR'),
    ]);
    expect(asAnalyst.status).to.equal(1);
    expect(asAnalyst.stderr).to.include('ROLE_FORBIDDEN');

    const audit = await admin(server, bossToken, 'GET', '/api/audit?action=user.created');
    expect(audit.json.events.map((e: { actor: object }) => e.actor)).to.deep.equal([
      { kind: 'user', id: `operator:${os.userInfo().username}@${os.hostname()}` },
      { kind: 'user', id: 'boss' },
    ]);
    await proxy.close();
    expect(proxy.violations, 'exchanges off the OpenAPI document').to.deep.equal([]);
    await gateway.stop();
    gateway = undefined;
  });

  it('list --config reads the stopped gateway: the revoked token is shown revoked', async () => {
    const r = await run(['users', 'list', '--config', file, '--json']);
    expect(r.status, r.stderr).to.equal(0);
    const ana = JSON.parse(r.stdout).users.find((u: { name: string }) => u.name === 'ana');
    expect(ana.revokedAt).to.be.a('string');
  });
});
