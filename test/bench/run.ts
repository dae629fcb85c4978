/**
 * `npm run bench [-- --json] [-- --cases N] [-- --only machine,crypto,tls,convert,audit,exchange] [-- --db pglite,postgres] [-- --reports N] [-- --events N] [-- --sign-alg ES256|PS256|EdDSA] [-- --modes single,batched] [-- --concurrency N]`
 *
 * Prints numbers; asserts nothing. Measures this machine's latency noise (the p99 of a fixed
 * piece of CPU work: the floor under any latency p99 measured here), its ceilings (signatures
 * and checks per second for PS256, ES256 and EdDSA, raw mTLS keep-alive requests per second)
 * and the FR → DE exchange (cases/s, p50 and p99 from forward to verified receipt) on PGlite
 * and, with DATABASE_URL, on PostgreSQL, both gateways signing with `--sign-alg` (default
 * ES256, what `icros pki init` issues).
 * The receiving gateway (DE) runs in its own process, as it would in production; FR runs in
 * this one. With --json each figure is one JSON line: {name, value, unit, limit}.
 */
import { parseArgs } from 'node:util';
import type { SigningAlg } from '../../src/config/load.js';
import { SIGNING_ALGS } from '../../src/envelope/jws-crypto.js';
import { benchAudit } from './audit.js';
import { benchConvert } from './convert.js';
import { benchCrypto } from './crypto.js';
import { benchExchange } from './exchange.js';
import { benchMachine } from './machine.js';
import { type Figure, printFigure } from './report.js';
import { benchTls } from './tls.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    cases: { type: 'string', default: '10000' },
    only: { type: 'string', default: 'machine,crypto,tls,convert,audit,exchange' },
    events: { type: 'string', default: '50000' },
    backlog: { type: 'string', default: '100000' },
    drivers: { type: 'string', default: 'embedded,bullmq' },
    modes: { type: 'string', default: 'single,batched' },
    reports: { type: 'string', default: '100000' },
    db: { type: 'string', default: 'pglite,postgres' },
    'sign-alg': { type: 'string', default: 'ES256' },
    concurrency: { type: 'string', default: '32' },
  },
});
const signAlg = values['sign-alg'] as SigningAlg;
if (!(SIGNING_ALGS as readonly string[]).includes(signAlg)) {
  console.error(`--sign-alg must be one of ${SIGNING_ALGS.join(', ')}, not ${JSON.stringify(signAlg)}`);
  process.exit(2);
}
const concurrency = Number(values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
  console.error(
    `--concurrency must be a whole number from 1 to 1000, not ${JSON.stringify(values.concurrency)}`,
  );
  process.exit(2);
}
const only = new Set(values.only!.split(','));
const modes = new Set(values.modes!.split(','));
const cases = Number(values.cases);
const json = Boolean(values.json);
const figures: Figure[] = [];
const emit = (f: Figure) => {
  figures.push(f);
  printFigure(f, json);
};

if (only.has('machine')) for (const f of await benchMachine((l) => !json && console.log(l))) emit(f);
if (only.has('crypto')) for (const f of await benchCrypto()) emit(f);
if (only.has('tls')) for (const f of await benchTls()) emit(f);
if (only.has('convert'))
  for (const f of await benchConvert(Number(values.reports), (l) => !json && console.log(l))) emit(f);
if (only.has('audit')) {
  const wanted = new Set(values.db!.split(','));
  for (const kind of (['pglite', 'postgres'] as const).filter(
    (k) => wanted.has(k) && (k === 'pglite' || Boolean(process.env.DATABASE_URL)),
  ))
    for (const f of await benchAudit(kind, Number(values.events), (l) => !json && console.log(l))) emit(f);
}
if (only.has('exchange')) {
  const wanted = new Set(values.db!.split(','));
  const kinds = (['pglite', 'postgres'] as const).filter(
    (k) => wanted.has(k) && (k === 'pglite' || Boolean(process.env.DATABASE_URL)),
  );
  const drivers = values
    .drivers!.split(',')
    .filter((d) => d === 'embedded' || (d === 'bullmq' && process.env.REDIS_URL)) as (
    | 'embedded'
    | 'bullmq'
  )[];
  const say = (line: string) => !json && console.log(line);
  for (const kind of kinds) {
    // PGlite: the embedded driver, single and batched. PostgreSQL: both drivers, both ways.
    for (const driver of kind === 'pglite' ? (['embedded'] as const) : drivers)
      for (const batched of [false, true].filter((b) => modes.has(b ? 'batched' : 'single')))
        for (const f of await benchExchange(kind, cases, say, { driver, batched, signAlg, concurrency }))
          emit(f);
    if (kind === 'postgres' && Number(values.backlog) > 0)
      for (const f of await benchExchange(kind, Number(values.backlog), say, {
        driver: 'embedded',
        batched: true,
        backlog: Number(values.backlog),
        signAlg,
        concurrency,
      }))
        emit(f);
  }
}
// The ceiling of the algorithm the exchange signed with.
const sign = figures.find((f) => f.name === `${signAlg.toLowerCase()}.sign`);
for (const f of figures.filter((f) => f.name.startsWith('exchange.') && f.name.endsWith('.cases_per_s'))) {
  if (sign)
    emit({
      name: f.name.replace('cases_per_s', 'ratio_to_sign_ceiling'),
      value: round(f.value / sign.value, 3),
      unit: 'ratio',
    });
}
process.exit(0);

function round(v: number, d: number) {
  return Math.round(v * 10 ** d) / 10 ** d;
}
