/**
 * `GET /readyz`: whether this gateway should receive traffic. Ready when the database
 * answers, the signing and TLS keys are loaded and match their certificates, and every own
 * certificate (TLS, signing) is valid for more than `readiness.minCertDays`. The answer lists
 * each check so an operator sees which one failed.
 *
 * The queue is reported but does not decide: without Redis the gateway still receives
 * messages and queues forwards in the outbox, and every replica shares one Redis, so failing
 * readiness on it would stop inbound traffic too.
 */
import { X509Certificate } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { GatewayContext } from '../context.js';
import type { DeliveryQueue } from '../outbound/queue.js';
import { keyMatchesCert } from '../reload.js';

const DAY_MS = 86_400_000;

export interface CertificateCheck {
  name: 'tls' | 'signing';
  notAfter: string;
  daysLeft: number;
  ok: boolean;
}

export function readyz(ctx: GatewayContext, queue: DeliveryQueue): RequestHandler {
  return async (_req, res) => {
    const queueHealth = queue.health ? await queue.health() : { ok: true };
    const queueState = {
      driver: queue.driver,
      status: queueHealth.ok ? 'ok' : 'unavailable',
      ...(queueHealth.detail ? { detail: queueHealth.detail } : {}),
    };
    let database: { ok: boolean; detail?: string };
    try {
      await ctx.db.query('SELECT 1');
      database = { ok: true };
    } catch (err) {
      // The driver's message names the host at most; never credentials (they are not in it).
      database = {
        ok: false,
        detail: `the database does not answer (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      };
    }
    const keys = keyChecks(ctx);
    const certificates = certificateChecks(ctx);
    const failed = [
      ...(database.ok ? [] : ['database']),
      ...(keys.ok ? [] : ['keys']),
      ...(certificates.every((c) => c.ok) ? [] : ['certificates']),
    ];
    const ready = failed.length === 0;
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'unavailable',
      country: ctx.config.country,
      ...(ready ? {} : { reason: failed.join(','), failed }),
      queue: queueState,
      checks: { database, queue: queueState, keys, certificates },
    });
  };
}

function keyChecks(ctx: GatewayContext): { ok: boolean; tls: boolean; signing: boolean } {
  const { tls, signing } = ctx.config;
  const tlsOk = Boolean(tls.keyPem) && keyMatchesCert(tls.keyPem, tls.certPem);
  const signingOk = Boolean(signing.key) && keyMatchesCert(signing.key, signing.certPem);
  return { ok: tlsOk && signingOk, tls: tlsOk, signing: signingOk };
}

/** Own certificates and how long each stays valid; `ok` needs more than `minCertDays` left. */
export function certificateChecks(ctx: GatewayContext): CertificateCheck[] {
  const now = ctx.now().getTime();
  const min = ctx.config.readiness.minCertDays;
  const own: [CertificateCheck['name'], string][] = [
    ['tls', ctx.config.tls.certPem],
    ['signing', ctx.config.signing.certPem],
  ];
  return own.map(([name, pem]) => {
    const cert = new X509Certificate(pem);
    const notAfter = new Date(cert.validTo);
    const notBefore = Date.parse(cert.validFrom);
    const daysLeft = Math.floor(((notAfter.getTime() - now) / DAY_MS) * 10) / 10;
    return { name, notAfter: notAfter.toISOString(), daysLeft, ok: notBefore <= now && daysLeft > min };
  });
}
