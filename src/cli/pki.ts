import type { SigningAlg } from '../config/load.js';
import { initPki } from '../pki/init.js';

export async function runPkiInit(opts: {
  dir: string;
  countries: string[];
  force: boolean;
  signAlg: SigningAlg;
}): Promise<void> {
  const layout = await initPki({ ...opts, log: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(
    `dev PKI ready in ${layout.dir} for ${layout.countries.join(', ')}\n` +
      `  start a gateway: icros gateway start --config ${layout.dir}/${layout.countries[0]}/gateway.json\n` +
      '  dev admin tokens: <country>/admin-tokens.json (mode 0600; never use these outside development)\n',
  );
}
