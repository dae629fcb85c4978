/**
 * A separate process appending to one audit chain (test/integration/audit-scale.spec.ts):
 * `tsx append-worker.ts <url> <schema> <n> <name>` connects, prints `ready`, waits for a line
 * on stdin (so that every worker starts at once, whatever each took to boot), then appends n
 * events three at a time, alternating a transaction (appendAudit) and the one-statement path
 * (appendInOneStatement), so that both are raced against each other.
 */
import { once } from 'node:events';
import { appendAudit, appendInOneStatement } from '../../src/audit/append.js';
import { openPostgres } from '../../src/store/postgres.js';

const [url, schema, n, name] = process.argv.slice(2);
const db = await openPostgres(url!, schema, 4);
process.stdout.write('ready\n');
await once(process.stdin, 'data');
for (let i = 0; i < Number(n); i += 3) {
  const events = Array.from({ length: Math.min(3, Number(n) - i) }, (_, j) => ({
    actor: { kind: 'system' as const, id: name! },
    action: 'test.append',
    subject: {},
    detail: { i: i + j },
  }));
  if ((i / 3) % 2 === 0) await db.tx((q) => appendAudit(q, events));
  else await appendInOneStatement(db, events);
}
process.stdin.destroy();
await db.close();
