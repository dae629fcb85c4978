/**
 * `npm run faults [-- --short] [-- --cases N]`: the fault harness of issue #4. Real processes
 * on loopback only: a PostgreSQL and a Redis of its own (so stopping them harms nothing
 * else), an FR and a DE gateway (`icros gateway start`, each its own process), and a small
 * TCP proxy between them. Cases are forwarded FR → DE while, scenario by scenario:
 *   a. the sender and the receiver are killed with SIGKILL at random moments and restarted;
 *   b. Redis is restarted, and once flushed;
 *   c. PostgreSQL is stopped for 10 s;
 *   d. the partner (DE) is down for a stretch, then back;
 *   e. the proxy adds latency, drops and resets connections.
 * Then it checks that every message FR accepted is in DE's store exactly once, every
 * receipt is stored at FR, no message is left in a non-terminal state, and both audit chains
 * verify; prints a table and exits 1 on any loss, duplicate or broken chain.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { firstBrokenLink, readAuditEvents } from '../../src/audit/append.js';
import { initPki } from '../../src/pki/init.js';
import { openPostgres } from '../../src/store/postgres.js';
import { freePort } from '../helpers/federation.js';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    cases: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const SHORT = Boolean(values.short);
const TOTAL = Number(values.cases ?? (SHORT ? 1000 : 10_000));
const SCENARIOS = ['kill', 'redis', 'postgres', 'partner-down', 'network'] as const;
type Scenario = (typeof SCENARIOS)[number];
const PER = Math.floor(TOTAL / SCENARIOS.length);
const HANDLING = { tlp: 'AMBER', code: 'H1', purpose: 'fault harness', legalBasis: 'test' };
const t0 = Date.now();
const say = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (a: number, b: number) => a + Math.random() * (b - a);

const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-faults-'));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

// ------------------------------------------------------------------------------------------
// PostgreSQL of our own (initdb refuses root: run it as the postgres user when we are root)

const pgBin = execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1'])
  .toString()
  .trim();
const asPostgres = (cmd: string, args: string[]) =>
  process.getuid?.() === 0
    ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args])
    : execFileSync(cmd, args);
const pgDir = path.join(dir, 'pg');
const pgPort = await freePort();
function pgInit(): void {
  execFileSync('mkdir', ['-p', pgDir]);
  if (process.getuid?.() === 0) {
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres'])),
      Number(execFileSync('id', ['-g', 'postgres'])),
    );
    chownSync(
      pgDir,
      Number(execFileSync('id', ['-u', 'postgres'])),
      Number(execFileSync('id', ['-g', 'postgres'])),
    );
    chmodSync(dir, 0o755);
  }
  asPostgres(`${pgBin}/initdb`, ['-D', pgDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
}
function pgStart(): void {
  asPostgres(`${pgBin}/pg_ctl`, [
    '-D',
    pgDir,
    '-w',
    '-l',
    path.join(pgDir, 'log'),
    '-o',
    `-p ${pgPort} -k ${pgDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
    'start',
  ]);
}
function pgStop(): void {
  asPostgres(`${pgBin}/pg_ctl`, ['-D', pgDir, '-w', '-m', 'fast', 'stop']);
}
const PG_URL = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;

// ------------------------------------------------------------------------------------------
// Redis of our own

const redisPort = await freePort();
let redis: ChildProcess | undefined;
async function redisStart(): Promise<void> {
  redis = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  children.add(redis);
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('redis-cli', ['-p', String(redisPort), 'ping'], { stdio: 'pipe' });
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error('redis did not start');
}
async function redisStop(): Promise<void> {
  if (!redis) return;
  const r = redis;
  r.kill('SIGKILL');
  await new Promise((res) => (r.exitCode !== null ? res(null) : r.once('exit', res)));
  children.delete(r);
  redis = undefined;
}
const REDIS_URL = `redis://127.0.0.1:${redisPort}`;

// ------------------------------------------------------------------------------------------
// The proxy FR → DE: clean, or adding latency, drops and resets

const proxyState = { faulty: false };
const proxyPort = await freePort();
let dePartnerPort = 0;
const proxy = net.createServer((client) => {
  const upstream = net.connect(dePartnerPort, '127.0.0.1');
  const faults = () => proxyState.faulty;
  const pipe = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk) => {
      if (faults()) {
        const roll = Math.random();
        if (roll < 0.01) {
          client.resetAndDestroy();
          upstream.resetAndDestroy();
          return;
        }
        if (roll < 0.02) {
          client.destroy();
          upstream.destroy();
          return;
        }
        from.pause();
        setTimeout(
          () => {
            if (!to.destroyed) to.write(chunk);
            from.resume();
          },
          rand(5, 60),
        );
      } else if (!to.destroyed) to.write(chunk);
    });
    from.on('end', () => to.end());
    from.on('error', () => to.destroy());
    from.on('close', () => to.destroy());
  };
  pipe(client, upstream);
  pipe(upstream, client);
});
await new Promise<void>((r) => proxy.listen(proxyPort, '127.0.0.1', () => r()));

// ------------------------------------------------------------------------------------------
// The two gateways, as processes

const pki = path.join(dir, 'pki');
await initPki({ dir: pki, countries: ['FR', 'DE'] });
const ports = {
  fr: await freePort(),
  frAdmin: await freePort(),
  de: await freePort(),
  deAdmin: await freePort(),
};
dePartnerPort = ports.de;
function writeConfig(cc: 'FR' | 'DE'): string {
  const doc = JSON.parse(readFileSync(path.join(pki, cc, 'gateway.json'), 'utf8'));
  doc.listen = {
    partner: { host: '127.0.0.1', port: cc === 'FR' ? ports.fr : ports.de },
    admin: { host: '127.0.0.1', port: cc === 'FR' ? ports.frAdmin : ports.deAdmin },
  };
  doc.database = { url: PG_URL, schema: cc.toLowerCase(), poolSize: 10 };
  doc.redis = { url: REDIS_URL };
  doc.logLevel = 'error';
  // The harness forwards thousands of cases through the admin API as fast as it can.
  doc.admin = { ...doc.admin, rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } };
  doc.delivery = {
    baseDelayMs: 100,
    maxDelayMs: 2000,
    requestTimeoutMs: 3000,
    pollIntervalMs: 200,
    maintenanceIntervalMs: 2000,
    circuitProbeIntervalMs: 500,
    maxAttempts: 10_000,
  };
  doc.partners = doc.partners
    .filter((p: { country: string }) => p.country === (cc === 'FR' ? 'DE' : 'FR'))
    .map((p: { country: string }) => ({
      ...p,
      ...(cc === 'FR' ? { url: `https://127.0.0.1:${proxyPort}` } : {}),
      ratePerSecond: 1_000_000,
    }));
  const file = path.join(pki, cc, 'faults.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}
const configs = { FR: writeConfig('FR'), DE: writeConfig('DE') };
const gw: Record<'FR' | 'DE', ChildProcess | undefined> = { FR: undefined, DE: undefined };
const crashes: string[] = [];
const adminUrl = { FR: `http://127.0.0.1:${ports.frAdmin}`, DE: `http://127.0.0.1:${ports.deAdmin}` };

async function startGw(cc: 'FR' | 'DE'): Promise<void> {
  const { DATABASE_URL: _d, REDIS_URL: _r, ...env } = process.env;
  const child = spawn(process.execPath, ['bin/icros.js', 'gateway', 'start', '--config', configs[cc]], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    // Killed by the harness is the scenario; any other exit is a crash, and fails the run.
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM' && code !== 0) {
      crashes.push(`${cc} exited with ${code ?? signal}: ${stderr.slice(-500)}`);
      say(`${cc} CRASHED (exit ${code ?? signal}): ${stderr.slice(-500)}`);
    }
  });
  children.add(child);
  gw[cc] = child;
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${cc} gateway exited with ${child.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`${adminUrl[cc]}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`${cc} gateway did not start: ${stderr}`);
}
async function killGw(cc: 'FR' | 'DE', signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const child = gw[cc];
  if (!child || child.exitCode !== null) return;
  child.kill(signal);
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  children.delete(child);
  gw[cc] = undefined;
}

// ------------------------------------------------------------------------------------------
// Driving FR through its admin API, riding out its restarts

const frToken = JSON.parse(readFileSync(path.join(pki, 'FR', 'admin-tokens.json'), 'utf8')).analyst as string;
const sample = JSON.parse(readFileSync('schemas/icros-case/samples/phishing-bank.json', 'utf8'));

async function call(method: string, p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  for (;;) {
    try {
      const res = await fetch(`${adminUrl.FR}${p}`, {
        method,
        headers: { authorization: `Bearer ${frToken}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      if (res.status >= 500) throw new Error(`${res.status} ${text.slice(0, 200)}`);
      return { status: res.status, json: text ? JSON.parse(text) : null };
    } catch {
      await sleep(200); // FR down, restarting, or its database away: try again
    }
  }
}

/**
 * Ingest and forward `n` cases, the forwards spread over `spreadMs` so that they overlap the
 * fault; resolves with how many forwards FR answered 202.
 */
async function forwardCases(n: number, label: string, spreadMs = 0): Promise<number> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = Array.from({ length: Math.min(500, n - i) }, (_, j) => {
      const id = randomUUID();
      ids.push(id);
      return { ...sample, id, origin: { ...sample.origin, reference: `FAULTS-${label}-${i + j}` } };
    });
    const r = await call('POST', '/api/reports', batch);
    if (r.status !== 201) throw new Error(`ingest refused: ${JSON.stringify(r.json).slice(0, 300)}`);
  }
  let accepted = 0;
  let next = 0;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < ids.length) {
        const i = next++;
        const id = ids[i]!;
        const due = start + (spreadMs * i) / ids.length;
        if (due > Date.now()) await sleep(due - Date.now());
        const r = await call('POST', `/api/cases/${id}/forward`, { to: ['DE'], handling: HANDLING });
        if (r.status === 202) accepted++;
        else throw new Error(`forward refused: ${JSON.stringify(r.json).slice(0, 300)}`);
      }
    }),
  );
  return accepted;
}

// ------------------------------------------------------------------------------------------
// Checks, straight from the databases

async function query<T>(sqlText: string, params: unknown[] = []): Promise<T[]> {
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: PG_URL });
    try {
      await c.connect();
      return (await c.query(sqlText, params)).rows as T[];
    } catch (err) {
      if (i > 100) throw err;
      await sleep(200);
    } finally {
      await c.end().catch(() => {});
    }
  }
}

interface Tally {
  outbound: number;
  open: number;
  dead: number;
  delivered: number;
  receipts: number;
  inbound: number;
  missing: number;
}

async function tally(): Promise<Tally> {
  const [r] = await query<Record<keyof Tally, number>>(`
    SELECT
      (SELECT count(*) FROM fr.messages WHERE direction = 'out')::int AS outbound,
      (SELECT count(*) FROM fr.messages WHERE direction = 'out' AND state IN ('queued', 'sending', 'retrying'))::int AS open,
      (SELECT count(*) FROM fr.messages WHERE direction = 'out' AND state = 'dead')::int AS dead,
      (SELECT count(*) FROM fr.messages WHERE direction = 'out' AND state = 'delivered')::int AS delivered,
      (SELECT count(*) FROM fr.receipts WHERE direction = 'out')::int AS receipts,
      (SELECT count(*) FROM de.messages WHERE direction = 'in' AND peer = 'FR')::int AS inbound,
      (SELECT count(*) FROM fr.messages o WHERE o.direction = 'out'
         AND NOT EXISTS (SELECT 1 FROM de.messages i WHERE i.direction = 'in' AND i.peer = 'FR' AND i.id = o.id))::int AS missing`);
  return r!;
}

async function drain(limitMs: number): Promise<{ tally: Tally; ms: number }> {
  const start = Date.now();
  for (;;) {
    const t = await tally();
    if (t.open === 0 || Date.now() - start > limitMs) return { tally: t, ms: Date.now() - start };
    await sleep(500);
  }
}

async function chainOk(schema: string): Promise<string> {
  const db = await openPostgres(PG_URL, schema, 2);
  try {
    let prev: { seq: number; hash: string } | undefined;
    let checked = 0;
    for (;;) {
      const events = await readAuditEvents(db, prev?.seq ?? 0, 5000);
      if (events.length === 0) return `ok (${checked} events)`;
      const bad = firstBrokenLink(events, prev);
      if (bad !== null) return `BROKEN at seq ${bad}`;
      checked += events.length;
      const last = events.at(-1)!;
      prev = { seq: last.seq, hash: last.hash };
    }
  } finally {
    await db.close();
  }
}

// ------------------------------------------------------------------------------------------
// The scenarios

async function during(work: Promise<unknown>, fault: () => Promise<void>): Promise<void> {
  let done = false;
  const w = work.finally(() => {
    done = true;
  });
  const f = (async () => {
    while (!done) await fault();
  })();
  await Promise.all([w, f]);
}

const faults: Record<Scenario, { what: string; run: (n: number) => Promise<number> }> = {
  kill: {
    what: 'kill -9 of the sender and of the receiver at random moments, then restart',
    run: (n) => {
      const work = forwardCases(n, 'kill', SHORT ? 8000 : 30_000);
      let kills = 0;
      return during(work, async () => {
        await sleep(rand(300, 1500));
        const cc = kills++ % 2 === 0 ? 'FR' : 'DE';
        await killGw(cc);
        await sleep(rand(100, 800));
        await startGw(cc);
      }).then(() => work);
    },
  },
  redis: {
    what: 'Redis restarted twice, and flushed once',
    run: async (n) => {
      const work = forwardCases(n, 'redis', 7000);
      await sleep(1000);
      await redisStop();
      await sleep(1000);
      await redisStart();
      await sleep(1500);
      execFileSync('redis-cli', ['-p', String(redisPort), 'FLUSHALL']);
      await sleep(1500);
      await redisStop();
      await redisStart();
      return work;
    },
  },
  postgres: {
    what: 'PostgreSQL stopped for 10 s',
    run: async (n) => {
      const work = forwardCases(n, 'postgres', 14_000);
      await sleep(1500);
      pgStop();
      await sleep(10_000);
      pgStart();
      return work;
    },
  },
  'partner-down': {
    what: `the partner (DE) down for ${SHORT ? 8 : 20} s, then back`,
    run: async (n) => {
      await killGw('DE', 'SIGTERM');
      const work = forwardCases(n, 'down', SHORT ? 6000 : 15_000);
      await sleep(SHORT ? 8000 : 20_000);
      await startGw('DE');
      return work;
    },
  },
  network: {
    what: 'proxy adds 5–60 ms per chunk, drops 1% and resets 1% of chunks',
    run: async (n) => {
      proxyState.faulty = true;
      try {
        const accepted = await forwardCases(n, 'net', SHORT ? 5000 : 20_000);
        await drain(SHORT ? 20_000 : 60_000);
        return accepted;
      } finally {
        proxyState.faulty = false;
      }
    },
  },
};

// ------------------------------------------------------------------------------------------

say(
  `fault harness: ${TOTAL} cases FR → DE over ${SCENARIOS.length} scenarios${SHORT ? ' (short)' : ''}; work dir ${dir}`,
);
pgInit();
pgStart();
await redisStart();
await startGw('DE');
await startGw('FR');
const rows: {
  scenario: string;
  what: string;
  accepted: number;
  delivered: string;
  drainS: string;
  result: string;
}[] = [];
let failed = false;
for (const name of SCENARIOS) {
  const before = await tally();
  say(`scenario ${name}: ${faults[name].what} …`);
  const accepted = await faults[name].run(PER);
  const { tally: after, ms } = await drain(SHORT ? 120_000 : 300_000);
  const delivered = after.delivered - before.delivered;
  const ok = after.open === 0 && after.dead === 0 && after.missing === 0;
  if (!ok) failed = true;
  rows.push({
    scenario: name,
    what: faults[name].what,
    accepted,
    delivered: `${delivered}`,
    drainS: (ms / 1000).toFixed(1),
    result: ok ? 'ok' : `open ${after.open}, dead ${after.dead}, missing ${after.missing}`,
  });
  say(
    `scenario ${name}: ${accepted} forwarded, ${delivered} delivered, drained ${(ms / 1000).toFixed(1)} s after — ${rows.at(-1)!.result}`,
  );
}

const final = await tally();
const chains = { FR: await chainOk('fr'), DE: await chainOk('de') };
const exactlyOnce = final.missing === 0 && final.inbound === final.outbound;
const receiptsOk = final.receipts === final.outbound;
const terminal = final.open === 0 && final.dead === 0;
if (!exactlyOnce || !receiptsOk || !terminal || !chains.FR.startsWith('ok') || !chains.DE.startsWith('ok'))
  failed = true;
if (crashes.length) failed = true;

console.log('');
console.log('| scenario | fault | forwarded | delivered | drained after (s) | result |');
console.log('|---|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.scenario} | ${r.what} | ${r.accepted} | ${r.delivered} | ${r.drainS} | ${r.result} |`);
console.log('');
console.log(`messages accepted at FR:            ${final.outbound}`);
console.log(
  `in DE's store (exactly once):       ${final.inbound} ${exactlyOnce ? 'ok' : `MISMATCH (missing ${final.missing})`}`,
);
console.log(`receipts stored at FR:              ${final.receipts} ${receiptsOk ? 'ok' : 'MISMATCH'}`);
console.log(
  `left non-terminal / dead at FR:     ${final.open} / ${final.dead} ${terminal ? 'ok' : 'NOT OK'}`,
);
console.log(`FR audit chain:                     ${chains.FR}`);
console.log(`DE audit chain:                     ${chains.DE}`);
console.log(`gateway crashes:                    ${crashes.length ? crashes.length : 'none'}`);
for (const c of crashes) console.log(`  ${c}`);
console.log(`time:                               ${((Date.now() - t0) / 1000).toFixed(0)} s`);
console.log(failed ? '\nFAULTS: FAILED' : '\nFAULTS: all messages delivered exactly once');

await killGw('FR', 'SIGTERM');
await killGw('DE', 'SIGTERM');
await redisStop();
try {
  pgStop();
} catch {
  // already stopped
}
proxy.close();
if (!values.keep) execFileSync('rm', ['-rf', dir]);
process.exit(failed ? 1 : 0);
