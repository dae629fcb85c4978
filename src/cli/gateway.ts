import { loadConfig } from '../config/load.js';
import { type Gateway, startGateway } from '../main.js';
import { explainListenError } from './listen-error.js';

export async function runGatewayStart(opts: { config: string }): Promise<void> {
  const config = loadConfig(opts.config);
  let gw: Gateway;
  try {
    gw = await startGateway(config);
  } catch (err) {
    throw explainListenError(err);
  }
  process.stdout.write(`${config.country} gateway running: partner ${gw.partnerUrl}, admin ${gw.adminUrl}\n`);
  await stopOnSignal(gw);
}

/** Resolve after SIGINT/SIGTERM once the gateway has stopped gracefully. */
export function stopOnSignal(...gateways: Gateway[]): Promise<void> {
  return new Promise((resolve) => {
    const stop = async (signal: string) => {
      process.stdout.write(`${signal}: stopping…\n`);
      await Promise.all(gateways.map((g) => g.stop()));
      resolve();
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}
