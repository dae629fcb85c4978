/**
 * FR → DE throughput and latency: DE runs as its own `icros gateway start` process, FR in
 * this one. N cases are ingested at FR first (not timed); then all are forwarded and the
 * clock runs until every receipt is verified. Latency = forward call → verified receipt.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { ingestReports } from '../../src/api/reports.js';
import { loadConfig, type SigningAlg } from '../../src/config/load.js';
import { type Gateway, startGateway } from '../../src/main.js';
import { forwardCase } from '../../src/outbound/forward.js';
import { initPki } from '../../src/pki/init.js';
import { freePort } from '../helpers/federation.js';
import { dropKeys } from '../helpers/redis.js';
import { type CpuSample, cpuMsPer, cpuSample } from './cpu.js';
import { type Figure, percentile } from './report.js';

/** The quiet run's pace: an analyst forwarding while the gateway has little else to do. */
const QUIET_RATE = 20;
const HANDLING = { tlp: 'AMBER', code: 'H1', purpose: 'benchmark', legalBasis: 'benchmark' } as const;
const sample = JSON.parse(
  readFileSync(new URL('../../schemas/icros-case/samples/phishing-bank.json', import.meta.url), 'utf8'),
);

export interface ExchangeMode {
  driver: 'embedded' | 'bullmq';
  /** Send backlogs in POST /v1/messages:batch requests (else single messages only). */
  batched: boolean;
  /** Instead of the burst and latency runs: forward `backlog` messages with the worker stopped (the partner "down"), then time the drain. */
  backlog?: number;
  /** The gateways' signing keys (`icros pki init --sign-alg`); default that of pki init. */
  signAlg?: SigningAlg;
  /** FR's `delivery.concurrency` towards DE: requests in flight (default 32). */
  concurrency?: number;
}

export async function benchExchange(
  kind: 'pglite' | 'postgres',
  n: number,
  say: (l: string) => void,
  mode: ExchangeMode = { driver: 'embedded', batched: false },
): Promise<Figure[]> {
  const label = `${kind}.${mode.driver}.${mode.batched ? 'batched' : 'single'}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-bench-'));
  await initPki({ dir, countries: ['FR', 'DE'], signAlg: mode.signAlg });
  const ports = {
    fr: await freePort(),
    frAdmin: await freePort(),
    de: await freePort(),
    deAdmin: await freePort(),
  };
  const url = process.env.DATABASE_URL;
  const suffix = randomBytes(4).toString('hex');
  const dbFor = (cc: string) =>
    kind === 'postgres'
      ? { url, schema: `bench_${cc}_${suffix}`, poolSize: 20 }
      : { dir: path.join(dir, cc, 'data') };

  const deDoc = JSON.parse(readFileSync(path.join(dir, 'DE', 'gateway.json'), 'utf8'));
  Object.assign(deDoc, {
    listen: {
      partner: { host: '127.0.0.1', port: ports.de },
      admin: { host: '127.0.0.1', port: ports.deAdmin },
    },
    database: dbFor('de'),
    logLevel: 'warn',
  });
  deDoc.partners[0].ratePerSecond = 1_000_000;
  writeFileSync(path.join(dir, 'DE', 'bench.json'), JSON.stringify(deDoc));
  const { DATABASE_URL: _omit, REDIS_URL: _noRedis, ...env } = process.env;
  const de = spawn(
    process.execPath,
    // `node --cpu-prof … run.ts` profiles DE as well.
    [
      ...process.execArgv.filter((a) => a.startsWith('--cpu-prof')),
      'bin/icros.js',
      'gateway',
      'start',
      '--config',
      path.join(dir, 'DE', 'bench.json'),
    ],
    {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  try {
    await waitHealthy(`http://127.0.0.1:${ports.deAdmin}/healthz`, de);
    // Deliveries are reported by case id (one message per case here).
    let onDelivered: (caseId: string) => void = () => {};
    const fr = await startGateway(
      loadConfig(
        path.join(dir, 'FR', 'gateway.json'),
        {
          listen: { partner: { port: ports.fr }, admin: { port: ports.frAdmin } },
          database: { ...dbFor('fr'), dir: kind === 'pglite' ? path.join(dir, 'FR', 'data') : undefined },
          partners: [
            {
              ...JSON.parse(readFileSync(path.join(dir, 'FR', 'gateway.json'), 'utf8')).partners[0],
              url: `https://127.0.0.1:${ports.de}`,
            },
          ],
          delivery: {
            concurrency: mode.concurrency ?? 32,
            pollIntervalMs: 200,
            batchMaxMessages: mode.batched ? 100 : 0,
          },
          ...(mode.driver === 'bullmq' ? { redis: { url: process.env.REDIS_URL } } : {}),
          logLevel: 'warn',
        },
        {},
      ),
      {
        onOutcome: (row, outcome) => outcome === 'delivered' && row.case_id && onDelivered(row.case_id),
        driver: mode.driver,
        ...(mode.driver === 'bullmq' ? { redisPrefix: `bench-${suffix}` } : {}),
        ...(mode.backlog ? { noWorker: true } : {}),
      },
    );
    try {
      say(`exchange ${label}: ingesting ${n} cases at FR (not timed) …`);
      const ids: string[] = [];
      for (let i = 0; i < n; i += 1000) {
        const batch = Array.from({ length: Math.min(1000, n - i) }, (_, j) => {
          const id = randomUUID();
          ids.push(id);
          return { ...sample, id, origin: { ...sample.origin, reference: `BENCH-${i + j}` } };
        });
        await ingestReports(fr.ctx, 'icros-case', Buffer.from(JSON.stringify(batch)), 'bench');
      }
      if (mode.backlog)
        return await drainBacklog(fr, { dePid: de.pid, kind, driver: mode.driver }, ids, label, say, (f) => {
          onDelivered = f;
        });
      say(`exchange ${label}: forwarding ${n} cases FR → DE as fast as they are accepted …`);
      const cpu0 = cpuSample(de.pid);
      const busy0 = busyTimes();
      const wal0 = kind === 'postgres' && url ? await walPosition(url) : undefined;
      const burst = await forwardAll(
        fr,
        ids.slice(0, n),
        0,
        (f) => {
          onDelivered = f;
        },
        say,
      );
      const rate = burst.done / burst.seconds;
      const cpu1 = cpuSample(de.pid);
      const walBytes = wal0 !== undefined && url ? (await walPosition(url)) - wal0 : undefined;
      const busy = busyFraction(busy0, busyTimes());
      const pacedN = Math.min(1000, Math.max(50, Math.floor(n / 10)));
      const quietN = 200;
      const extra: string[] = [];
      for (let i = 0; i < pacedN + 2 * quietN; i++) extra.push(randomUUID());
      await ingestReports(
        fr.ctx,
        'icros-case',
        Buffer.from(
          JSON.stringify(
            extra.map((id, i) => ({ ...sample, id, origin: { ...sample.origin, reference: `PACED-${i}` } })),
          ),
        ),
        'bench',
      );
      say(
        `exchange ${label}: ${pacedN} more cases paced at half that rate (${Math.round(rate / 2)}/s) for latency …`,
      );
      const paced = await forwardAll(
        fr,
        extra.slice(0, pacedN),
        rate / 2,
        (f) => {
          onDelivered = f;
        },
        say,
      );
      say(
        `exchange ${label}: ${quietN} more forwards at ${QUIET_RATE}/s, the analyst's call on a quiet gateway …`,
      );
      const quiet = await forwardAll(
        fr,
        extra.slice(pacedN, pacedN + quietN),
        QUIET_RATE,
        (f) => {
          onDelivered = f;
        },
        say,
      );
      // The same, for cases the gateway does not hold (outbound/case-cache.ts): read, then appended.
      const unkept = extra.slice(pacedN + quietN);
      for (const id of unkept) fr.ctx.cases.drop(id);
      say(`exchange ${label}: ${quietN} more at ${QUIET_RATE}/s, of cases not kept in memory …`);
      const unkeptRun = await forwardAll(
        fr,
        unkept,
        QUIET_RATE,
        (f) => {
          onDelivered = f;
        },
        say,
      );
      return [
        {
          name: `exchange.${label}.cases_per_s`,
          value: Math.round(rate),
          unit: `cases/s (${mode.signAlg ?? 'default'} signatures, ${mode.concurrency ?? 32} requests in flight)`,
          ...(kind === 'postgres' ? { limit: mode.batched ? '>= 1000' : '>= 400' } : {}),
        },
        { name: `exchange.${label}.delivered`, value: burst.done, unit: `of ${n}` },
        {
          name: `exchange.${label}.backlog_latency_p50`,
          value: Math.round(percentile(burst.latencies, 50)),
          unit: 'ms (all queued at once)',
        },
        {
          name: `exchange.${label}.latency_p50`,
          value: Math.round(percentile(paced.latencies, 50)),
          unit: 'ms (at half the max rate)',
        },
        {
          name: `exchange.${label}.latency_p99`,
          value: Math.round(percentile(paced.latencies, 99)),
          unit: 'ms (at half the max rate)',
        },
        {
          name: `exchange.${label}.forward_p99`,
          value: round1(percentile(paced.forwardMs, 99)),
          unit: 'ms (at half the max rate)',
          limit: '<= 5',
        },
        {
          name: `exchange.${label}.event_loop_delay_p99`,
          value: round1(paced.loopDelayP99),
          unit: "ms (FR's event loop at half the max rate: how late a 1 ms timer ran)",
        },
        {
          name: `exchange.${label}.forward_append_p99`,
          value: round1(percentile(paced.appendMs, 99)),
          unit: "ms (at half the max rate: the forward's append, waiting for the audit writer's batch included)",
        },
        ...(cpu0 && cpu1 ? cpuFigures(label, cpuMsPer(cpu0, cpu1, burst.done), kind, mode.driver) : []),
        ...(walBytes !== undefined
          ? [
              {
                name: `exchange.${label}.wal_kb_per_case`,
                value: round1(walBytes / 1024 / burst.done),
                unit: 'KB of WAL written per case during the burst (both gateways)',
              },
            ]
          : []),
        {
          name: `exchange.${label}.cpu_busy`,
          value: Math.round(busy * 100),
          unit: `% of ${os.cpus().length} cores busy during the burst`,
        },
        {
          name: `exchange.${label}.forward_p50_quiet`,
          value: round1(percentile(quiet.forwardMs, 50)),
          unit: `ms (${QUIET_RATE} forwards/s, cases ingested here)`,
        },
        {
          name: `exchange.${label}.forward_p99_quiet`,
          value: round1(percentile(quiet.forwardMs, 99)),
          unit: `ms (${QUIET_RATE} forwards/s, cases ingested here)`,
          limit: '<= 5',
        },
        {
          name: `exchange.${label}.forward_p50_quiet_unkept`,
          value: round1(percentile(unkeptRun.forwardMs, 50)),
          unit: `ms (${QUIET_RATE} forwards/s, each case read first)`,
        },
        {
          name: `exchange.${label}.forward_p99_quiet_unkept`,
          value: round1(percentile(unkeptRun.forwardMs, 99)),
          unit: `ms (${QUIET_RATE} forwards/s, each case read first)`,
        },
      ];
    } finally {
      await fr.stop();
      // The queue's keys (BullMQ's meta, id and event stream) go with the run.
      if (mode.driver === 'bullmq' && process.env.REDIS_URL)
        await dropKeys(process.env.REDIS_URL, `bench-${suffix}`);
    }
  } finally {
    de.kill('SIGTERM');
    await new Promise((r) => de.once('exit', r));
    if (kind === 'postgres' && url) await dropSchemas(url, [`bench_fr_${suffix}`, `bench_de_${suffix}`]);
  }
}

/** Forward every case with the worker stopped (a partner outage), then start it: the drain rate. */
async function drainBacklog(
  fr: Gateway,
  run: { dePid: number | undefined; kind: string; driver: string },
  caseIds: string[],
  label: string,
  say: (l: string) => void,
  listen: (onDelivered: (caseId: string) => void) => void,
): Promise<Figure[]> {
  say(`exchange ${label}: ${caseIds.length} messages queued while DE is unreachable …`);
  let next = 0;
  const f0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < caseIds.length) {
        const caseId = caseIds[next++]!;
        await forwardCase(fr.ctx, { caseId, to: ['DE'], handling: HANDLING, actor: 'bench' });
      }
    }),
  );
  const forwardPerS = caseIds.length / ((performance.now() - f0) / 1000);
  say(`exchange ${label}: ${Math.round(forwardPerS)} forwards/s with no delivery running`);
  let done = 0;
  let finish!: () => void;
  const allDone = new Promise<void>((r) => {
    finish = r;
  });
  listen(() => {
    if (++done === caseIds.length) finish();
  });
  say(`exchange ${label}: DE back; draining the backlog …`);
  const progress = setInterval(() => say(`  … ${done}/${caseIds.length} delivered`), 5000);
  const timeout = setTimeout(finish, 30 * 60_000);
  const cpu0 = cpuSample(run.dePid);
  const busy0 = busyTimes();
  const t0 = performance.now();
  fr.queue.start();
  await allDone;
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSample(run.dePid);
  const busy = busyFraction(busy0, busyTimes());
  clearTimeout(timeout);
  clearInterval(progress);
  return [
    {
      name: `exchange.${label}.backlog_drain_per_s`,
      value: Math.round(done / seconds),
      unit: `messages/s (${caseIds.length} queued during an outage)`,
      limit: '>= 1000',
    },
    { name: `exchange.${label}.backlog_drained`, value: done, unit: `of ${caseIds.length}` },
    ...(cpu0 && cpu1
      ? cpuFigures(`${label}.drain`, cpuMsPer(cpu0, cpu1, done), run.kind, run.driver, 'message')
      : []),
    {
      name: `exchange.${label}.drain.cpu_busy`,
      value: Math.round(busy * 100),
      unit: `% of ${os.cpus().length} cores busy during the drain`,
    },
    {
      name: `exchange.${label}.forward_per_s`,
      value: Math.round(forwardPerS),
      unit: 'forward calls/s (16 at a time, no delivery running)',
    },
  ];
}

interface Run {
  done: number;
  seconds: number;
  latencies: number[];
  forwardMs: number[];
  /** FR's event loop (this process): how late a timer due every millisecond ran, p99 (ms). */
  loopDelayP99: number;
  /** Of each forward, its append: waiting for the audit writer's batch, then its one statement. */
  appendMs: number[];
}

/**
 * Forward every case in `caseIds` to DE (32 at a time, or paced at `perSecond` when > 0) and
 * resolve when all are delivered: latency = forward call → verified receipt.
 */
async function forwardAll(
  fr: Gateway,
  caseIds: string[],
  perSecond: number,
  listen: (onDelivered: (caseId: string) => void) => void,
  say: (l: string) => void,
): Promise<Run> {
  const started = new Map<string, number>();
  const latencies: number[] = [];
  const forwardMs: number[] = [];
  let done = 0;
  let finish!: () => void;
  const allDone = new Promise<void>((r) => {
    finish = r;
  });
  listen((caseId) => {
    const t = started.get(caseId);
    if (t === undefined) return;
    started.delete(caseId);
    latencies.push(performance.now() - t);
    if (++done === caseIds.length) finish();
  });
  const progress = setInterval(() => say(`  … ${done}/${caseIds.length} delivered`), 5000);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const appendMs: number[] = [];
  const append = fr.ctx.tx.append;
  fr.ctx.tx.append = (fn) => {
    const a0 = performance.now();
    return append(fn).finally(() => appendMs.push(performance.now() - a0));
  };
  const timeout = setTimeout(finish, 15 * 60_000);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: perSecond > 0 ? 8 : 32 }, async () => {
      while (next < caseIds.length) {
        const i = next++;
        const caseId = caseIds[i]!;
        if (perSecond > 0) {
          const due = t0 + (i / perSecond) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        const f0 = performance.now();
        started.set(caseId, f0);
        await forwardCase(fr.ctx, { caseId, to: ['DE'], handling: HANDLING, actor: 'bench' });
        forwardMs.push(performance.now() - f0);
        fr.queue.kick();
      }
    }),
  );
  await allDone;
  loop.disable();
  fr.ctx.tx.append = append;
  appendMs.sort((a, b) => a - b);
  clearTimeout(timeout);
  clearInterval(progress);
  latencies.sort((a, b) => a - b);
  forwardMs.sort((a, b) => a - b);
  return {
    done,
    seconds: (performance.now() - t0) / 1000,
    latencies,
    forwardMs,
    loopDelayP99: loop.percentile(99) / 1e6,
    appendMs,
  };
}

/**
 * CPU per delivered case of the burst (forward and delivery), or per message of the drain
 * (delivery only), by process (`test/bench/cpu.ts`).
 */
function cpuFigures(label: string, per: CpuSample, kind: string, driver: string, unit = 'case'): Figure[] {
  const parts: [keyof CpuSample, string][] = [
    [
      'fr',
      unit === 'case' ? 'FR: forwards (signing included), delivery, receipts' : 'FR: delivery, receipts',
    ],
    ['de', 'DE: verification, storage, receipts'],
    ...(kind === 'postgres' ? [['postgres', 'PostgreSQL, both gateways'] as [keyof CpuSample, string]] : []),
    ...(driver === 'bullmq' ? [['redis', 'Redis'] as [keyof CpuSample, string]] : []),
  ];
  return parts.map(([k, what]) => ({
    name: `exchange.${label}.cpu_ms_per_${unit}.${k}`,
    value: per[k],
    unit: `ms (${what})`,
  }));
}

/** Busy and total CPU time over all cores so far (os.cpus(), in ms). */
function busyTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.irq + times.idle;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

function busyFraction(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

function round1(v: number) {
  return Math.round(v * 10) / 10;
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`DE gateway exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('DE gateway did not become healthy in 60 s');
}

async function dropSchemas(url: string, schemas: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await c.end();
}

/** The server's WAL position in bytes, to tell how much WAL a run wrote (`pg_current_wal_lsn`). */
async function walPosition(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ at: string }>(
      "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS at",
    );
    return Number(rows[0]!.at);
  } finally {
    await client.end();
  }
}
