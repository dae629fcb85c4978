/**
 * A separate process appending to one audit chain (test/integration/audit-scale.spec.ts):
 * `tsx append-worker.ts <url> <schema> <n> <name>` appends n events in small transactions.
 */
import { appendAudit } from '../../src/audit/append.js';
import { openPostgres } from '../../src/store/postgres.js';

const [url, schema, n, name] = process.argv.slice(2);
const db = await openPostgres(url!, schema, 4);
for (let i = 0; i < Number(n); i += 3) {
  await db.tx((q) =>
    appendAudit(
      q,
      Array.from({ length: Math.min(3, Number(n) - i) }, (_, j) => ({
        actor: { kind: 'system' as const, id: name! },
        action: 'test.append',
        subject: {},
        detail: { i: i + j },
      })),
    ),
  );
}
await db.close();
