/**
 * Composition root: config → database → queue → servers → workers. `startGateway` returns
 * the running gateway so the CLI, the demo and tests share one start-up path.
 */
import http from 'node:http';
import type { Server } from 'node:net';
import { createAdminApp } from './api/app.js';
import { startCheckpointer } from './audit/checkpoint.js';
import { createAuditWriter } from './audit/writer.js';
import type { GatewayConfig } from './config/load.js';
import type { GatewayContext } from './context.js';
import { createPartnerApp } from './inbound/app.js';
import { partnerRegistry } from './inbound/identity.js';
import { createPartnerServer, listen } from './inbound/server.js';
import { log, setLogLevel } from './log.js';
import { createMetrics } from './metrics.js';
import { type BullmqQueueOptions, createBullmqQueue } from './outbound/bullmq.js';
import { createEmbeddedQueue, type EmbeddedQueueOptions } from './outbound/embedded.js';
import type { DeliveryQueue } from './outbound/queue.js';
import { type Db, openDb } from './store/db.js';
import { startRetention } from './store/retention.js';

export interface Gateway {
  ctx: GatewayContext;
  queue: DeliveryQueue;
  partnerUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

export interface StartOptions extends EmbeddedQueueOptions, BullmqQueueOptions {
  /** Use this database instead of opening the configured one (tests). */
  db?: Db;
  now?: () => Date;
  /** Leave the delivery worker stopped (tests drive it). */
  noWorker?: boolean;
  /** The delivery queue driver; default `bullmq` when `redis.url` (REDIS_URL) is set, else `embedded`. */
  driver?: 'embedded' | 'bullmq';
}

export async function startGateway(config: GatewayConfig, opts: StartOptions = {}): Promise<Gateway> {
  setLogLevel(config.logLevel);
  const db = opts.db ?? (await openDb(config.database));
  const ctx: GatewayContext = {
    config,
    db,
    registry: partnerRegistry(config),
    // Audit times follow ctx.now, which tests may move.
    tx: createAuditWriter(db, () => ctx.now()),
    now: opts.now ?? (() => new Date()),
    metrics: createMetrics(config.country),
  };
  const driver = opts.driver ?? (config.redis ? 'bullmq' : 'embedded');
  const queue = driver === 'bullmq' ? createBullmqQueue(ctx, opts) : createEmbeddedQueue(ctx, opts);
  const partnerServer = createPartnerServer(config, createPartnerApp(ctx));
  const adminServer = http.createServer(createAdminApp(ctx, queue));
  adminServer.requestTimeout = config.limits.requestTimeoutMs;
  let partnerPort: number;
  let adminPort: number;
  try {
    partnerPort = await listen(partnerServer, config.listen.partner.host, config.listen.partner.port);
    adminPort = await listen(adminServer, config.listen.admin.host, config.listen.admin.port);
  } catch (err) {
    partnerServer.close();
    adminServer.close();
    if (!opts.db) await db.close();
    throw err;
  }
  if (!opts.noWorker) queue.start();
  // Signed checkpoints of the audit chain, and erasure past retention dates (docs/audit.md).
  const checkpointer = startCheckpointer(ctx, {
    everyEvents: config.audit.checkpointEvery,
    maxAgeMs: config.audit.checkpointIntervalMs,
    intervalMs: Math.min(5_000, config.audit.checkpointIntervalMs),
  });
  const retention = startRetention(ctx);
  const partnerUrl = `https://${hostForUrl(config.listen.partner.host)}:${partnerPort}`;
  const adminUrl = `http://${hostForUrl(config.listen.admin.host)}:${adminPort}`;
  log.info('gateway started', {
    country: config.country,
    partnerUrl,
    adminUrl,
    database: db.kind,
    queue: queue.driver,
  });

  let stopped: Promise<void> | undefined;
  return {
    ctx,
    queue,
    partnerUrl,
    adminUrl,
    stop() {
      stopped ??= (async () => {
        await Promise.all([closeServer(partnerServer), closeServer(adminServer)]);
        await queue.stop();
        await retention.stop();
        await checkpointer.stop();
        // The head at shutdown, signed: the log cannot lose its tail unnoticed while stopped.
        await checkpointer
          .now()
          .catch((err) => log.error('no final audit checkpoint', { err: (err as Error).message }));
        if (!opts.db) await db.close();
        log.info('gateway stopped', { country: config.country });
      })();
      return stopped;
    },
  };
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function closeServer(
  server: Server & { closeAllConnections?: () => void; closeIdleConnections?: () => void },
): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections?.();
    setTimeout(() => server.closeAllConnections?.(), 2_000).unref();
  });
}
