/** What every part of a running gateway is handed: config, database, registry, clock. */
import type { GatewayConfig } from './config/load.js';
import type { PartnerRegistry } from './inbound/identity.js';
import type { Db } from './store/db.js';

export interface GatewayContext {
  config: GatewayConfig;
  db: Db;
  registry: PartnerRegistry;
  /** Injected so tests can move time (sentAt windows, backoff). */
  now: () => Date;
}
