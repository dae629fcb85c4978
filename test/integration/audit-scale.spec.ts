/**
 * The audit log at scale, on PostgreSQL (PGlite is one process, and a million rows there
 * prove nothing about production): appends from several processes at once keep one gap-free
 * chain, and an export of 1,000,000 events streams in constant memory (RSS printed).
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { verifyStored } from '../../src/api/audit.js';
import { readAuditEvents } from '../../src/audit/append.js';
import { loadConfig } from '../../src/config/load.js';
import { type Gateway, startGateway } from '../../src/main.js';
import { openPostgres } from '../../src/store/postgres.js';
import { token } from '../helpers/clients.js';
import { dbKinds, testDb } from '../helpers/db.js';
import { freePort, testConfig, testPki } from '../helpers/federation.js';

const run = promisify(execFile);
const pgOnly = dbKinds().includes('postgres');

describe('audit log at scale (PostgreSQL)', function () {
  this.timeout(600_000);
  // PGlite runs in one process and in memory: these properties are about PostgreSQL.
  if (!pgOnly) {
    it.skip('needs DATABASE_URL (PostgreSQL); CI sets it');
    return;
  }

  it('appends from 3 processes at once keep one gap-free chain', async () => {
    const { db, options } = await testDb('postgres');
    try {
      const { url, schema } = options as { url: string; schema: string };
      const workers = ['p1', 'p2', 'p3'].map((name) =>
        spawn(
          process.execPath,
          ['--import', 'tsx', 'test/helpers/append-worker.ts', url, schema, '300', name],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        ),
      );
      const exits = workers.map(
        (w) =>
          new Promise<void>((resolve, reject) =>
            w.on('exit', (code) =>
              code === 0 ? resolve() : reject(new Error(`append worker exited ${code}`)),
            ),
          ),
      );
      // Every worker connected before any appends: booting tsx takes longer than 300 appends.
      await Promise.all(workers.map((w) => once(w.stdout!, 'data')));
      for (const w of workers) w.stdin!.write('go\n');
      await Promise.all(exits);
      const events = await readAuditEvents(db, 0, 10_000);
      expect(events).to.have.length(900);
      expect(events.map((e) => e.seq)).to.deep.equal(Array.from({ length: 900 }, (_, i) => i + 1));
      const config = loadConfig(path.join(await testPki(), 'FR', 'gateway.json'), {}, {});
      expect(await verifyStored({ config, db } as never)).to.deep.include({ ok: true, checked: 900 });
      // Interleaved, not one process after the other.
      const firstThird = new Set(events.slice(0, 300).map((e) => e.actor.id));
      expect(firstThird.size).to.be.greaterThan(1);
    } finally {
      await db.close();
    }
  });

  it('exports 1,000,000 events through the API in constant memory', async () => {
    const { db, options } = await testDb('postgres');
    let fr: Gateway | undefined;
    try {
      const N = 1_000_000;
      // Rows made by SQL (an export does not re-hash): the point is the streaming.
      await db.query(`
        INSERT INTO audit_events (seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash)
        SELECT g, '2026-11-29T12:00:00.000Z', 'system', 'scale-test', 'test.scale',
               jsonb_build_object('case', '0193a0b0-0000-7000-8000-000000000000'),
               jsonb_build_object('n', g, 'digest', md5(g::text)),
               lpad(md5((g - 1)::text), 64, '0'), lpad(md5(g::text), 64, '0')
        FROM generate_series(1, ${N}) g`);
      await db.query(`UPDATE audit_head SET seq = ${N}, hash = lpad(md5('${N}'), 64, '0')`);
      const pki = await testPki();
      const { url, schema } = options as { url: string; schema: string };
      const ports = { FR: { partner: await freePort(), admin: await freePort() } };
      const config = await testConfig('FR', ports, {
        database: { url, schema, dir: undefined, memory: undefined },
      });
      fr = await startGateway(config, { db: await openPostgres(url, schema, 4), noWorker: true });
      global.gc?.();
      const base = process.memoryUsage().rss;
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(process.memoryUsage().rss), 50);
      const t0 = performance.now();
      // node:http, whose stream pauses the socket while we read: the server's memory is measured.
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get(
            `${fr!.adminUrl}/api/audit/export?format=jsonl`,
            {
              headers: { authorization: `Bearer ${token(pki, 'FR', 'auditor')}` },
            },
            resolve,
          )
          .on('error', reject),
      );
      let bytes = 0;
      let newlines = 0;
      for await (const chunk of res as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++;
      }
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      const mb = (n: number) => Math.round(n / 1024 / 1024);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const q = Math.max(1, Math.floor(samples.length / 4));
      const early = median(samples.slice(0, q));
      const late = median(samples.slice(-q));
      const peak = Math.max(...samples);
      console.log(
        `      export: ${newlines} lines, ${mb(bytes)} MB in ${seconds.toFixed(1)} s (${(bytes / 1024 / 1024 / seconds).toFixed(1)} MB/s); RSS ${mb(base)} MB before, median ${mb(early)} MB in the first quarter, ${mb(late)} MB in the last, peak ${mb(peak)} MB`,
      );
      expect(res.statusCode).to.equal(200);
      // Every event plus one checkpoint line at the end (and any written on the way).
      expect(newlines).to.be.greaterThan(N);
      // RSS here is only reported: this process also holds the gateway, the client and whatever
      // earlier suites left for V8 to collect lazily. The proof of constant memory is the same
      // export under a 64 MB heap, in a process of its own.
      const { stdout } = await run(
        process.execPath,
        [
          '--max-old-space-size=64',
          '--import',
          'tsx',
          'test/helpers/export-worker.ts',
          url,
          schema,
          String(N),
        ],
        { maxBuffer: 1024 * 1024 },
      );
      const small = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
        lines: number;
        maxRssMb: number;
        seconds: number;
      };
      console.log(
        `      the same export with a 64 MB heap: ${small.lines} lines in ${small.seconds.toFixed(1)} s, peak RSS ${small.maxRssMb} MB`,
      );
      expect(small.lines).to.be.at.least(N); // events, and the checkpoint lines among them
      expect(small.maxRssMb).to.be.lessThan(250);
    } finally {
      await fr?.stop();
      await db.close();
    }
  });
});
