import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';

const icros = (args: string[], timeout = 120_000) =>
  spawnSync(process.execPath, ['bin/icros.js', ...args], {
    encoding: 'utf8',
    timeout,
    env: { ...process.env, LOG_LEVEL: 'error' },
  });

describe('icros command', () => {
  it('prints help and exits 0', () => {
    const r = icros(['--help']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.include('demo').and.include('pki').and.include('gateway');
  });

  it('exits 2 on a usage error', () => {
    expect(icros(['no-such-command']).status).to.equal(2);
    expect(icros(['pki', 'init', '--dir', '/tmp/x']).status).to.equal(2);
  });

  it('exits 1 with the code and the bad value on a checked failure', () => {
    const r = icros([
      'pki',
      'init',
      '--dir',
      mkdtempSync(path.join(os.tmpdir(), 'icros-cli-')),
      '--countries',
      'FR,FRA',
    ]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('PKI_BAD_COUNTRIES').and.include('FRA');
  });

  it('pki init --sign-alg issues that kind of signing key, and refuses another alg as a usage error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-cli-'));
    const bad = icros(['pki', 'init', '--dir', dir, '--countries', 'FR', '--sign-alg', 'RS256']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.include("'RS256' is invalid").and.include('PS256, ES256, EdDSA');
    const r = icros(['pki', 'init', '--dir', dir, '--countries', 'FR,DE', '--sign-alg', 'EdDSA']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('issued FR TLS and signing certificates (signing EdDSA)');
    const doc = JSON.parse(readFileSync(path.join(dir, 'FR', 'gateway.json'), 'utf8'));
    expect(doc.signing.alg).to.equal('EdDSA');
    expect(doc.partners[0].algorithms).to.deep.equal(['EdDSA']);
  });

  it('exits 1 naming the field when gateway.json is invalid', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-cli-'));
    expect(icros(['pki', 'init', '--dir', dir, '--countries', 'FR,DE']).status).to.equal(0);
    const file = path.join(dir, 'FR', 'gateway.json');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.listen.partner.port = 'eight';
    writeFileSync(file, JSON.stringify(doc));
    const r = icros(['gateway', 'start', '--config', file]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('CONFIG_INVALID').and.include('/listen/partner/port');
  });

  it('schema validate: 0 for valid samples, 1 with located errors otherwise', () => {
    const ok = icros(['schema', 'validate', 'schemas/icros-case/samples/phishing-bank.json']);
    expect(ok.status, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.include('valid case');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-cli-'));
    const bad = path.join(dir, 'bad.json');
    const sample = JSON.parse(readFileSync('schemas/icros-case/samples/phishing-bank.json', 'utf8'));
    writeFileSync(bad, JSON.stringify({ ...sample, version: 0, surprise: true }));
    const r = icros(['schema', 'validate', '--json', bad]);
    expect(r.status).to.equal(1);
    const report = JSON.parse(r.stdout.trim());
    expect(report.valid).to.equal(false);
    expect(report.errors.map((e: { location: string }) => e.location)).to.include('/version');
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{"id": ');
    const b = icros(['schema', 'validate', broken]);
    expect(b.status).to.equal(1);
    expect(b.stdout).to.include('not readable as JSON');
  });

  it('demo --once exchanges every sample case FR → DE and exits 0', function () {
    this.timeout(180_000);
    const r = icros(['demo', '--once', '--dir', mkdtempSync(path.join(os.tmpdir(), 'icros-demo-'))], 170_000);
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/3\/3 cases delivered FR → DE, 3 receipts verified/);
    expect(r.stdout.match(/✓/g)).to.have.length(3);
  });
});
