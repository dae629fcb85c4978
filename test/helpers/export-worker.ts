/**
 * An audit export in a process of its own (test/integration/audit-scale.spec.ts): run with a
 * small heap (`--max-old-space-size`), it streams the whole chain to nowhere and prints its
 * line count and peak RSS; holding the log in memory would make it run out.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { jsonlLines } from '../../src/audit/export.js';
import { openPostgres } from '../../src/store/postgres.js';

const [url, schema, upto] = process.argv.slice(2);
const db = await openPostgres(url!, schema, 2);
let lines = 0;
let bytes = 0;
const t0 = performance.now();
await pipeline(
  Readable.from(jsonlLines(db, { seq: Number(upto), hash: '', at: '', jws: '' })),
  new Writable({
    write(chunk: Buffer, _enc, done) {
      lines++;
      bytes += chunk.length;
      setImmediate(done);
    },
  }),
);
await db.close();
console.log(
  JSON.stringify({
    lines,
    bytes,
    seconds: (performance.now() - t0) / 1000,
    maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
