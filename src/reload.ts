/**
 * Certificate and key rotation without a restart. On SIGHUP or when one of the watched files
 * changes, the config file is read again and its key material checked; only then is it put
 * in use: the partner listener's TLS context (`setSecureContext`), the signing key for new
 * messages, receipts and checkpoints, the partners' signing certificates and TLS
 * fingerprints, and the outbound clients. Anything wrong (unreadable, not PEM, a key that
 * does not match its certificate, a certificate not valid now) refuses the whole reload with
 * an error log: the material in use stays, the gateway never stops. Settings other than keys,
 * certificates and partners need a restart; a reload that changes them says so and keeps them.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { certThumbprint, type GatewayConfig } from './config/load.js';
import type { GatewayContext } from './context.js';
import { IcrosError } from './errors.js';
import { partnerRegistry } from './inbound/identity.js';
import { secureContextOptions } from './inbound/server.js';
import { log } from './log.js';
import type { DeliveryQueue } from './outbound/queue.js';

export type ReloadTrigger = 'SIGHUP' | 'file' | 'api';

export interface ReloadResult {
  result: 'applied' | 'unchanged' | 'refused';
  /** What changed, e.g. `tls.cert`, `signing.cert`, `partners.DE.signingCerts`. */
  changed: string[];
  /** Why it was refused (the problem's message). */
  error?: string;
}

export interface ReloaderOptions {
  ctx: GatewayContext;
  partnerServer: TlsServer;
  queue: DeliveryQueue;
  /** Read and validate the config again (`loadConfig(file)`); throws IcrosError when it is not valid. */
  load: () => GatewayConfig;
  /** The config file itself, watched along with every PEM file it names. */
  configFile?: string;
}

// What a reload may change; everything else needs a restart (listeners, database, queue…).
const RELOADABLE = new Set(['tls', 'signing', 'partners', 'files', 'readiness']);

export interface Reloader {
  reload(trigger: ReloadTrigger): Promise<ReloadResult>;
  /** Watch the files; a change (debounced) reloads. Returns a function that stops watching. */
  watch(debounceMs: number): () => void;
}

export function createReloader(opts: ReloaderOptions): Reloader {
  const { ctx } = opts;
  // One reload at a time: a SIGHUP during a file-triggered reload waits for it.
  let running: Promise<ReloadResult> = Promise.resolve({ result: 'unchanged', changed: [] });
  const reload = (trigger: ReloadTrigger): Promise<ReloadResult> => {
    running = running.then(() => reloadOnce(opts, trigger));
    return running;
  };

  return {
    reload,
    watch(debounceMs) {
      let watchers: FSWatcher[] = [];
      let timer: NodeJS.Timeout | undefined;
      let closed = false;
      const arm = () => {
        for (const w of watchers) w.close();
        watchers = [];
        if (closed) return;
        // Directories, not files: a rotation that renames a new file into place replaces
        // the inode, and a watch on the old file would never fire again.
        const byDir = new Map<string, Set<string>>();
        for (const f of [...(opts.configFile ? [path.resolve(opts.configFile)] : []), ...ctx.config.files]) {
          const names = byDir.get(path.dirname(f)) ?? new Set<string>();
          names.add(path.basename(f));
          byDir.set(path.dirname(f), names);
        }
        for (const [dir, names] of byDir) {
          try {
            const w = watch(dir, { persistent: false }, (_event, name) => {
              if (name && !names.has(name.toString())) return;
              clearTimeout(timer);
              timer = setTimeout(() => {
                void reload('file').then((r) => {
                  if (r.result === 'applied') arm(); // the list of files may have changed
                });
              }, debounceMs);
              timer.unref();
            });
            w.on('error', (err) => log.warn('file watch stopped', { dir, err: err.message }));
            watchers.push(w);
          } catch (err) {
            log.warn('cannot watch for certificate changes; use SIGHUP', {
              dir,
              err: (err as Error).message,
            });
          }
        }
      };
      arm();
      return () => {
        closed = true;
        clearTimeout(timer);
        for (const w of watchers) w.close();
      };
    },
  };
}

async function reloadOnce(opts: ReloaderOptions, trigger: ReloadTrigger): Promise<ReloadResult> {
  const { ctx } = opts;
  let next: GatewayConfig;
  try {
    next = opts.load();
    checkMaterial(next, ctx.now());
  } catch (err) {
    const error = (err as Error).message;
    log.error('reload refused: the certificates and keys in use stay', {
      trigger,
      code: err instanceof IcrosError ? err.code : 'INTERNAL',
      error,
    });
    ctx.metrics.configReloads.inc({ trigger, result: 'refused' });
    return { result: 'refused', changed: [], error };
  }
  const prev = ctx.config;
  const changed = diff(prev, next);
  const restartOnly = Object.keys(next).filter(
    (k) =>
      !RELOADABLE.has(k) &&
      JSON.stringify(prev[k as keyof GatewayConfig]) !== JSON.stringify(next[k as keyof GatewayConfig]),
  );
  if (restartOnly.length) {
    log.warn('reload: these settings changed but take effect only after a restart', {
      settings: restartOnly,
    });
  }
  if (changed.length === 0) {
    log.info('reload: certificates, keys and partners unchanged', { trigger });
    ctx.metrics.configReloads.inc({ trigger, result: 'unchanged' });
    return { result: 'unchanged', changed };
  }

  const merged: GatewayConfig = Object.freeze({
    ...prev,
    tls: next.tls,
    signing: next.signing,
    partners: next.partners,
    files: next.files,
    readiness: next.readiness,
  });
  // New TLS handshakes get the new certificate; connections already open keep theirs.
  opts.partnerServer.setSecureContext(secureContextOptions(merged.tls));
  ctx.config = merged;
  ctx.registry = partnerRegistry(merged);
  opts.queue.reload?.();

  const detail = {
    trigger,
    changed,
    tls: { fingerprint: new X509Certificate(merged.tls.certPem).fingerprint256 },
    signing: { kid: merged.signing.kid },
    partners: Object.fromEntries(
      merged.partners.map((p) => [
        p.country,
        { signingKids: p.signingKeys.map((k) => k.kid), tlsFingerprints: p.tlsFingerprints },
      ]),
    ),
  };
  try {
    await ctx.tx.append((q) =>
      q.audit({ actor: { kind: 'system', id: 'reload' }, action: 'config.reloaded', subject: {}, detail }),
    );
  } catch (err) {
    log.error('reload applied but not audited', { err: (err as Error).message });
  }
  ctx.metrics.configReloads.inc({ trigger, result: 'applied' });
  log.info('reload applied', detail);
  return { result: 'applied', changed };
}

/** Does the private key belong to the certificate? */
export function keyMatchesCert(key: KeyObject | string, certPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(
      typeof key === 'string' ? createPrivateKey(key) : key,
    );
  } catch {
    return false;
  }
}

/** Refuse material that would break handshakes or signatures once in use. */
function checkMaterial(c: GatewayConfig, now: Date): void {
  const refuse = (field: string, message: string): never => {
    throw new IcrosError('CONFIG_INVALID', `${field} ${message}`, {
      errors: [{ location: field, rule: 'file', message }],
    });
  };
  for (const [field, pem] of [
    ['/tls/cert', c.tls.certPem],
    ['/signing/cert', c.signing.certPem],
  ] as const) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (err) {
      cert = refuse(field, `is not a PEM certificate (${(err as Error).message})`);
    }
    if (Date.parse(cert.validFrom) > now.getTime() || Date.parse(cert.validTo) <= now.getTime())
      refuse(field, `is not valid now (${cert.validFrom} to ${cert.validTo})`);
  }
  if (!keyMatchesCert(c.tls.keyPem, c.tls.certPem))
    refuse('/tls/key', 'does not match the certificate /tls/cert');
  if (!keyMatchesCert(c.signing.key, c.signing.certPem))
    refuse('/signing/key', 'does not match the certificate /signing/cert');
  try {
    createSecureContext(secureContextOptions(c.tls));
  } catch (err) {
    refuse('/tls', `cannot be used for TLS (${(err as Error).message})`);
  }
}

/** Names of what differs in key material and partners; never the material itself. */
function diff(a: GatewayConfig, b: GatewayConfig): string[] {
  const out: string[] = [];
  const fp = (pem: string) => certThumbprint(new X509Certificate(pem));
  if (fp(a.tls.certPem) !== fp(b.tls.certPem)) out.push('tls.cert');
  if (a.tls.keyPem !== b.tls.keyPem) out.push('tls.key');
  if (a.tls.caPems.join('\n') !== b.tls.caPems.join('\n')) out.push('tls.ca');
  if (a.signing.kid !== b.signing.kid) out.push('signing.cert');
  if (
    a.signing.key.export({ format: 'pem', type: 'pkcs8' }) !==
    b.signing.key.export({ format: 'pem', type: 'pkcs8' })
  )
    out.push('signing.key');
  const countries = new Set([...a.partners, ...b.partners].map((p) => p.country));
  for (const cc of countries) {
    const pa = a.partners.find((p) => p.country === cc);
    const pb = b.partners.find((p) => p.country === cc);
    if (!pa) out.push(`partners.${cc}.added`);
    else if (!pb) out.push(`partners.${cc}.removed`);
    else {
      if (pa.signingKeys.map((k) => k.kid).join() !== pb.signingKeys.map((k) => k.kid).join())
        out.push(`partners.${cc}.signingCerts`);
      if (pa.tlsFingerprints.join() !== pb.tlsFingerprints.join()) out.push(`partners.${cc}.tlsFingerprints`);
      const { signingKeys: _a, ...ra } = pa;
      const { signingKeys: _b, tlsFingerprints: _c, ...rb } = pb;
      const { tlsFingerprints: _d, ...ra2 } = ra;
      if (JSON.stringify(ra2) !== JSON.stringify(rb)) out.push(`partners.${cc}.settings`);
    }
  }
  return out;
}
