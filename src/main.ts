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
import { IcrosError } from './errors.js';
import { createPartnerApp } from './inbound/app.js';
import { partnerRegistry } from './inbound/identity.js';
import { createPartnerServer, listen } from './inbound/server.js';
import { log, setLogLevel } from './log.js';
import { createMetrics } from './metrics.js';
import { type BullmqQueueOptions, createBullmqQueue } from './outbound/bullmq.js';
import { createCaseCache } from './outbound/case-cache.js';
import { createEmbeddedQueue, type EmbeddedQueueOptions } from './outbound/embedded.js';
import type { DeliveryQueue } from './outbound/queue.js';
import { createReloader, type ReloadResult, type ReloadTrigger } from './reload.js';
import { type Db, openDb } from './store/db.js';
import { startRetention } from './store/retention.js';
import { startOutboxStats } from './store/stats.js';

export interface Gateway {
  ctx: GatewayContext;
  queue: DeliveryQueue;
  partnerUrl: string;
  adminUrl: string;
  /**
   * Stop gracefully: refuse new connections, let requests and deliveries in flight finish
   * within `shutdownTimeoutMs` (then cut them), write the final audit checkpoint, close the
   * queue and the database.
   */
  stop(): Promise<void>;
  /** Read certificates, keys and partners again and put them in use (reload.ts); never throws. */
  reload(trigger?: ReloadTrigger): Promise<ReloadResult>;
}

export interface StartOptions extends EmbeddedQueueOptions, BullmqQueueOptions {
  /** Use this database instead of opening the configured one (tests). */
  db?: Db;
  now?: () => Date;
  /** Leave the delivery worker stopped (tests drive it). */
  noWorker?: boolean;
  /** The delivery queue driver; default `bullmq` when `redis.url` (REDIS_URL) is set, else `embedded`. */
  driver?: 'embedded' | 'bullmq';
  /**
   * Where a reload (SIGHUP, file change) reads the config again, e.g. `() => loadConfig(file)`.
   * Without it a reload has nothing to read and is refused.
   */
  reloadConfig?: () => GatewayConfig;
  /** The config file, watched along with the PEM files it names. */
  configFile?: string;
  /** Watch the config and PEM files and reload on change, after this many ms of quiet. */
  watchDebounceMs?: number;
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
    cases: createCaseCache(config.cases.cacheBytes),
  };
  // Gauges read at scrape time follow ctx, whose config changes on a reload.
  ctx.metrics.bind({ db, config: () => ctx.config, now: () => ctx.now(), cases: ctx.cases });
  const driver = opts.driver ?? (config.redis ? 'bullmq' : 'embedded');
  const queue = driver === 'bullmq' ? createBullmqQueue(ctx, opts) : createEmbeddedQueue(ctx, opts);
  const partnerServer = createPartnerServer(config, createPartnerApp(ctx));
  partnerServer.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    const reason = /^[A-Z0-9_]{1,80}$/.test(err.code ?? '') ? err.code! : 'other';
    ctx.metrics.tlsRefused.inc({ reason });
  });
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
  // Planner statistics for a new outbox, with or without a delivery worker (src/store/stats.ts).
  const outboxStats = startOutboxStats(db);
  const reloader = createReloader({
    ctx,
    partnerServer,
    queue,
    load:
      opts.reloadConfig ??
      (() => {
        throw new IcrosError('CONFIG_UNREADABLE', 'this gateway was started without a config file to reload');
      }),
    ...(opts.configFile ? { configFile: opts.configFile } : {}),
  });
  const unwatch =
    opts.reloadConfig && opts.watchDebounceMs !== undefined ? reloader.watch(opts.watchDebounceMs) : () => {};
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
    reload: (trigger = 'api') => reloader.reload(trigger),
    stop() {
      stopped ??= (async () => {
        unwatch();
        const deadline = Date.now() + ctx.config.shutdownTimeoutMs;
        log.info('gateway stopping: no new connections; waiting for requests and deliveries in flight', {
          country: config.country,
          timeoutMs: ctx.config.shutdownTimeoutMs,
        });
        // Listeners and the delivery worker drain side by side, under one deadline.
        await Promise.all([
          closeServer(partnerServer, deadline),
          closeServer(adminServer, deadline),
          withDeadline(queue.stop(), deadline, () =>
            log.warn(
              'deliveries still in flight at the shutdown timeout; their leases expire and they are retried',
            ),
          ),
        ]);
        await retention.stop();
        await outboxStats.stop();
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

/**
 * Stop listening at once (new connections are refused), close keep-alive connections as
 * soon as they are idle, and cut whatever is still open at `deadline`.
 */
function closeServer(
  server: Server & { closeAllConnections?: () => void; closeIdleConnections?: () => void },
  deadline: number,
): Promise<void> {
  return new Promise((resolve) => {
    const idle = setInterval(() => server.closeIdleConnections?.(), 50);
    const cut = setTimeout(
      () => {
        log.warn('requests still in flight at the shutdown timeout: connections closed');
        server.closeAllConnections?.();
      },
      Math.max(0, deadline - Date.now()),
    );
    server.close(() => {
      clearInterval(idle);
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections?.();
  });
}

/** Wait for `p`, or until `deadline` (then call `onTimeout` and go on). */
async function withDeadline(p: Promise<void>, deadline: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), Math.max(0, deadline - Date.now()));
  });
  const r = await Promise.race([p.then(() => 'done' as const), late]);
  clearTimeout(timer);
  if (r === 'late') onTimeout();
}
