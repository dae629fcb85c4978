/**
 * Prometheus metrics of one gateway (prom-client). Each gateway has its own registry, so
 * several gateways in one process (tests, the demo) never mix their figures. Served at
 * `GET /metrics` on the admin listener.
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayConfig } from './config/load.js';
import type { Db } from './store/db.js';
import { sql } from './store/sql.js';

/** Where the gauges computed at scrape time read from (bound once the gateway has a database). */
export interface ScrapeSource {
  db: Db;
  /** The current config: it changes when certificates are rotated (reload.ts). */
  config(): GatewayConfig;
  now(): Date;
  /** The cases kept for forwards (outbound/case-cache.ts). */
  cases: { readonly bytes: number };
}

export interface Metrics {
  registry: Registry;
  /** Outbound attempts by partner and result (delivered, transient, permanent). */
  attempts: Counter<'partner' | 'result'>;
  delivered: Counter<'partner'>;
  /** Messages that died (attempts or age ran out, or a permanent refusal), by partner and code. */
  dead: Counter<'partner' | 'code'>;
  redriven: Counter<'partner'>;
  /** Seconds from queueing to the receipt, per delivered message. */
  deliveryLatency: Histogram<'partner'>;
  /** Age of the oldest undelivered outbound message, per partner (0 when none). */
  oldestQueuedSeconds: Gauge<'partner'>;
  /** Undelivered outbound messages (queued, retrying, sending), per partner. */
  openMessages: Gauge<'partner'>;
  /** 1 while the partner's circuit is open. */
  circuitOpen: Gauge<'partner'>;
  /** Receipts this gateway issued (inbound) or received and verified (outbound), by partner. */
  receipts: Counter<'direction' | 'partner'>;
  /** Partner requests answered with a problem, by error code (PARTNER_UNKNOWN has no partner). */
  inboundRejections: Counter<'code' | 'partner'>;
  /** Certificate and key reloads (SIGHUP, file change) by trigger and result (applied, unchanged, refused). */
  configReloads: Counter<'trigger' | 'result'>;
  /** TLS handshakes the partner listener refused, by the error's code (no client certificate, unknown CA, TLS 1.2, …). */
  tlsRefused: Counter<'reason'>;
  /**
   * Where a forward took its case from: `hit` (kept in memory), `miss` (read), `stale` (the
   * copy it signed was out of date; read again).
   */
  caseCache: Counter<'result'>;
  /** Let the gauges computed at scrape time (messages, queue depth, audit head, certificate expiry) read. */
  bind(source: ScrapeSource): void;
}

export function createMetrics(country: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ gateway: country });
  const registers = [registry];
  let source: ScrapeSource | undefined;
  // One database read per scrape for the open-message gauges, shared by the two that use it.
  let open: Promise<OpenRow[] | undefined> | undefined;
  const openRows = (): Promise<OpenRow[] | undefined> => {
    open ??= quietly(source!.db.query<OpenRow>(sql('openByPartner'))).finally(() => {
      setImmediate(() => {
        open = undefined;
      });
    });
    return open;
  };
  /**
   * Set `gauge` from the open messages: for every configured partner, and for any other peer
   * that has open messages (a partner taken out of the configuration).
   */
  const perPeer = async (gauge: Gauge<'partner'>, value: (row: OpenRow | undefined) => number) => {
    if (!source) return;
    const rows = await openRows();
    if (!rows) return;
    gauge.reset();
    const peers = new Set([...source.config().partners.map((p) => p.country), ...rows.map((r) => r.peer)]);
    for (const peer of peers) gauge.set({ partner: peer }, value(rows.find((r) => r.peer === peer)));
  };
  scrapeGauges(registers, () => source, country);
  return {
    registry,
    bind(s) {
      source = s;
    },
    receipts: new Counter({
      name: 'icros_receipts_total',
      help: 'Signed receipts issued to partners (direction="issued") and received and verified from them (direction="received")',
      labelNames: ['direction', 'partner'],
      registers,
    }),
    inboundRejections: new Counter({
      name: 'icros_inbound_rejections_total',
      help: 'Partner requests answered with a problem, by error code (docs/errors.md)',
      labelNames: ['code', 'partner'],
      registers,
    }),
    tlsRefused: new Counter({
      name: 'icros_tls_handshakes_refused_total',
      help: 'TLS handshakes the partner listener refused, by the error code (e.g. ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE)',
      labelNames: ['reason'],
      registers,
    }),
    caseCache: new Counter({
      name: 'icros_case_cache_total',
      help: 'Forwards by where their case came from: hit (kept in memory), miss (read), stale (out of date, read again)',
      labelNames: ['result'],
      registers,
    }),
    configReloads: new Counter({
      name: 'icros_config_reloads_total',
      help: 'Certificate and key reloads by trigger (SIGHUP, file) and result (applied, unchanged, refused)',
      labelNames: ['trigger', 'result'],
      registers,
    }),
    attempts: new Counter({
      name: 'icros_delivery_attempts_total',
      help: 'Outbound delivery attempts by partner and result',
      labelNames: ['partner', 'result'],
      registers,
    }),
    delivered: new Counter({
      name: 'icros_messages_delivered_total',
      help: 'Outbound messages delivered (receipt verified)',
      labelNames: ['partner'],
      registers,
    }),
    dead: new Counter({
      name: 'icros_messages_dead_total',
      help: 'Outbound messages that died, by partner and problem code',
      labelNames: ['partner', 'code'],
      registers,
    }),
    redriven: new Counter({
      name: 'icros_messages_redriven_total',
      help: 'Dead outbound messages redriven by an operator',
      labelNames: ['partner'],
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'icros_delivery_latency_seconds',
      help: 'Seconds from queueing a message to its verified receipt',
      labelNames: ['partner'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    }),
    oldestQueuedSeconds: new Gauge({
      name: 'icros_oldest_queued_seconds',
      help: 'Age of the oldest undelivered outbound message per partner',
      labelNames: ['partner'],
      registers,
      async collect() {
        await perPeer(this, (r) => (r ? Math.max(0, Number(r.oldest_age_s)) : 0));
      },
    }),
    openMessages: new Gauge({
      name: 'icros_open_messages',
      help: 'Undelivered outbound messages (queued, retrying, sending) per partner',
      labelNames: ['partner'],
      registers,
      async collect() {
        await perPeer(this, (r) => r?.open ?? 0);
      },
    }),
    circuitOpen: new Gauge({
      name: 'icros_circuit_open',
      help: '1 while the circuit towards the partner is open',
      labelNames: ['partner'],
      registers,
    }),
  };
}

interface OpenRow {
  peer: string;
  open: number;
  oldest_age_s: number;
}

const DAY_MS = 86_400_000;
const VERSION = (() => {
  try {
    return (
      JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
})();

/** Gauges whose value is read when Prometheus scrapes, so they can never drift from the database. */
function scrapeGauges(registers: Registry[], source: () => ScrapeSource | undefined, country: string): void {
  // One GROUP BY per scrape, shared by the two gauges that read it.
  type StateRow = { direction: string; peer: string; state: string; n: number };
  let pending: Promise<StateRow[] | undefined> | undefined;
  const byState = (s: ScrapeSource): Promise<StateRow[] | undefined> => {
    pending ??= quietly(s.db.query<StateRow>(sql('metricsMessagesByState'))).finally(() => {
      setImmediate(() => {
        pending = undefined;
      });
    });
    return pending;
  };
  new Gauge({
    name: 'icros_build_info',
    help: 'Always 1; the labels say which build runs',
    labelNames: ['version', 'node'],
    registers,
  }).set({ version: VERSION, node: process.versions.node }, 1);

  new Gauge({
    name: 'icros_messages',
    help: 'Messages stored, by direction (in, out), partner and state',
    labelNames: ['direction', 'partner', 'state'],
    registers,
    async collect() {
      const s = source();
      if (!s) return;
      const rows = await byState(s);
      if (!rows) return;
      this.reset();
      for (const r of rows) this.set({ direction: r.direction, partner: r.peer, state: r.state }, r.n);
    },
  });

  new Gauge({
    name: 'icros_queue_depth',
    help: 'Outbound messages waiting for an attempt (queued or retrying), per partner',
    labelNames: ['partner'],
    registers,
    async collect() {
      const s = source();
      if (!s) return;
      const rows = await byState(s);
      if (!rows) return;
      for (const p of s.config().partners) {
        const n = rows
          .filter(
            (r) =>
              r.direction === 'out' &&
              r.peer === p.country &&
              (r.state === 'queued' || r.state === 'retrying'),
          )
          .reduce((sum, r) => sum + r.n, 0);
        this.set({ partner: p.country }, n);
      }
    },
  });

  new Gauge({
    name: 'icros_case_cache_bytes',
    help: 'Bytes of JSON of the cases kept in memory for forwards (at most cases.cacheBytes)',
    registers,
    collect() {
      const s = source();
      if (s) this.set(s.cases.bytes);
    },
  });

  new Gauge({
    name: 'icros_audit_head_seq',
    help: 'Sequence number of the last event in the audit chain',
    registers,
    async collect() {
      const s = source();
      if (!s) return;
      const rows = await quietly(s.db.query<{ seq: string | number }>(sql('getAuditHead')));
      if (rows) this.set(rows[0] ? Number(rows[0].seq) : 0);
    },
  });

  new Gauge({
    name: 'icros_certificate_expiry_days',
    help: 'Days until a certificate expires: own TLS and signing certificates, and each partner signing certificate (by kid)',
    labelNames: ['cert', 'partner', 'kid'],
    registers,
    collect() {
      const s = source();
      if (!s) return;
      const config = s.config();
      const now = s.now().getTime();
      const days = (cert: X509Certificate) => (Date.parse(cert.validTo) - now) / DAY_MS;
      this.reset();
      this.set({ cert: 'tls', partner: country, kid: '' }, days(new X509Certificate(config.tls.certPem)));
      this.set(
        { cert: 'signing', partner: country, kid: config.signing.kid },
        days(new X509Certificate(config.signing.certPem)),
      );
      for (const p of config.partners) {
        for (const k of p.signingKeys)
          this.set({ cert: 'partner-signing', partner: p.country, kid: k.kid }, days(k.cert));
      }
    },
  });
}

/**
 * A scrape must not fail because the database does not answer (`/readyz` reports that): the
 * gauges read from it keep their last values and the rest of the metrics are served.
 */
function quietly<T>(p: Promise<T>): Promise<T | undefined> {
  return p.catch(() => undefined);
}
