/** What every part of a running gateway is handed: config, database, registry, clock. */
import type { GatewayConfig } from './config/load.js';
import type { PartnerRegistry } from './inbound/identity.js';
import type { TxRunner } from './store/batch.js';
import type { Db } from './store/db.js';

export interface GatewayContext {
  config: GatewayConfig;
  db: Db;
  registry: PartnerRegistry;
  /** A transaction for writes that append to the audit chain (group-committed). */
  tx: TxRunner;
  /** Injected so tests can move time (sentAt windows, backoff). */
  now: () => Date;
}
