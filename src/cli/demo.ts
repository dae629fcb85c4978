/**
 * `icros demo`: the whole exchange on one machine with nothing to set up. A dev PKI is made
 * on first run; FR and DE start on embedded PGlite; the sample cases are ingested at FR
 * through its admin API, forwarded to DE, delivered over mTLS, stored once and answered
 * with signed receipts that FR verifies. One line per case, then a summary.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { IcrosError } from '../errors.js';
import { type Gateway, startGateway } from '../main.js';
import { initPki } from '../pki/init.js';
import { stopOnSignal } from './gateway.js';
import { explainListenError } from './listen-error.js';

const COUNTRIES = ['FR', 'DE'];
const HANDLING = {
  tlp: 'AMBER',
  code: 'H1',
  purpose: 'Investigation of online fraud affecting victims in both countries',
  legalBasis: 'Budapest Convention Art. 25 and 27; Directive (EU) 2016/680 Art. 35',
};
const DELIVERY_TIMEOUT_MS = 60_000;

export async function runDemo(opts: { once: boolean; dir: string }): Promise<void> {
  const dir = path.resolve(opts.dir);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  if (
    !existsSync(path.join(dir, 'ca.crt')) ||
    COUNTRIES.some((cc) => !existsSync(path.join(dir, cc, 'gateway.json')))
  ) {
    say(`Creating a dev PKI for ${COUNTRIES.join(', ')} in ${dir} …`);
    await initPki({ dir, countries: COUNTRIES });
  }
  // The demo runs on embedded storage whatever the environment says (DESIGN §6).
  const env = { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
  const gateways: Record<string, Gateway> = {};
  try {
    for (const cc of ['DE', 'FR']) {
      const config = loadConfig(path.join(dir, cc, 'gateway.json'), {}, env);
      if (!existsSync(path.join(config.database.dir ?? '', 'PG_VERSION'))) {
        say(`Initialising ${cc}'s embedded database (first run only, a few seconds) …`);
      }
      gateways[cc] = await startGateway(config).catch((err) => {
        throw explainListenError(err);
      });
      say(`${cc} gateway up: partner ${gateways[cc].partnerUrl}, admin ${gateways[cc].adminUrl}`);
    }
    const ok = await exchange(gateways.FR!, dir, say);
    if (opts.once) {
      process.exitCode = ok ? 0 : 1;
      return;
    }
    say('');
    say('Both gateways keep running. Try:');
    say(
      `  curl -H "Authorization: Bearer $(jq -r .analyst ${path.join(dir, 'FR', 'admin-tokens.json')})" ${gateways.FR!.adminUrl}/api/messages`,
    );
    say(`Dev tokens: ${path.join(dir, '<country>', 'admin-tokens.json')}. Ctrl-C stops.`);
    await stopOnSignal(...Object.values(gateways));
  } finally {
    await Promise.all(Object.values(gateways).map((g) => g.stop()));
  }
}

async function exchange(fr: Gateway, dir: string, say: (line: string) => void): Promise<boolean> {
  const token = JSON.parse(readFileSync(path.join(dir, 'FR', 'admin-tokens.json'), 'utf8')).analyst as string;
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${fr.adminUrl}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 400)
      throw new IcrosError('INTERNAL', `${method} ${p} answered ${res.status}: ${JSON.stringify(json)}`);
    return json;
  };

  const samplesDir = new URL('../../schemas/icros-case/samples/', import.meta.url);
  const cases = readdirSync(samplesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map(
      (f) =>
        JSON.parse(readFileSync(new URL(f, samplesDir), 'utf8')) as {
          id: string;
          origin: { reference: string };
        },
    );
  say(`\nFR ingests ${cases.length} sample cases and forwards them to DE:`);
  await api('POST', '/api/reports?format=icros-case', cases);

  const started = Date.now();
  const results = await Promise.all(
    cases.map(async (c) => {
      const t0 = Date.now();
      const fwd = (await api('POST', `/api/cases/${c.id}/forward`, { to: ['DE'], handling: HANDLING })) as {
        messages: { id: string }[];
      };
      const id = fwd.messages[0]!.id;
      for (;;) {
        const m = (await api('GET', `/api/messages/${id}`)) as {
          state: string;
          attempts: number;
          last_error: { code: string; detail: string } | null;
          receipt: { receipt_id: string; audit_head_seq: number } | null;
        };
        if (m.state === 'delivered' && m.receipt) {
          say(
            `  ✓ ${c.origin.reference}  message ${id}  delivered in ${Date.now() - t0} ms, receipt ${m.receipt.receipt_id} verified (DE audit head #${m.receipt.audit_head_seq})`,
          );
          return true;
        }
        if (m.state === 'dead' || Date.now() - t0 > DELIVERY_TIMEOUT_MS) {
          say(
            `  ✗ ${c.origin.reference}  message ${id}  ${m.state} after ${m.attempts} attempt(s): ${m.last_error?.code ?? 'timeout'} ${m.last_error?.detail ?? ''}`,
          );
          return false;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }),
  );
  const delivered = results.filter(Boolean).length;
  say(
    `\n${delivered}/${cases.length} cases delivered FR → DE, ${delivered} receipts verified, in ${Date.now() - started} ms.`,
  );
  return delivered === cases.length;
}
