/**
 * Reading certificates in tests whatever their key type: forge's `certificateFromPem` reads
 * RSA certificates only, and OpenSSL is the independent second opinion.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';

/** One X.509v3 extension as forge decodes it (`keyUsage` flags, `cA`, …). */
export interface Extension {
  id: string;
  name?: string;
  critical: boolean;
  [field: string]: unknown;
}

/** The extensions of `certPem` by name (or OID when forge has no name for it). */
export function extensionsOf(certPem: string): Map<string, Extension> {
  const der = forge.pem.decode(certPem)[0]!.body;
  const tbs = (forge.asn1.fromDer(der).value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
  // RFC 5280 §4.1: extensions [3] EXPLICIT, the last optional field of the TBSCertificate.
  const wrapper = tbs.find((n) => n.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && n.type === 3);
  if (!wrapper) return new Map();
  const { certificateExtensionsFromAsn1 } = forge.pki as unknown as {
    certificateExtensionsFromAsn1(exts: forge.asn1.Asn1): Extension[];
  };
  return new Map(certificateExtensionsFromAsn1(wrapper).map((e) => [e.name ?? e.id, e]));
}

/** `openssl <args>` with `input` on stdin; stdout, or the error with OpenSSL's stderr. */
export function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** The subjectKeyIdentifier as OpenSSL prints it, as lower-case hex without colons. */
export function opensslSki(certPem: string): string {
  const out = openssl(['x509', '-noout', '-ext', 'subjectKeyIdentifier'], certPem);
  const hex = out.trim().split('\n').at(-1)!.trim();
  return hex.replaceAll(':', '').toLowerCase();
}

/** `openssl verify -CAfile ca -purpose any` on `certPem`: its output line, e.g. "leaf.crt: OK". */
export function opensslVerify(caPem: string, certPem: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-verify-'));
  try {
    writeFileSync(path.join(dir, 'ca.crt'), caPem);
    writeFileSync(path.join(dir, 'leaf.crt'), certPem);
    return openssl([
      'verify',
      '-CAfile',
      path.join(dir, 'ca.crt'),
      '-purpose',
      'any',
      path.join(dir, 'leaf.crt'),
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
