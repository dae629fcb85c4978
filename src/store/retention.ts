/**
 * Retention: a case version whose `retainUntil` date has passed is erased. Its stored
 * content becomes `{"id", "version", "erased": true}`, the exact message bytes that carried
 * it (sent or received, once no longer waiting for delivery) are emptied, and `case.erased`
 * is audited with the digest of what was erased, in one transaction per case version. Ids,
 * digests, receipts and the audit chain stay: the chain still verifies and still proves what
 * was exchanged, without the data (docs/audit.md §7).
 */
import type { GatewayContext } from '../context.js';
import { log } from '../log.js';
import { sql } from './sql.js';

/** Erase everything past its retention date (at most `limit` versions per run); returns how many. */
export async function eraseExpired(ctx: GatewayContext, limit = 1000): Promise<number> {
  const today = ctx.now().toISOString().slice(0, 10);
  const due = await ctx.db.query<{ id: string; version: number; digest: string }>(sql('casesPastRetention'), [
    today,
    limit,
  ]);
  let erased = 0;
  for (const c of due) {
    await ctx.tx(async (q) => {
      const rows = await q.query(sql('eraseCase'), [c.id, c.version]);
      if (rows.length === 0) return; // erased meanwhile by another replica
      const messages = await q.query<{ id: string }>(sql('eraseCaseMessages'), [c.id, c.version]);
      q.audit({
        actor: { kind: 'system', id: 'retention' },
        action: 'case.erased',
        subject: { case: c.id },
        detail: { version: c.version, digest: c.digest, messages: messages.length },
      });
      erased++;
    });
    ctx.cases.drop(c.id);
  }
  if (erased) log.info('case data past its retention date erased', { versions: erased });
  return erased;
}

/** Run `eraseExpired` every `retention.intervalMs` (and once shortly after start). */
export function startRetention(ctx: GatewayContext): { stop(): Promise<void> } {
  let running: Promise<unknown> | undefined;
  const tick = () => {
    running ??= eraseExpired(ctx)
      .catch((err) => log.error('retention run failed; will try again', { err: (err as Error).message }))
      .finally(() => {
        running = undefined;
      });
  };
  const first = setTimeout(tick, 5_000);
  const timer = setInterval(tick, ctx.config.retention.intervalMs);
  first.unref();
  timer.unref();
  return {
    async stop() {
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
