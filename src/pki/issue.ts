import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import type { SigningAlg } from '../config/load.js';
import { SIGNING_ALGS } from '../envelope/jws-crypto.js';
import { PkiError } from './errors.js';

/** A certificate and its private key, both PEM (the key is PKCS#8). */
export interface Issued {
  certPem: string;
  keyPem: string;
}

/** Subject of an end-entity certificate. `country` is ISO 3166-1 alpha-2, upper case. */
export interface LeafOptions {
  commonName: string;
  country: string;
  organization?: string;
  days?: number;
}

const DAY_MS = 86_400_000;
// Backdate notBefore so a peer whose clock runs a little behind still accepts a fresh cert.
const BACKDATE_MS = 5 * 60_000;
const CA_DAYS = 3650;
const LEAF_DAYS = 365;

/**
 * Creates a self-signed root CA for a dev federation: RSA 2048, SHA-256,
 * basicConstraints cA (critical), keyUsage keyCertSign + cRLSign (critical).
 */
export function createRootCa(opts: { commonName: string; days?: number }): Issued {
  const subject = [{ shortName: 'CN', value: checkName('commonName', opts.commonName) }];
  const cert = newCertificate(opts.days ?? CA_DAYS);
  const key = newKeyPair();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicPem);
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', critical: true, cA: true },
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(key.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.keyPem };
}

/**
 * Issues a gateway TLS certificate, used both as server and as client certificate on the
 * partner listener (DESIGN §4: mutual TLS). SANs default to the loopback names the demo uses.
 */
export function issueTlsCert(
  ca: Issued,
  opts: LeafOptions & { dnsNames?: string[]; ipAddresses?: string[] },
): Issued {
  const altNames = [
    ...(opts.dnsNames ?? ['localhost']).map((name) => ({ type: 2, value: checkName('dnsName', name) })),
    ...(opts.ipAddresses ?? ['127.0.0.1', '::1']).map((ip) => ({ type: 7, ip: checkIp(ip) })),
  ];
  return issueLeaf(ca, opts, 'rsa', [
    // RSA key exchange is gone in TLS 1.3, but keyEncipherment keeps TLS 1.2 tooling happy.
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
}

// RFC 9336 id-kp-documentSigning. Without any extKeyUsage a certificate is good for every
// purpose (RFC 5280 §4.2.1.12), so OpenSSL would accept the signing cert as a TLS client cert.
const DOCUMENT_SIGNING = '1.3.6.1.5.5.7.3.36';

/**
 * The algorithm of the signing certificates the dev PKI issues unless told otherwise. ES256,
 * because a gateway signs every message and receipt, and ES256 signs about ten times cheaper
 * than PS256 (0.034 ms against 0.32 ms per signature on the 2-core development machine; EdDSA
 * 0.046 ms); the gateway verifies all three.
 */
export const DEFAULT_SIGNING_ALG: SigningAlg = 'ES256';

/** `alg` if it is one of `SIGNING_ALGS`; throws `PKI_BAD_ALG` naming it otherwise (JS callers, the CLI). */
export function checkSigningAlg(alg: SigningAlg): SigningAlg {
  if (SIGNING_ALGS.includes(alg)) return alg;
  throw new PkiError(
    'PKI_BAD_ALG',
    `not a signing algorithm: ${JSON.stringify(alg)} (use one of ${SIGNING_ALGS.join(', ')})`,
  );
}

/**
 * Issues a message-signing certificate (JWS over envelopes and receipts) whose key fits
 * `alg` (default `DEFAULT_SIGNING_ALG`): RSA 2048 for PS256, EC P-256 for ES256, Ed25519 for
 * EdDSA. keyUsage digitalSignature + nonRepudiation (critical), extKeyUsage documentSigning
 * only, so that it cannot stand in for a gateway's TLS certificate. Throws `PKI_BAD_ALG` for
 * another `alg`.
 */
export function issueSigningCert(ca: Issued, opts: LeafOptions & { alg?: SigningAlg }): Issued {
  const alg = checkSigningAlg(opts.alg ?? DEFAULT_SIGNING_ALG);
  return issueLeaf(ca, opts, SIGNING_KEY[alg], [
    { name: 'keyUsage', critical: true, digitalSignature: true, nonRepudiation: true },
    { name: 'extKeyUsage', [DOCUMENT_SIGNING]: true },
  ]);
}

/** SHA-256 fingerprint as Node's TLS reports it (`getPeerCertificate().fingerprint256`): "AB:CD:…". */
export function fingerprint256(certPem: string): string {
  return parseCert(certPem).fingerprint256;
}

/** base64url SHA-256 of the certificate DER: the JWS `x5t#S256` (RFC 7515 §4.1.8), used as `kid`. */
export function thumbprintS256(certPem: string): string {
  return createHash('sha256').update(parseCert(certPem).raw).digest('base64url');
}

/**
 * Checks that `ca` is a CA certificate whose key is the one given, so a mixed-up ca.key is
 * reported here rather than as an unverifiable chain at the first handshake.
 */
export function assertCa(ca: Issued): void {
  const cert = parseCert(ca.certPem);
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(ca.keyPem));
  } catch (cause) {
    throw new PkiError('PKI_BAD_CA', 'CA private key cannot be read', { cause });
  }
  if (!cert.ca) throw new PkiError('PKI_BAD_CA', `not a CA certificate: ${cert.subject}`);
  if (!matches) throw new PkiError('PKI_BAD_CA', `CA private key does not match ${cert.subject}`);
}

/**
 * forge builds the certificate structure but encodes RSA keys only. So the TBSCertificate is
 * built around a stand-in key (the CA's own public key), its SubjectPublicKeyInfo is then
 * swapped for the real one as Node encodes it, and the result signed: forge's `cert.sign`
 * would build the TBSCertificate again from the stand-in. One path for every key type, so the
 * RSA TLS certificates are made exactly like the EC and Ed25519 signing ones.
 */
function issueLeaf(ca: Issued, opts: LeafOptions, kind: KeyKind, usage: object[]): Issued {
  assertCa(ca);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  // Never outlive the issuer: a chain with an expired CA fails however long the leaf is valid.
  const cert = newCertificate(opts.days ?? LEAF_DAYS, caCert.validity.notAfter);
  cert.setSubject(leafSubject(opts));
  // Keygen after the checks: it is the slow step, and bad input should fail first.
  const { publicKey, privateKey } = newLeafKey(kind);
  const spki = spkiAsn1(publicKey);
  cert.publicKey = caCert.publicKey;
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', critical: true, cA: false },
    ...usage,
    // forge would compute it from the stand-in key; a value given is used as is.
    { name: 'subjectKeyIdentifier', value: octetString(subjectKeyId(spki)) },
    // forge's `keyIdentifier: true` would take the leaf's own key id; it must be the CA's.
    { name: 'authorityKeyIdentifier', keyIdentifier: caKeyId(caCert) },
  ]);
  signWithCa(cert, spki, ca.keyPem);
  return {
    certPem: forge.pki.certificateToPem(cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

type KeyKind = 'rsa' | 'p256' | 'ed25519';

const SIGNING_KEY: Record<SigningAlg, KeyKind> = { PS256: 'rsa', ES256: 'p256', EdDSA: 'ed25519' };

// Node's keygen is native; forge's pure-JS RSA keygen takes seconds per key.
function newLeafKey(kind: KeyKind): { publicKey: KeyObject; privateKey: KeyObject } {
  if (kind === 'p256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (kind === 'ed25519') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

// The SubjectPublicKeyInfo as Node encodes it. BIT STRING contents stay raw bytes: forge would
// otherwise try to parse them as ASN.1 (an RSAPublicKey), and the key id needs them as they are.
function spkiAsn1(publicKey: KeyObject): forge.asn1.Asn1 {
  const der = publicKey.export({ type: 'spki', format: 'der' }).toString('binary');
  // @types/node-forge knows only the boolean form of the second argument.
  const fromDer = forge.asn1.fromDer as unknown as (
    bytes: string,
    options: { decodeBitStrings: boolean },
  ) => forge.asn1.Asn1;
  return fromDer(der, { decodeBitStrings: false });
}

// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING, without its tag,
// length and unused-bits octet.
function subjectKeyId(spki: forge.asn1.Asn1): string {
  const bitString = (spki.value as forge.asn1.Asn1[])[1]!.value as string;
  return forge.md.sha1.create().update(bitString.slice(1)).digest().getBytes();
}

function octetString(bytes: string): forge.asn1.Asn1 {
  return forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, bytes);
}

// What forge's `cert.sign` does, with the real SubjectPublicKeyInfo (RFC 5280 §4.1: the 7th
// field of the TBSCertificate, after version, serial, signature, issuer, validity and subject)
// and Node's RSA instead of forge's JS one. `certificateToPem` uses the TBSCertificate set here.
function signWithCa(cert: forge.pki.Certificate, spki: forge.asn1.Asn1, caKeyPem: string): void {
  cert.signatureOid = forge.pki.oids.sha256WithRSAEncryption!;
  cert.siginfo.algorithmOid = cert.signatureOid;
  // Not in @types/node-forge: lib/x509.js `pki.getTBSCertificate`, what `cert.sign` calls.
  const { getTBSCertificate } = forge.pki as unknown as {
    getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  };
  const tbs = getTBSCertificate(cert);
  (tbs.value as forge.asn1.Asn1[])[6] = spki;
  cert.tbsCertificate = tbs;
  const der = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  cert.signature = sign('sha256', der, caKeyPem).toString('binary');
}

function newCertificate(days: number, notAfterMax?: Date): forge.pki.Certificate {
  if (!Number.isInteger(days) || days < 1)
    throw new PkiError('PKI_BAD_SUBJECT', `bad validity days: ${days}`);
  const cert = forge.pki.createCertificate();
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + days * DAY_MS);
  cert.validity.notAfter = notAfterMax && notAfterMax < notAfter ? notAfterMax : notAfter;
  return cert;
}

// The CA's key, in PEM for forge, which signs the CA certificate itself.
function newKeyPair(): { publicPem: string; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicPem: publicKey, keyPem: privateKey };
}

// RFC 5280 §4.1.2.2: positive, at most 20 octets. Clearing the top bit keeps it positive;
// setting the next one keeps the leading octet non-zero, so the DER stays minimal (126 random bits).
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes.writeUInt8((bytes.readUInt8(0) & 0x7f) | 0x40, 0);
  return bytes.toString('hex');
}

function caKeyId(caCert: forge.pki.Certificate): string {
  const ext = caCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return ext?.subjectKeyIdentifier
    ? forge.util.hexToBytes(ext.subjectKeyIdentifier)
    : caCert.generateSubjectKeyIdentifier().getBytes();
}

function leafSubject(opts: LeafOptions): forge.pki.CertificateField[] {
  if (!/^[A-Z]{2}$/.test(opts.country)) {
    throw new PkiError(
      'PKI_BAD_SUBJECT',
      `country must be two upper-case letters: ${JSON.stringify(opts.country)}`,
    );
  }
  const attrs: forge.pki.CertificateField[] = [{ shortName: 'C', value: opts.country }];
  if (opts.organization !== undefined) {
    attrs.push({ shortName: 'O', value: checkName('organization', opts.organization) });
  }
  attrs.push({ shortName: 'CN', value: checkName('commonName', opts.commonName) });
  return attrs;
}

// RFC 5280 upper bounds: 64 characters for CN and O; DNS names are far shorter in practice.
function checkName(field: string, value: string): string {
  if (value.length === 0 || value.length > 64 || /\p{Cc}/u.test(value)) {
    throw new PkiError('PKI_BAD_SUBJECT', `bad ${field}: ${JSON.stringify(value)}`);
  }
  return value;
}

// forge cannot encode the dotted form inside IPv6 (::ffff:1.2.3.4); refuse it rather than fail later.
function checkIp(ip: string): string {
  const family = isIP(ip);
  if (family === 0 || (family === 6 && ip.includes('.')))
    throw new PkiError('PKI_BAD_SUBJECT', `bad IP address: ${JSON.stringify(ip)}`);
  return ip;
}

function parseCert(certPem: string): X509Certificate {
  try {
    return new X509Certificate(certPem);
  } catch (cause) {
    throw new PkiError('PKI_BAD_CERT', 'not a PEM X.509 certificate', { cause });
  }
}
