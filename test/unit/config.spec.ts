import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.js';
import { algFor, SIGNING_ALGS } from '../../src/envelope/jws-crypto.js';
import { isIcrosError } from '../../src/errors.js';
import { log } from '../../src/log.js';
import { testPki } from '../helpers/federation.js';

describe('config', () => {
  let file: string;
  before(async () => {
    file = path.join(await testPki(), 'FR', 'gateway.json');
  });

  function expectInvalid(fn: () => unknown, location: RegExp) {
    try {
      fn();
    } catch (err) {
      expect(isIcrosError(err, 'CONFIG_INVALID'), String(err)).to.equal(true);
      expect((err as Error).message).to.match(location);
      return;
    }
    expect.fail('expected CONFIG_INVALID');
  }

  it('loads the dev gateway.json with defaults and frozen', () => {
    const c = loadConfig(file, {}, {});
    expect(c.country).to.equal('FR');
    expect(c.limits.maxBodyBytes).to.equal(2 * 1024 * 1024);
    expect(c.delivery.maxAttempts).to.equal(100);
    expect(c.partners.map((p) => p.country)).to.have.members(['DE', 'BE']);
    expect(Object.isFrozen(c.delivery)).to.equal(true);
  });

  it('gives each partner the global delivery policy with its own overrides', async () => {
    const doc = JSON.parse(await readFile(file, 'utf8'));
    const c = loadConfig(
      file,
      {
        delivery: { maxAttempts: 7, concurrency: 8 },
        partners: doc.partners.map((p: { country: string }) =>
          p.country === 'DE' ? { ...p, delivery: { maxAttempts: 3, ratePerSecond: 50 } } : p,
        ),
      },
      {},
    );
    const de = c.partners.find((p) => p.country === 'DE')!.delivery;
    const be = c.partners.find((p) => p.country === 'BE')!.delivery;
    expect(de).to.deep.include({ maxAttempts: 3, ratePerSecond: 50, concurrency: 8, maxAgeSeconds: 604800 });
    expect(be).to.deep.include({ maxAttempts: 7, ratePerSecond: 0, circuitFailureThreshold: 5 });
    expectInvalid(
      () =>
        loadConfig(
          file,
          { partners: doc.partners.map((p: object) => ({ ...p, delivery: { maxAttempts: 0 } })) },
          {},
        ),
      /\/partners\/0\/delivery\/maxAttempts/,
    );
  });

  it('keeps private keys out of JSON and enumeration', () => {
    const c = loadConfig(file, {}, {});
    const dump = JSON.stringify(c);
    expect(dump).to.not.include('PRIVATE KEY');
    expect(Object.keys(c.tls)).to.not.include('keyPem');
    expect(c.tls.keyPem).to.include('PRIVATE KEY');
  });

  it('names the field and what is expected when a value is wrong', () => {
    expectInvalid(
      () => loadConfig(file, { listen: { partner: { port: 'eight' } } }, {}),
      /\/listen\/partner\/port.*integer/,
    );
    expectInvalid(() => loadConfig(file, { surprise: 1 }, {}), /surprise/);
    expectInvalid(() => loadConfig(file, { country: 'France' }, {}), /\/country/);
  });

  it('names an unreadable PEM file', () => {
    expectInvalid(
      () => loadConfig(file, { signing: { cert: 'missing.crt' } }, {}),
      /\/signing\/cert.*missing\.crt/,
    );
  });

  it('refuses a signing alg that does not fit the signing key, naming the one that does', async () => {
    const key = createPrivateKey(await readFile(path.join(path.dirname(file), 'sign.key'), 'utf8'));
    const fits = algFor(key)!;
    for (const wrong of SIGNING_ALGS.filter((alg) => alg !== fits)) {
      expectInvalid(
        () => loadConfig(file, { signing: { alg: wrong } }, {}),
        new RegExp(
          `/signing/alg is ${wrong}, which does not fit the .* key in /signing/key: set it to ${fits}$`,
        ),
      );
    }
    expect(loadConfig(file, { signing: { alg: fits } }, {}).signing.alg).to.equal(fits);
    const p384 = path.join(await mkdtemp(path.join(os.tmpdir(), 'icros-cfg-')), 'p384.key');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await writeFile(p384, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    expectInvalid(
      () => loadConfig(file, { signing: { key: p384, alg: 'ES256' } }, {}),
      /\/signing\/alg is ES256, which does not fit the EC secp384r1 key .*fits none of PS256, ES256, EdDSA/,
    );
  });

  it('takes the signing alg from the key when the config names none', async () => {
    const doc = JSON.parse(await readFile(file, 'utf8'));
    const key = createPrivateKey(await readFile(path.join(path.dirname(file), 'sign.key'), 'utf8'));
    delete doc.signing.alg;
    const bare = path.join(path.dirname(file), 'no-alg.json');
    await writeFile(bare, JSON.stringify(doc));
    expect(loadConfig(bare, {}, {}).signing.alg).to.equal(algFor(key));
    const p384 = path.join(await mkdtemp(path.join(os.tmpdir(), 'icros-cfg-')), 'p384.key');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await writeFile(p384, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    expectInvalid(
      () => loadConfig(bare, { signing: { key: p384 } }, {}),
      /\/signing\/key \(EC secp384r1\) fits none of PS256, ES256, EdDSA$/,
    );
  });

  it('refuses a partner listed twice or the gateway itself', async () => {
    const doc = JSON.parse(await readFile(file, 'utf8'));
    const dir = path.dirname(file);
    const twice = path.join(dir, 'twice.json');
    await writeFile(twice, JSON.stringify({ ...doc, partners: [doc.partners[0], doc.partners[0]] }));
    expectInvalid(() => loadConfig(twice, {}, {}), /listed twice/);
    const self = path.join(dir, 'self.json');
    await writeFile(self, JSON.stringify({ ...doc, partners: [{ ...doc.partners[0], country: 'FR' }] }));
    expectInvalid(() => loadConfig(self, {}, {}), /cannot list itself/);
  });

  it('applies DATABASE_URL, LOG_LEVEL and port overrides from the environment', () => {
    const c = loadConfig(
      file,
      {},
      { DATABASE_URL: 'postgres://u@h/db', LOG_LEVEL: 'debug', ICROS_ADMIN_PORT: '9999' },
    );
    expect(c.database.url).to.equal('postgres://u@h/db');
    expect(c.database.dir).to.equal(undefined);
    expect(c.logLevel).to.equal('debug');
    expect(c.listen.admin.port).to.equal(9999);
  });

  it('reports an unreadable file as CONFIG_UNREADABLE', async () => {
    const missing = path.join(await mkdtemp(path.join(os.tmpdir(), 'icros-cfg-')), 'nope.json');
    try {
      loadConfig(missing, {}, {});
      expect.fail('expected an error');
    } catch (err) {
      expect(isIcrosError(err, 'CONFIG_UNREADABLE')).to.equal(true);
    }
  });

  it('redacts secret-looking fields in log lines', () => {
    const lines: string[] = [];
    const transport = log.transports[0]!;
    const orig = (transport as unknown as { log: (info: unknown, next: () => void) => void }).log;
    (transport as unknown as { log: (info: Record<symbol, string>, next: () => void) => void }).log = (
      info,
      next,
    ) => {
      lines.push(info[Symbol.for('message')]!);
      next();
    };
    // Gateways started by other suites set the process-wide level (tests use 'error').
    const level = log.level;
    log.level = 'info';
    try {
      log.info('test line', { token: 'icros_secret', nested: { authorization: 'Bearer x', partner: 'DE' } });
    } finally {
      log.level = level;
      (transport as unknown as { log: typeof orig }).log = orig;
    }
    expect(lines.join('\n')).to.not.include('icros_secret').and.not.include('Bearer x');
    expect(lines.join('\n')).to.include('"partner":"DE"');
  });
});
