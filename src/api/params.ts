/**
 * What the admin routes share for reading requests: ids in paths and the cursors of paged
 * lists.
 */
import { IcrosError } from '../errors.js';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID path parameter, lower-cased; anything else is the "not found" of that kind of thing. */
export function uuidParam(v: unknown, code: 'CASE_NOT_FOUND' | 'MESSAGE_NOT_FOUND'): string {
  if (typeof v !== 'string' || !UUID.test(v))
    throw new IcrosError(code, `${JSON.stringify(v)} is not a UUID`);
  return v.toLowerCase();
}

/**
 * The cursor of a list ordered by (created_at, id) descending: the last row's created_at with
 * its microseconds (`cursor_at`, formatted by the query, not a millisecond Date) and its id.
 */
function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

/** The `next` of a page: the cursor after its last row when the page is full, else null. */
export function nextCursor(rows: { cursor_at: string; id: string }[], limit: number): string | null {
  const last = rows.at(-1);
  return rows.length === limit && last ? encodeCursor(last.cursor_at, last.id) : null;
}

export function decodeCursor(c: string): { at: string; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    if (typeof at === 'string' && typeof id === 'string' && UUID.test(id) && Number.isFinite(Date.parse(at)))
      return { at, id };
  } catch {
    // fall through
  }
  throw new IcrosError('REQUEST_INVALID', 'the cursor is not one this API returned', {
    errors: [{ location: '?cursor', rule: 'format', message: 'must be the "next" value of a previous page' }],
  });
}
