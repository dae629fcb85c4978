import { loadConfig } from '../config/load.js';
import { type Gateway, startGateway } from '../main.js';
import { explainListenError } from './listen-error.js';
import { UsageError } from './usage.js';

/** Quiet time after a file change before the certificates are read again (editors write in steps). */
const WATCH_DEBOUNCE_MS = 500;

/**
 * `icros gateway start`. With `delivery: false` the gateway sends nothing (its delivery
 * worker, relay and maintenance do not start): an API-only replica, whose forwards other
 * replicas on the same database deliver, so that analysts' calls do not share an event loop
 * with delivery (docs/operations.md §9b).
 */
export async function runGatewayStart(opts: { config: string; delivery?: boolean }): Promise<void> {
  const config = loadConfig(opts.config);
  const delivery = opts.delivery !== false;
  if (!delivery && !config.database.url) {
    throw new UsageError(
      '--no-delivery needs a PostgreSQL database.url: with PGlite no other process can deliver this gateway’s messages',
    );
  }
  let gw: Gateway;
  try {
    gw = await startGateway(config, {
      reloadConfig: () => loadConfig(opts.config),
      configFile: opts.config,
      watchDebounceMs: WATCH_DEBOUNCE_MS,
      noWorker: !delivery,
    });
  } catch (err) {
    throw explainListenError(err);
  }
  process.stdout.write(
    `${config.country} gateway running: partner ${gw.partnerUrl}, admin ${gw.adminUrl}${delivery ? '' : '; delivery off (other replicas send)'}\n`,
  );
  const onHup = () => {
    void gw.reload('SIGHUP').then((r) => {
      process.stdout.write(
        `SIGHUP: reload ${r.result}${r.changed.length ? ` (${r.changed.join(', ')})` : ''}${r.error ? `: ${r.error}` : ''}\n`,
      );
    });
  };
  process.on('SIGHUP', onHup);
  await stopOnSignal(gw);
  process.off('SIGHUP', onHup);
}

/**
 * Resolve after SIGINT/SIGTERM once the gateway has stopped gracefully (within its
 * `shutdownTimeoutMs`). A second signal while stopping exits at once with status 1.
 */
export function stopOnSignal(...gateways: Gateway[]): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`${signal} again: exiting now without waiting\n`);
        process.exit(1);
      }
      stopping = true;
      process.stdout.write(`${signal}: stopping…\n`);
      void Promise.all(gateways.map((g) => g.stop())).then(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
