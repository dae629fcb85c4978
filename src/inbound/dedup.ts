import type { Queryable } from '../store/db.js';
import { sql } from '../store/sql.js';

/** The message already received from `peer` with this id, and the receipt we answered. */
export async function findInbound(
  q: Queryable,
  peer: string,
  id: string,
): Promise<{ digest: string; receiptJws: string | null } | undefined> {
  const [row] = await q.query<{ digest: string; receipt_jws: string | null }>(sql('findInbound'), [peer, id]);
  return row ? { digest: row.digest, receiptJws: row.receipt_jws } : undefined;
}
