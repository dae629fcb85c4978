/** What every part of a running gateway is handed: config, database, registry, clock. */

import type { AuditWriter } from './audit/writer.js';
import type { GatewayConfig } from './config/load.js';
import type { PartnerRegistry } from './inbound/identity.js';
import type { Metrics } from './metrics.js';
import type { CaseCache } from './outbound/case-cache.js';
import type { Db } from './store/db.js';

export interface GatewayContext {
  config: GatewayConfig;
  db: Db;
  registry: PartnerRegistry;
  /** A group-committed transaction for writes that append to the audit chain. */
  tx: AuditWriter;
  /** Injected so tests can move time (sentAt windows, backoff). */
  now: () => Date;
  metrics: Metrics;
  /** Cases ingested or read lately, for forwards (outbound/case-cache.ts). */
  cases: CaseCache;
}
