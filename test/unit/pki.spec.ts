import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.js';
import { PkiError } from '../../src/pki/errors.js';
import { initPki, type PkiLayout } from '../../src/pki/init.js';
import { createRootCa } from '../../src/pki/issue.js';
import { extensionsOf, openssl } from '../helpers/certs.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

interface Partner {
  country: string;
  agency: string;
  url: string;
  tlsFingerprints: string[];
  signingCerts: string[];
  algorithms: string[];
}
interface GatewayJson {
  country: string;
  agency: string;
  listen: { partner: { host: string; port: number }; admin: { host: string; port: number } };
  database: { dir: string };
  tls: { cert: string; key: string; ca: string[] };
  signing: { cert: string; key: string; alg: string };
  partners: Partner[];
  admin: { tokens: { name: string; role: string; sha256: string }[] };
}

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icros-pki-'));
  tempDirs.push(dir);
  return dir;
}
const text = (path: string): Promise<string> => readFile(path, 'utf8');
const cert = async (path: string): Promise<X509Certificate> => new X509Certificate(await text(path));
const gatewayJson = async (dir: string, cc: string): Promise<GatewayJson> =>
  JSON.parse(await text(join(dir, cc, 'gateway.json'))) as GatewayJson;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return expect.fail('expected a rejection');
}

after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('pki/initPki', () => {
  let dir: string;
  let layout: PkiLayout;
  const lines: string[] = [];

  before(async () => {
    dir = await tempDir();
    layout = await initPki({ dir, countries: ['FR', 'de', 'BE'], log: (line) => lines.push(line) });
  });

  it('writes every file of the DESIGN §6 layout and reports it', async () => {
    expect(layout).to.deep.equal({ dir, caCert: join(dir, 'ca.crt'), countries: ['FR', 'DE', 'BE'] });
    const files = ['ca.crt', 'ca.key'];
    for (const cc of ['FR', 'DE', 'BE']) {
      for (const name of [
        'tls.crt',
        'tls.key',
        'sign.crt',
        'sign.key',
        'gateway.json',
        'admin-tokens.json',
      ]) {
        files.push(join(cc, name));
      }
    }
    for (const file of files) expect((await stat(join(dir, file))).size, file).to.be.greaterThan(0);
    expect(lines.some((line) => line.startsWith('created CA'))).to.equal(true);
  });

  it('writes private keys and admin tokens with mode 0600', async () => {
    const secrets = ['ca.key'];
    for (const cc of ['FR', 'DE', 'BE'])
      secrets.push(`${cc}/tls.key`, `${cc}/sign.key`, `${cc}/admin-tokens.json`);
    for (const file of secrets) expect((await stat(join(dir, file))).mode & 0o777, file).to.equal(0o600);
  });

  it('creates the dev federation root CA', async () => {
    const ca = await cert(join(dir, 'ca.crt'));
    expect(ca.ca).to.equal(true);
    expect(ca.subject).to.equal('CN=ICROS Dev Federation Root CA');
    expect(ca.checkPrivateKey(createPrivateKey(await text(join(dir, 'ca.key'))))).to.equal(true);
  });

  it('issues TLS certs for mutual TLS on loopback, chained to the CA', async () => {
    const ca = await cert(join(dir, 'ca.crt'));
    const tlsCert = await cert(join(dir, 'FR/tls.crt'));
    expect(tlsCert.checkIssued(ca)).to.equal(true);
    expect(tlsCert.verify(ca.publicKey)).to.equal(true);
    expect(tlsCert.checkHost('localhost')).to.equal('localhost');
    expect(tlsCert.checkIP('127.0.0.1')).to.equal('127.0.0.1');
    expect(tlsCert.checkIP('::1')).to.equal('::1');
    expect(tlsCert.ca).to.equal(false);
    expect(tlsCert.keyUsage).to.have.members([SERVER_AUTH, CLIENT_AUTH]);
    expect(tlsCert.subject).to.include('CN=FR gateway (dev)').and.include('C=FR');
    expect(tlsCert.checkPrivateKey(createPrivateKey(await text(join(dir, 'FR/tls.key'))))).to.equal(true);
    const ku = extensionsOf(await text(join(dir, 'FR/tls.crt'))).get('keyUsage');
    expect(ku).to.include({
      critical: true,
      digitalSignature: true,
      keyEncipherment: true,
      keyCertSign: false,
    });
  });

  it('issues ES256 (EC P-256) signing certs by default, that are not TLS certs', async () => {
    const ca = await cert(join(dir, 'ca.crt'));
    const signCert = await cert(join(dir, 'DE/sign.crt'));
    expect(signCert.publicKey.asymmetricKeyType).to.equal('ec');
    expect(signCert.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
    expect(signCert.checkPrivateKey(createPrivateKey(await text(join(dir, 'DE/sign.key'))))).to.equal(true);
    expect(signCert.checkIssued(ca)).to.equal(true);
    expect(signCert.verify(ca.publicKey)).to.equal(true);
    expect(signCert.ca).to.equal(false);
    expect(signCert.keyUsage ?? [])
      .to.not.include(SERVER_AUTH)
      .and.not.include(CLIENT_AUTH);
    expect(signCert.subject).to.include('CN=DE message signing (dev)');
    const ku = extensionsOf(await text(join(dir, 'DE/sign.crt'))).get('keyUsage');
    expect(ku).to.include({ critical: true, digitalSignature: true, nonRepudiation: true });
    expect(lines).to.include('issued DE TLS and signing certificates (signing ES256)');
  });

  it('wires every gateway.json to the other countries and never to itself', async () => {
    const fingerprints: Record<string, string> = {};
    for (const cc of ['FR', 'DE', 'BE'])
      fingerprints[cc] = (await cert(join(dir, cc, 'tls.crt'))).fingerprint256;
    for (const cc of ['FR', 'DE', 'BE']) {
      const config = await gatewayJson(dir, cc);
      expect(config.country).to.equal(cc);
      expect(config.agency).to.equal(`${cc}-DEV`);
      const others = ['FR', 'DE', 'BE'].filter((other) => other !== cc);
      expect(config.partners.map((p) => p.country)).to.deep.equal(others);
      for (const partner of config.partners) {
        expect(partner.agency).to.equal(`${partner.country}-DEV`);
        expect(partner.tlsFingerprints).to.deep.equal([fingerprints[partner.country]]);
        expect(partner.algorithms).to.deep.equal(['ES256']);
        // Paths are relative to the gateway.json's folder.
        const signPath = resolve(dir, cc, partner.signingCerts[0] ?? '');
        expect(signPath).to.equal(join(dir, partner.country, 'sign.crt'));
      }
      expect(resolve(dir, cc, config.tls.ca[0] ?? '')).to.equal(join(dir, 'ca.crt'));
      expect(config.tls).to.include({ cert: 'tls.crt', key: 'tls.key' });
      expect(config.signing).to.deep.equal({ cert: 'sign.crt', key: 'sign.key', alg: 'ES256' });
      expect(config.database).to.deep.equal({ dir: 'data' });
    }
  });

  it('stores only the SHA-256 of each dev token', async () => {
    const fr = JSON.parse(await text(join(dir, 'FR/admin-tokens.json'))) as Record<string, string>;
    const config = await gatewayJson(dir, 'FR');
    expect(Object.keys(fr)).to.have.members(['analyst', 'auditor', 'admin']);
    for (const role of ['analyst', 'auditor', 'admin']) {
      const token = fr[role] ?? '';
      expect(token).to.match(/^icros_[\w-]{43}$/);
      const entry = config.admin.tokens.find((t) => t.role === role);
      expect(entry?.name).to.equal(`dev-${role}`);
      expect(entry?.sha256).to.equal(createHash('sha256').update(token).digest('hex'));
    }
    expect(await text(join(dir, 'FR/gateway.json'))).to.not.include(fr.admin);
    const de = JSON.parse(await text(join(dir, 'DE/admin-tokens.json'))) as Record<string, string>;
    expect(de.admin).to.not.equal(fr.admin);
  });

  it('uses the demo ports: FR 8443/8080, DE 9443/9080, then +1000', async () => {
    const expected = { FR: [8443, 8080], DE: [9443, 9080], BE: [10443, 10080] };
    for (const [cc, [partner, admin]] of Object.entries(expected)) {
      const config = await gatewayJson(dir, cc);
      expect(config.listen).to.deep.equal({
        partner: { host: '127.0.0.1', port: partner },
        admin: { host: '127.0.0.1', port: admin },
      });
    }
    const fr = await gatewayJson(dir, 'FR');
    expect(fr.partners.find((p) => p.country === 'DE')?.url).to.equal('https://127.0.0.1:9443');
  });

  it('completes a TLS 1.3 mutual handshake between FR and DE matching the registered fingerprints', async () => {
    const ca = await text(join(dir, 'ca.crt'));
    const server = tls.createServer({
      cert: await text(join(dir, 'FR/tls.crt')),
      key: await text(join(dir, 'FR/tls.key')),
      ca: [ca],
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: true,
    });
    const seenByServer = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      // No servername: the client checks the 127.0.0.1 IP SAN.
      const client = tls.connect({
        host: '127.0.0.1',
        port,
        cert: await text(join(dir, 'DE/tls.crt')),
        key: await text(join(dir, 'DE/tls.key')),
        ca: [ca],
        minVersion: 'TLSv1.3',
      });
      await once(client, 'secureConnect');
      const [serverSide] = await seenByServer;
      expect(client.authorized).to.equal(true);
      expect(serverSide.authorized).to.equal(true);
      expect(client.getProtocol()).to.equal('TLSv1.3');
      const frConfig = await gatewayJson(dir, 'FR');
      const deConfig = await gatewayJson(dir, 'DE');
      const de = frConfig.partners.find((p) => p.country === 'DE');
      const fr = deConfig.partners.find((p) => p.country === 'FR');
      expect(serverSide.getPeerCertificate().fingerprint256).to.equal(de?.tlsFingerprints[0]);
      expect(client.getPeerCertificate().fingerprint256).to.equal(fr?.tlsFingerprints[0]);
      client.destroy();
      serverSide.destroy();
    } finally {
      server.close();
    }
  });

  it('gets a signing cert refused as a TLS client cert (extKeyUsage documentSigning)', async () => {
    const ca = await text(join(dir, 'ca.crt'));
    // rejectUnauthorized: false so the verify result is readable; with true Node just drops the socket.
    const server = tls.createServer({
      cert: await text(join(dir, 'FR/tls.crt')),
      key: await text(join(dir, 'FR/tls.key')),
      ca: [ca],
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: false,
    });
    const seenByServer = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const client = tls.connect({
        host: '127.0.0.1',
        port,
        cert: await text(join(dir, 'DE/sign.crt')),
        key: await text(join(dir, 'DE/sign.key')),
        ca: [ca],
        minVersion: 'TLSv1.3',
      });
      client.on('error', () => {});
      const [serverSide] = await seenByServer;
      expect(serverSide.authorized).to.equal(false);
      expect(serverSide.authorizationError).to.equal('INVALID_PURPOSE');
      client.destroy();
      serverSide.destroy();
    } finally {
      server.close();
    }
  });
});

describe('pki/initPki country list', () => {
  for (const bad of [['FRA'], [''], ['FR', 'DE', 'fr'], []]) {
    it(`rejects ${JSON.stringify(bad)} with PKI_BAD_COUNTRIES before writing anything`, async () => {
      const dir = await tempDir();
      const err = await rejection(initPki({ dir, countries: bad }));
      expect(err).to.be.instanceOf(PkiError);
      expect((err as PkiError).code).to.equal('PKI_BAD_COUNTRIES');
      // The message names the offending entry as given.
      if (bad.length > 0) expect((err as Error).message).to.include(JSON.stringify(bad.at(-1)));
      expect(await rejection(stat(join(dir, 'ca.crt')))).to.have.property('code', 'ENOENT');
    });
  }
});

describe('pki/initPki signing algorithms', () => {
  const keyType = async (dir: string, cc: string) => {
    const key = (await cert(join(dir, cc, 'sign.crt'))).publicKey;
    return `${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`;
  };
  /** Each gateway.json's own alg and, for each of its partners, the algorithms it accepts. */
  const wiring = async (dir: string, countries: string[]) => {
    const out: Record<string, unknown> = {};
    for (const cc of countries) {
      const config = await gatewayJson(dir, cc);
      out[cc] = {
        signs: config.signing.alg,
        accepts: Object.fromEntries(config.partners.map((p) => [p.country, p.algorithms])),
      };
      // The gateway itself starts from it: loadConfig refuses an alg that does not fit the key.
      expect(loadConfig(join(dir, cc, 'gateway.json'), {}, {}).signing.alg).to.equal(config.signing.alg);
    }
    return out;
  };

  it('issues EdDSA (Ed25519) signing certs when asked, and wires every gateway.json to EdDSA', async () => {
    const dir = await tempDir();
    const lines: string[] = [];
    await initPki({ dir, countries: ['FR', 'DE'], signAlg: 'EdDSA', log: (line) => lines.push(line) });
    expect(await keyType(dir, 'FR')).to.equal('ed25519');
    expect(await keyType(dir, 'DE')).to.equal('ed25519');
    expect(await wiring(dir, ['FR', 'DE'])).to.deep.equal({
      FR: { signs: 'EdDSA', accepts: { DE: ['EdDSA'] } },
      DE: { signs: 'EdDSA', accepts: { FR: ['EdDSA'] } },
    });
    expect(lines).to.include('issued FR TLS and signing certificates (signing EdDSA)');
  });

  it('keeps the key of a country from an earlier run and derives every alg from the keys on disk', async () => {
    const dir = await tempDir();
    await initPki({ dir, countries: ['FR', 'DE'], signAlg: 'PS256' });
    const frSign = await text(join(dir, 'FR/sign.crt'));
    // gateway.json is rewritten from the keys, so what an earlier run wrote there does not count.
    const frJson = await gatewayJson(dir, 'FR');
    await writeFile(
      join(dir, 'FR/gateway.json'),
      JSON.stringify({ ...frJson, signing: { ...frJson.signing, alg: 'EdDSA' } }),
    );
    const lines: string[] = [];
    await initPki({ dir, countries: ['NL'], log: (line) => lines.push(line) });
    await initPki({ dir, countries: ['BE'], signAlg: 'EdDSA' });
    expect(await text(join(dir, 'FR/sign.crt'))).to.equal(frSign);
    expect(await keyType(dir, 'FR')).to.equal('rsa');
    expect(await keyType(dir, 'NL')).to.equal('ec prime256v1');
    expect(await keyType(dir, 'BE')).to.equal('ed25519');
    expect(lines).to.include.members([
      'keeping FR (signing PS256)',
      'keeping DE (signing PS256)',
      'issued NL TLS and signing certificates (signing ES256)',
    ]);
    expect(await wiring(dir, ['FR', 'DE', 'NL', 'BE'])).to.deep.equal({
      FR: { signs: 'PS256', accepts: { DE: ['PS256'], NL: ['ES256'], BE: ['EdDSA'] } },
      DE: { signs: 'PS256', accepts: { FR: ['PS256'], NL: ['ES256'], BE: ['EdDSA'] } },
      NL: { signs: 'ES256', accepts: { FR: ['PS256'], DE: ['PS256'], BE: ['EdDSA'] } },
      BE: { signs: 'EdDSA', accepts: { FR: ['PS256'], DE: ['PS256'], NL: ['ES256'] } },
    });

    // force reissues every country with the alg asked for.
    await initPki({ dir, countries: ['FR'], force: true, signAlg: 'ES256' });
    for (const cc of ['FR', 'DE', 'NL', 'BE']) expect(await keyType(dir, cc), cc).to.equal('ec prime256v1');
    expect(((await wiring(dir, ['FR'])).FR as { accepts: unknown }).accepts).to.deep.equal({
      BE: ['ES256'],
      DE: ['ES256'],
      NL: ['ES256'],
    });
  });

  it('rejects another alg with PKI_BAD_ALG before writing anything', async () => {
    const dir = await tempDir();
    const err = await rejection(initPki({ dir, countries: ['FR'], signAlg: 'RS256' as 'PS256' }));
    expect(err).to.be.instanceOf(PkiError);
    expect((err as PkiError).code).to.equal('PKI_BAD_ALG');
    expect((err as Error).message)
      .to.include('"RS256"')
      .and.include('PS256, ES256, EdDSA');
    expect(await rejection(stat(join(dir, 'ca.crt')))).to.have.property('code', 'ENOENT');
  });

  it('refuses a kept sign.crt whose key fits no algorithm (PKI_BAD_CERT) before writing anything', async () => {
    const dir = await tempDir();
    await initPki({ dir, countries: ['FR'] });
    // A P-384 certificate from the same CA, as an operator might make with OpenSSL.
    const key = join(dir, 'FR/sign.key');
    openssl(['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', key]);
    const csr = openssl(['req', '-new', '-key', key, '-subj', '/CN=FR p384']);
    const p384 = openssl(
      [
        'x509',
        '-req',
        '-CA',
        join(dir, 'ca.crt'),
        '-CAkey',
        join(dir, 'ca.key'),
        '-set_serial',
        '7',
        '-days',
        '1',
      ],
      csr,
    );
    await writeFile(join(dir, 'FR/sign.crt'), p384);
    const before = await text(join(dir, 'FR/gateway.json'));
    const err = await rejection(initPki({ dir, countries: ['DE'] }));
    expect(err).to.be.instanceOf(PkiError);
    expect((err as PkiError).code).to.equal('PKI_BAD_CERT');
    expect((err as Error).message)
      .to.include('FR/sign.crt')
      .and.include('secp384r1');
    expect(await rejection(stat(join(dir, 'DE')))).to.have.property('code', 'ENOENT');
    expect(await text(join(dir, 'FR/gateway.json'))).to.equal(before);
  });
});

describe('pki/initPki disk errors', () => {
  it('reports an unusable directory as PKI_IO with the cause attached', async () => {
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, '');
    const err = await rejection(initPki({ dir: file, countries: ['FR'] }));
    expect(err).to.be.instanceOf(PkiError);
    expect((err as PkiError).code).to.equal('PKI_IO');
    expect((err as PkiError).cause).to.have.property('code', 'EEXIST');
  });
});

describe('pki/initPki re-run', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
    await initPki({ dir, countries: ['FR', 'DE'] });
  });

  it('reuses the CA, keeps existing countries and wires a new one into every gateway.json', async () => {
    const before = {
      ca: await text(join(dir, 'ca.crt')),
      frTls: await text(join(dir, 'FR/tls.crt')),
      frTokens: await text(join(dir, 'FR/admin-tokens.json')),
    };
    await chmod(join(dir, 'FR/admin-tokens.json'), 0o644);
    const lines: string[] = [];
    // Only NL is named: FR and DE are found in the folder and stay federated.
    const layout = await initPki({ dir, countries: ['nl'], log: (line) => lines.push(line) });
    expect(layout.countries).to.deep.equal(['NL', 'DE', 'FR']);
    expect(await text(join(dir, 'ca.crt'))).to.equal(before.ca);
    expect(await text(join(dir, 'FR/tls.crt'))).to.equal(before.frTls);
    expect(await text(join(dir, 'FR/admin-tokens.json'))).to.equal(before.frTokens);
    expect((await stat(join(dir, 'FR/admin-tokens.json'))).mode & 0o777).to.equal(0o600);
    expect(lines).to.include(`reusing CA ${join(dir, 'ca.crt')}`);

    const nlTls = await cert(join(dir, 'NL/tls.crt'));
    expect(nlTls.checkIssued(new X509Certificate(before.ca))).to.equal(true);
    const fr = await gatewayJson(dir, 'FR');
    expect(fr.partners.map((p) => p.country)).to.have.members(['DE', 'NL']);
    expect(fr.partners.find((p) => p.country === 'NL')?.tlsFingerprints).to.deep.equal([
      nlTls.fingerprint256,
    ]);
    expect((await gatewayJson(dir, 'DE')).partners.map((p) => p.country)).to.have.members(['FR', 'NL']);
    expect((await gatewayJson(dir, 'NL')).partners.map((p) => p.country)).to.have.members(['FR', 'DE']);
    // FR and DE keep 8443 and 9443; NL (position 0) moves on to the first free slot.
    expect(fr.listen.partner.port).to.equal(8443);
    expect((await gatewayJson(dir, 'DE')).listen.partner.port).to.equal(9443);
    expect((await gatewayJson(dir, 'NL')).listen).to.deep.include({
      partner: { host: '127.0.0.1', port: 10443 },
    });
  });

  it('refuses folders issued by another CA unless forced, then reissues everything', async () => {
    const other = createRootCa({ commonName: 'Someone else' });
    await writeFile(join(dir, 'ca.crt'), other.certPem);
    await writeFile(join(dir, 'ca.key'), other.keyPem);
    const err = await rejection(initPki({ dir, countries: ['FR'] }));
    expect(err).to.be.instanceOf(PkiError);
    expect((err as PkiError).code).to.equal('PKI_STALE_COUNTRY');

    const oldTokens = await text(join(dir, 'FR/admin-tokens.json'));
    const layout = await initPki({ dir, countries: ['FR', 'DE', 'NL'], force: true });
    const ca = await cert(layout.caCert);
    expect(ca.subject).to.equal('CN=ICROS Dev Federation Root CA');
    for (const cc of layout.countries) {
      expect((await cert(join(dir, cc, 'tls.crt'))).checkIssued(ca), cc).to.equal(true);
    }
    expect(await text(join(dir, 'FR/admin-tokens.json'))).to.not.equal(oldTokens);
    expect(dirname(layout.caCert)).to.equal(dir);
  });
});
