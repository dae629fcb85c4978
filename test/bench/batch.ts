/**
 * `npx tsx test/bench/batch.ts [N] [concurrency]` — receiver throughput of
 * `POST /v1/messages:batch`: DE runs as its own `icros gateway start` process (PostgreSQL
 * when DATABASE_URL is set, else PGlite), this process plays FR's sender: N messages are
 * signed first (not timed: a sender signs when it writes the outbox row), then sent in
 * batches of MAX_BATCH, `concurrency` requests in flight over keep-alive mTLS, each batch
 * receipt verified with `verifyBatchReceipt`. Prints cases/s and per-batch latency.
 * The sender's own bookkeeping (marking messages delivered) is not part of it.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { loadConfig } from '../../src/config/load.js';
import { verifyBatchReceipt } from '../../src/envelope/batch-receipt.js';
import { messageDigest } from '../../src/envelope/digest.js';
import { MESSAGE_TYP, signJws } from '../../src/envelope/sign.js';
import { MAX_BATCH } from '../../src/inbound/batch.js';
import { initPki } from '../../src/pki/init.js';
import { freePort } from '../helpers/federation.js';
import { percentile } from './report.js';

const n = Number(process.argv[2] ?? 10_000);
const concurrency = Number(process.argv[3] ?? 4);
const url = process.env.DATABASE_URL;
const sample = JSON.parse(
  readFileSync(new URL('../../schemas/icros-case/samples/phishing-bank.json', import.meta.url), 'utf8'),
);

const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-batch-bench-'));
await initPki({ dir, countries: ['FR', 'DE'] });
const ports = { de: await freePort(), deAdmin: await freePort() };
const schema = `bench_batch_${randomBytes(4).toString('hex')}`;
const deDoc = JSON.parse(readFileSync(path.join(dir, 'DE', 'gateway.json'), 'utf8'));
Object.assign(deDoc, {
  listen: {
    partner: { host: '127.0.0.1', port: ports.de },
    admin: { host: '127.0.0.1', port: ports.deAdmin },
  },
  database: url ? { url, schema, poolSize: 20 } : { dir: path.join(dir, 'DE', 'data') },
  logLevel: 'warn',
});
deDoc.partners[0].ratePerSecond = 1_000_000;
writeFileSync(path.join(dir, 'DE', 'bench.json'), JSON.stringify(deDoc));
const { DATABASE_URL: _omit, ...env } = process.env;
const de = spawn(
  process.execPath,
  [
    // DE_CPU_PROF=DIR profiles DE.
    ...(process.env.DE_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DE_CPU_PROF}`] : []),
    'bin/icros.js',
    'gateway',
    'start',
    '--config',
    path.join(dir, 'DE', 'bench.json'),
  ],
  { env, stdio: ['ignore', 'ignore', 'inherit'] },
);

try {
  const end = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > end) throw new Error('DE did not start');
    const ok = await fetch(`http://127.0.0.1:${ports.deAdmin}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const fr = loadConfig(path.join(dir, 'FR', 'gateway.json'), {}, {});
  const partner = fr.partners.find((p) => p.country === 'DE')!;

  console.log(`signing ${n} messages as FR (not timed) …`);
  const messages: string[] = [];
  for (let i = 0; i < n; i++) {
    const envelope = {
      v: 1,
      id: uuidv7(),
      type: 'case.transfer',
      from: 'FR',
      to: 'DE',
      sentAt: new Date().toISOString(),
      handling: { tlp: 'AMBER', code: 'H1', purpose: 'benchmark', legalBasis: 'benchmark' },
      case: { ...sample, id: randomUUID(), origin: { ...sample.origin, reference: `BATCH-${i}` } },
    };
    messages.push(await signJws(envelope, fr.signing, MESSAGE_TYP));
  }
  const batches: string[][] = [];
  for (let i = 0; i < n; i += MAX_BATCH) batches.push(messages.slice(i, i + MAX_BATCH));

  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: concurrency,
    cert: fr.tls.certPem,
    key: fr.tls.keyPem,
    ca: fr.tls.caPems,
    minVersion: 'TLSv1.3',
  });
  const post = (body: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: ports.de,
          method: 'POST',
          path: '/v1/messages:batch',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  console.log(`sending ${batches.length} batches of ${MAX_BATCH}, ${concurrency} in flight …`);
  const latencies: number[] = [];
  let accepted = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const t = performance.now();
        const res = await post(JSON.stringify({ messages: batch }));
        if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${res.body}`);
        const { results } = await verifyBatchReceipt(res.body, partner, {
          from: 'FR',
          items: batch.map((jws) => ({
            messageId: JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()).id,
            messageDigest: messageDigest(jws),
          })),
        });
        accepted += results.filter((r) => r.status === 'accepted').length;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(
    `${url ? 'postgres' : 'pglite'}: ${accepted}/${n} accepted in ${seconds.toFixed(2)} s = ${Math.round(accepted / seconds)} cases/s; ` +
      `per batch of ${MAX_BATCH}: p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms`,
  );
  agent.destroy();
} finally {
  de.kill('SIGTERM');
  await new Promise((r) => de.once('exit', r));
  if (url) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
}
