import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import forge from 'node-forge';
import type { Partner, SigningAlg } from '../../src/config/load.js';
import { algFor } from '../../src/envelope/jws-crypto.js';
import { MESSAGE_TYP, signJws } from '../../src/envelope/sign.js';
import { verifyJws } from '../../src/envelope/verify.js';
import {
  assignPorts,
  hashToken,
  newDevTokens,
  normalizeCountries,
  parseDevTokens,
} from '../../src/pki/dev-config.js';
import { PkiError } from '../../src/pki/errors.js';
import {
  createRootCa,
  fingerprint256,
  type Issued,
  issueSigningCert,
  issueTlsCert,
  thumbprintS256,
} from '../../src/pki/issue.js';
import { extensionsOf, opensslSki, opensslVerify } from '../helpers/certs.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  expect.fail('expected a throw');
}

function expectCode(err: unknown, code: string): void {
  expect(err).to.be.instanceOf(PkiError);
  expect((err as PkiError).code).to.equal(code);
}

describe('pki/issue', () => {
  let ca: Issued;
  before(() => {
    ca = createRootCa({ commonName: 'Test Root', days: 30 });
  });

  it('creates a self-signed CA with critical basicConstraints and keyUsage', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).to.equal(true);
    expect(cert.checkIssued(cert)).to.equal(true);
    expect(cert.verify(cert.publicKey)).to.equal(true);
    expect(cert.checkPrivateKey(createPrivateKey(ca.keyPem))).to.equal(true);
    const parsed = forge.pki.certificateFromPem(ca.certPem);
    expect(parsed.getExtension('basicConstraints')).to.include({ cA: true, critical: true });
    expect(parsed.getExtension('keyUsage')).to.include({ keyCertSign: true, cRLSign: true, critical: true });
    expect(parsed.getExtension('subjectKeyIdentifier')).to.not.equal(undefined);
    expect(parsed.siginfo.algorithmOid).to.equal(forge.pki.oids.sha256WithRSAEncryption);
  });

  it('backdates notBefore by five minutes and uses a positive 16-byte serial', () => {
    const cert = new X509Certificate(ca.certPem);
    const skew = Date.now() - Date.parse(cert.validFrom);
    // validFrom has one-second resolution.
    expect(skew).to.be.within(4 * 60_000, 6 * 60_000);
    expect(cert.serialNumber).to.match(/^[4-7][0-9A-F]{31}$/);
  });

  it('issues TLS certs with custom SANs whose AKI lets OpenSSL find the issuer', () => {
    const leaf = issueTlsCert(ca, {
      commonName: 'gw',
      country: 'FR',
      dnsNames: ['gw.example'],
      ipAddresses: ['10.0.0.1', 'fe80::1'],
    });
    const cert = new X509Certificate(leaf.certPem);
    // checkIssued compares the AKI with the CA's SKI: a wrong key id fails here.
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).to.equal(true);
    expect(cert.checkHost('gw.example')).to.equal('gw.example');
    expect(cert.checkHost('localhost')).to.equal(undefined);
    expect(cert.checkIP('10.0.0.1')).to.equal('10.0.0.1');
    expect(cert.checkIP('fe80::1')).to.equal('fe80::1');
    expect(cert.keyUsage).to.have.members([SERVER_AUTH, CLIENT_AUTH]);
    expect(cert.subject).to.equal('C=FR\nCN=gw');
    expect(cert.issuer).to.equal('CN=Test Root');
  });

  it('never lets a leaf outlive its CA', () => {
    const leaf = issueSigningCert(ca, { commonName: 's', country: 'DE', days: 3650 });
    const leafEnd = Date.parse(new X509Certificate(leaf.certPem).validTo);
    expect(leafEnd).to.be.at.most(Date.parse(new X509Certificate(ca.certPem).validTo));
  });

  it('gives signing certs nonRepudiation and an extKeyUsage without TLS purposes', () => {
    const leaf = issueSigningCert(ca, { commonName: 's', country: 'DE', organization: 'BKA' });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.ca).to.equal(false);
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.36']);
    const ku = extensionsOf(leaf.certPem).get('keyUsage');
    expect(ku).to.include({
      digitalSignature: true,
      nonRepudiation: true,
      keyEncipherment: false,
      critical: true,
    });
    expect(cert.subject).to.equal('C=DE\nO=BKA\nCN=s');
  });

  it('computes fingerprint256 as Node TLS prints it and x5t#S256 over the DER', () => {
    expect(fingerprint256(ca.certPem)).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const der = Buffer.from(ca.certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    expect(thumbprintS256(ca.certPem)).to.equal(createHash('sha256').update(der).digest('base64url'));
    expect(fingerprint256(ca.certPem).replaceAll(':', '').toLowerCase()).to.equal(
      createHash('sha256').update(der).digest('hex'),
    );
  });

  it('rejects bad subjects, IPs, a non-CA issuer and a mismatched CA key', () => {
    expectCode(
      thrown(() => issueTlsCert(ca, { commonName: 'x', country: 'fr' })),
      'PKI_BAD_SUBJECT',
    );
    expectCode(
      thrown(() => issueTlsCert(ca, { commonName: '', country: 'FR' })),
      'PKI_BAD_SUBJECT',
    );
    expectCode(
      thrown(() => issueTlsCert(ca, { commonName: 'x', country: 'FR', ipAddresses: ['::ffff:1.2.3.4'] })),
      'PKI_BAD_SUBJECT',
    );
    const leaf = issueSigningCert(ca, { commonName: 's', country: 'DE' });
    expectCode(
      thrown(() => issueTlsCert(leaf, { commonName: 'x', country: 'FR' })),
      'PKI_BAD_CA',
    );
    expectCode(
      thrown(() =>
        issueTlsCert({ certPem: ca.certPem, keyPem: leaf.keyPem }, { commonName: 'x', country: 'FR' }),
      ),
      'PKI_BAD_CA',
    );
    expectCode(
      thrown(() => fingerprint256('not a cert')),
      'PKI_BAD_CERT',
    );
    for (const alg of ['RS256', 'ES384', 'none', 'toString']) {
      const err = thrown(() =>
        issueSigningCert(ca, { commonName: 's', country: 'DE', alg: alg as SigningAlg }),
      );
      expectCode(err, 'PKI_BAD_ALG');
      expect((err as Error).message).to.include(JSON.stringify(alg));
    }
  });

  it('keeps TLS certs on RSA 2048 with an RFC 5280 key id that OpenSSL recomputes', () => {
    const leaf = issueTlsCert(ca, { commonName: 'gw', country: 'FR' });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.publicKey.asymmetricKeyType).to.equal('rsa');
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).to.equal(2048);
    expect(cert.checkPrivateKey(createPrivateKey(leaf.keyPem))).to.equal(true);
    expect(opensslSki(leaf.certPem)).to.equal(keyIdOf(cert.publicKey));
    expect(opensslVerify(ca.certPem, leaf.certPem).trim()).to.match(/: OK$/);
  });
});

/** RFC 5280 §4.2.1.2 (1): SHA-1 of the subjectPublicKey bits, taken from Node's own export. */
function keyIdOf(key: KeyObject): string {
  let bits: Buffer;
  if (key.asymmetricKeyType === 'rsa') {
    bits = key.export({ type: 'pkcs1', format: 'der' });
  } else {
    const jwk = key.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x!, 'base64url');
    // EC: the uncompressed point 04 || x || y (SEC 1 §2.3.3); Ed25519: the 32 key bytes (RFC 8410 §4).
    bits = jwk.kty === 'EC' ? Buffer.concat([Buffer.from([4]), x, Buffer.from(jwk.y!, 'base64url')]) : x;
  }
  return createHash('sha1').update(bits).digest('hex');
}

describe('pki/issue signing certificates per algorithm', () => {
  let ca: Issued;
  let caCert: X509Certificate;
  before(() => {
    ca = createRootCa({ commonName: 'Test Root', days: 30 });
    caCert = new X509Certificate(ca.certPem);
  });

  const keys: Record<SigningAlg, { name: string; type: string; details: Record<string, unknown> }> = {
    PS256: { name: 'RSA 2048', type: 'rsa', details: { modulusLength: 2048 } },
    ES256: { name: 'EC P-256', type: 'ec', details: { namedCurve: 'prime256v1' } },
    EdDSA: { name: 'Ed25519', type: 'ed25519', details: {} },
  };

  for (const alg of ['PS256', 'ES256', 'EdDSA'] as const) {
    describe(alg, () => {
      let leaf: Issued;
      let cert: X509Certificate;
      before(() => {
        leaf = issueSigningCert(ca, { commonName: `DE signing ${alg}`, country: 'DE', alg });
        cert = new X509Certificate(leaf.certPem);
      });

      it(`holds an ${keys[alg].name} key, matching the private key, signed by the RSA CA`, () => {
        expect(cert.publicKey.asymmetricKeyType).to.equal(keys[alg].type);
        expect(cert.publicKey.asymmetricKeyDetails).to.deep.include(keys[alg].details);
        expect(algFor(cert.publicKey)).to.equal(alg);
        expect(cert.checkPrivateKey(createPrivateKey(leaf.keyPem))).to.equal(true);
        expect(cert.checkIssued(caCert)).to.equal(true);
        expect(cert.verify(caCert.publicKey)).to.equal(true);
        const stranger = new X509Certificate(createRootCa({ commonName: 'Other Root' }).certPem);
        expect(cert.verify(stranger.publicKey)).to.equal(false);
        expect(opensslVerify(ca.certPem, leaf.certPem).trim()).to.match(/: OK$/);
      });

      it("has the signing cert's extensions, with a key id of its own key and the CA's as authority", () => {
        const ext = extensionsOf(leaf.certPem);
        expect([...ext.keys()]).to.deep.equal([
          'basicConstraints',
          'keyUsage',
          'extKeyUsage',
          'subjectKeyIdentifier',
          'authorityKeyIdentifier',
        ]);
        expect(ext.get('basicConstraints')).to.include({ cA: false, critical: true });
        expect(ext.get('keyUsage')).to.include({
          critical: true,
          digitalSignature: true,
          nonRepudiation: true,
          keyEncipherment: false,
          keyCertSign: false,
        });
        expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.36']);
        expect(opensslSki(leaf.certPem)).to.equal(keyIdOf(cert.publicKey));
        const caSki = extensionsOf(ca.certPem).get('subjectKeyIdentifier')!.subjectKeyIdentifier;
        // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier, … } (RFC 5280 §4.2.1.1).
        const aki = forge.asn1.fromDer(ext.get('authorityKeyIdentifier')!.value as string);
        const keyId = (aki.value as forge.asn1.Asn1[])[0]!.value as string;
        expect(forge.util.bytesToHex(keyId)).to.equal(caSki);
      });

      it('signs a JWS that verifies for a partner registered with this certificate', async () => {
        const kid = thumbprintS256(leaf.certPem);
        const partner = {
          country: 'DE',
          algorithms: [alg],
          signingKeys: [{ kid, cert, publicKey: cert.publicKey }],
        } as unknown as Partner;
        const payload = { v: 1, id: 'x', from: 'DE' };
        const jws = await signJws(payload, { alg, kid, key: createPrivateKey(leaf.keyPem) }, MESSAGE_TYP);
        const verified = await verifyJws(jws, partner, MESSAGE_TYP);
        expect(verified.header).to.deep.equal({ alg, kid, typ: MESSAGE_TYP });
        expect(verified.payload).to.deep.equal(payload);
        // Another certificate of the same algorithm under the same kid does not verify it.
        const other = new X509Certificate(
          issueSigningCert(ca, { commonName: 'o', country: 'DE', alg }).certPem,
        );
        const impostor = { ...partner, signingKeys: [{ kid, cert: other, publicKey: other.publicKey }] };
        const refused = await verifyJws(jws, impostor as Partner, MESSAGE_TYP).then(
          () => 'verified',
          (err: { code?: string }) => err.code,
        );
        expect(refused).to.equal('JWS_SIGNATURE_INVALID');
      });
    });
  }
});

describe('pki/dev-config', () => {
  it('normalizes country codes and rejects bad lists', () => {
    expect(normalizeCountries(['fr', 'De'])).to.deep.equal(['FR', 'DE']);
    for (const bad of [[], ['FRA'], [''], ['FR', 'fr'], ['F1'], ['ÉS']]) {
      expectCode(
        thrown(() => normalizeCountries(bad)),
        'PKI_BAD_COUNTRIES',
      );
    }
  });

  it('keeps recorded ports and gives new countries their position or the next free slot', () => {
    const ports = assignPorts(
      ['NL', 'FR', 'DE'],
      new Map([
        ['FR', { partner: 8443, admin: 8080 }],
        ['DE', { partner: 9443, admin: 9080 }],
        ['XX', { partner: 1, admin: 2 }],
      ]),
    );
    expect(Object.fromEntries(ports)).to.deep.equal({
      FR: { partner: 8443, admin: 8080 },
      DE: { partner: 9443, admin: 9080 },
      NL: { partner: 10443, admin: 10080 },
    });
  });

  it('round-trips dev tokens and hashes the whole token string', () => {
    const tokens = newDevTokens();
    expect(tokens.admin).to.match(/^icros_[\w-]{43}$/);
    expect(new Set(Object.values(tokens)).size).to.equal(3);
    expect(parseDevTokens(JSON.stringify(tokens))).to.deep.equal(tokens);
    expect(parseDevTokens('{"analyst":"x"}')).to.equal(undefined);
    expect(parseDevTokens('null')).to.equal(undefined);
    expect(hashToken('icros_abc')).to.equal(createHash('sha256').update('icros_abc').digest('hex'));
  });
});
