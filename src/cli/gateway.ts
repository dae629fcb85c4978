import { loadConfig } from '../config/load.js';
import { type Gateway, startGateway } from '../main.js';
import { explainListenError } from './listen-error.js';

/** Quiet time after a file change before the certificates are read again (editors write in steps). */
const WATCH_DEBOUNCE_MS = 500;

export async function runGatewayStart(opts: { config: string }): Promise<void> {
  const config = loadConfig(opts.config);
  let gw: Gateway;
  try {
    gw = await startGateway(config, {
      reloadConfig: () => loadConfig(opts.config),
      configFile: opts.config,
      watchDebounceMs: WATCH_DEBOUNCE_MS,
    });
  } catch (err) {
    throw explainListenError(err);
  }
  process.stdout.write(`${config.country} gateway running: partner ${gw.partnerUrl}, admin ${gw.adminUrl}\n`);
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
