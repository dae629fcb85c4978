/**
 * The auditor's API (role `auditor`, read-only; admins pass too). Auditors see events —
 * who did what to which ids, when — never case contents. Every export and verification is
 * itself audited.
 *
 *   GET /api/audit?from&to&actor&action&case&message&partner&cursor&limit   events, paged
 *   GET /api/audit/export?format=jsonl|csv                                  the whole chain, streamed
 *   GET /api/audit/verify                                                   {ok, checked, head, firstBadSeq, reason}
 *   GET /api/audit/checkpoints?after&limit                                  signed checkpoints
 */
import { once } from 'node:events';
import express, { type Response } from 'express';
import { toEvent } from '../audit/append.js';
import { checkpointKey, verifyCheckpoint, writeCheckpoint } from '../audit/checkpoint.js';
import { allCheckpoints, CSV_HEADER, csvLine, eventsFrom, jsonlLines } from '../audit/export.js';
import { verifyEvents } from '../audit/verify.js';
import type { GatewayContext } from '../context.js';
import { IcrosError } from '../errors.js';
import { sql } from '../store/sql.js';
import { type Principal, requireRole } from './auth.js';

const FILTERS: Record<string, RegExp> = {
  from: /^\d{4}-\d{2}-\d{2}(T[0-9:.]+Z)?$/,
  to: /^\d{4}-\d{2}-\d{2}(T[0-9:.]+Z)?$/,
  actor: /^[\x21-\x7e]{1,200}$/,
  action: /^[a-z][a-z0-9._-]{0,100}$/,
  case: /^[0-9a-f-]{36}$/,
  message: /^[0-9a-f-]{36}$/,
  partner: /^[A-Z]{2}$/,
  cursor: /^[0-9]{1,18}$/,
  limit: /^[0-9]{1,4}$/,
  format: /^(jsonl|csv)$/,
  after: /^[0-9]{1,18}$/,
};

/** Query parameters checked against `allowed`: an unknown or malformed one is an error, never ignored. */
function params(query: Record<string, unknown>, allowed: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(query)) {
    if (!allowed.includes(k)) {
      throw new IcrosError(
        'REQUEST_INVALID',
        `unknown query parameter ${JSON.stringify(k)}; use ${allowed.join(', ')}`,
        {
          errors: [{ location: `query ${k}`, rule: 'unknown', message: 'is not a parameter of this route' }],
        },
      );
    }
    if (typeof v !== 'string' || !FILTERS[k]!.test(v)) {
      throw new IcrosError('REQUEST_INVALID', `query parameter ${k} is not valid`, {
        errors: [{ location: `query ${k}`, rule: 'pattern', message: `does not match ${FILTERS[k]}` }],
      });
    }
    out[k] = v;
  }
  return out;
}

/** Write `chunk`, waiting when the socket's buffer is full: constant memory whatever the size. */
async function write(res: Response, chunk: string): Promise<void> {
  if (!res.write(chunk)) await once(res, 'drain');
}

export function auditRouter(ctx: GatewayContext): express.Router {
  const r = express.Router();
  const who = (res: Response) => (res.locals.principal as Principal).name;
  const key = checkpointKey(ctx.config.signing.certPem, ctx.config.country);

  r.get('/', requireRole('auditor'), async (req, res) => {
    const p = params(req.query, [
      'from',
      'to',
      'actor',
      'action',
      'case',
      'message',
      'partner',
      'cursor',
      'limit',
    ]);
    const limit = Math.min(1000, Math.max(1, Number(p.limit ?? 100)));
    const rows = await ctx.db.query<Record<string, unknown>>(sql('searchAuditEvents'), [
      p.from ?? null,
      p.to ?? null,
      p.actor ?? null,
      p.action ?? null,
      p.case ?? null,
      p.message ?? null,
      p.partner ?? null,
      Number(p.cursor ?? 0),
      limit,
    ]);
    const events = rows.map(toEvent);
    res.json({ events, next: events.length === limit ? String(events.at(-1)!.seq) : null });
  });

  r.get('/checkpoints', requireRole('auditor'), async (req, res) => {
    const p = params(req.query, ['after', 'limit']);
    const limit = Math.min(1000, Math.max(1, Number(p.limit ?? 100)));
    const rows = await ctx.db.query<{ seq: string; hash: string; at: string; jws: string }>(
      sql('listCheckpoints'),
      [Number(p.after ?? 0), limit],
    );
    const checkpoints = rows.map((c) => ({ ...c, seq: Number(c.seq) }));
    res.json({
      checkpoints,
      next: checkpoints.length === limit ? String(checkpoints.at(-1)!.seq) : null,
      signingCertificate: ctx.config.signing.certPem,
    });
  });

  r.get('/verify', requireRole('auditor'), async (_req, res) => {
    const result = await verifyStored(ctx, key);
    await ctx.tx.append((q) =>
      q.audit({
        actor: { kind: 'user', id: who(res) },
        action: 'audit.verified',
        subject: {},
        detail: { ok: result.ok, checked: result.checked, firstBadSeq: result.firstBadSeq },
      }),
    );
    res.json(result);
  });

  r.get('/export', requireRole('auditor'), async (req, res) => {
    const p = params(req.query, ['format']);
    const format = p.format ?? 'jsonl';
    // The export ends at a checkpoint written for it, so it verifies on its own.
    const last = await ctx.db.tx((q) =>
      writeCheckpoint(q, ctx.config.signing, ctx.config.country, ctx.now()),
    );
    await ctx.tx.append((q) =>
      q.audit({
        actor: { kind: 'user', id: who(res) },
        action: 'audit.exported',
        subject: {},
        detail: { format, uptoSeq: last?.seq ?? 0 },
      }),
    );
    res.status(200);
    res.setHeader('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
    res.setHeader(
      'content-disposition',
      `attachment; filename="audit-${ctx.config.country}-${last?.seq ?? 0}.${format === 'csv' ? 'csv' : 'jsonl'}"`,
    );
    if (!last) {
      res.end(format === 'csv' ? CSV_HEADER : '');
      return;
    }
    // Lines go out in chunks of about 64 KiB: one socket write per few hundred events.
    let pending = '';
    const push = async (line: string) => {
      pending += line;
      if (pending.length >= 65_536) {
        const chunk = pending;
        pending = '';
        await write(res, chunk);
      }
    };
    try {
      if (format === 'csv') {
        await push(CSV_HEADER);
        for await (const e of eventsFrom(ctx.db, 0, last.seq)) await push(csvLine(e));
      } else {
        for await (const line of jsonlLines(ctx.db, last)) await push(line);
        await push(`${JSON.stringify({ checkpoint: last.jws })}\n`);
      }
      if (pending) await write(res, pending);
      res.end();
    } catch (err) {
      // Headers are gone: cut the connection so the client sees an incomplete export.
      res.destroy(err as Error);
    }
  });

  return r;
}

/** Verify the chain in the database against its own signed checkpoints. */
export async function verifyStored(ctx: GatewayContext, key = checkpointKey(ctx.config.signing.certPem)) {
  const stored = await allCheckpoints(ctx.db);
  const checkpoints: { seq: number; hash: string }[] = [];
  for (const c of stored) {
    const v = await verifyCheckpoint(c.jws, key).catch(() => undefined);
    // A checkpoint row whose signature fails, or that differs from what it signed, is itself tampering.
    if (!v || v.seq !== c.seq || v.hash !== c.hash) {
      return {
        ok: false,
        checked: 0,
        head: null,
        firstBadSeq: c.seq,
        reason: `the checkpoint row of seq ${c.seq} does not match its signature`,
        checkpoints: 0,
      };
    }
    checkpoints.push({ seq: v.seq, hash: v.hash });
  }
  return verifyEvents(eventsFrom(ctx.db), { checkpoints });
}
