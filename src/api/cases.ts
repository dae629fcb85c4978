/**
 * The case routes of the admin API (DESIGN §5), mounted at `/api/cases` behind the bearer
 * token: list, read, export, forward, withdraw. Every read is audited; every forward, export
 * and withdrawal names a `purpose`, written in its audit event; handling codes are enforced
 * at egress (src/outbound/handling.ts).
 */
import express from 'express';
import type { GatewayContext } from '../context.js';
import { exportReport, nationalFormat, SHARED_FORMAT } from '../convert/registry.js';
import { parseUntrustedJson } from '../envelope/json.js';
import { IcrosError } from '../errors.js';
import { bodyOf, rawBody } from '../http/common.js';
import type { CachedCase } from '../outbound/case-cache.js';
import { forwardCase } from '../outbound/forward.js';
import { effectiveHandling, type HandledCase } from '../outbound/handling.js';
import type { DeliveryQueue } from '../outbound/queue.js';
import { withdrawCase } from '../outbound/withdraw.js';
import type { CaseV1, Handling } from '../schema/validators.js';
import { sql } from '../store/sql.js';
import { type Principal, requireRole } from './auth.js';
import { decodeCursor, nextCursor, uuidParam } from './params.js';

/** The envelope schema's bound on `handling.purpose`. */
const PURPOSE_MAX = 500;

export function casesRouter(ctx: GatewayContext, queue: DeliveryQueue): express.Router {
  const r = express.Router();
  const body = rawBody(ctx.config.admin.maxBodyBytes);
  const who = (res: express.Response) => (res.locals.principal as Principal).name;
  const audit = (
    res: express.Response,
    action: string,
    subject: { case?: string },
    detail: Record<string, unknown>,
  ) => ctx.tx.append((q) => q.audit({ actor: { kind: 'user', id: who(res) }, action, subject, detail }));

  r.get('/', requireRole('analyst'), async (req, res) => {
    const f = listFilters(req.query);
    const rows = await ctx.db.query<ListRow>(sql('listCases'), [
      f.origin,
      f.receivedFrom,
      f.withdrawn,
      f.since,
      f.cursor?.at ?? null,
      f.cursor?.id ?? null,
      f.limit,
    ]);
    const { cursor: _c, limit: _l, ...filters } = f;
    await audit(res, 'case.listed', {}, { filters: definedOnly(filters), count: rows.length });
    res.json({ cases: rows.map(listItem), next: nextCursor(rows, f.limit) });
  });

  r.get('/:id', requireRole('analyst'), async (req, res) => {
    const id = uuidParam(req.params.id, 'CASE_NOT_FOUND');
    const [row] = await ctx.db.query<CachedCase>(sql('getCase'), [id]);
    if (!row) throw new IcrosError('CASE_NOT_FOUND', `no case ${id}`);
    await audit(res, 'case.read', { case: id }, {});
    ctx.cases.put(row); // read before a forward, often (outbound/case-cache.ts)
    res.json(row);
  });

  r.get('/:id/export', requireRole('analyst'), async (req, res) => {
    const id = uuidParam(req.params.id, 'CASE_NOT_FOUND');
    onlyParams(req.query, ['format', 'purpose']);
    const format = typeof req.query.format === 'string' ? req.query.format : SHARED_FORMAT;
    if (format !== SHARED_FORMAT) nationalFormat(format); // unknown format: 400 before any read
    const purpose = purposeOf(req.query.purpose, '?purpose');
    const [row] = await ctx.db.query<HandledCase & { doc: CaseV1; version: number }>(sql('getCase'), [id]);
    if (!row) throw new IcrosError('CASE_NOT_FOUND', `no case ${id}`);
    if ((row.doc as { erased?: boolean }).erased)
      throw new IcrosError('CASE_ERASED', `case ${id} was erased`);
    // The handling that binds us travels in the document wherever the format has a place for
    // it (icros-case, de-xml, stix-2.1, misp) and in the response headers for every format.
    const marking = effectiveHandling(row);
    const doc = marking ? { ...row.doc, handling: marking } : row.doc;
    const out = await exportReport(format, [doc]);
    await audit(
      res,
      'case.exported',
      { case: id },
      {
        version: row.version,
        format,
        purpose,
        ...(marking ? { tlp: marking.tlp, handlingCode: marking.code } : {}),
      },
    );
    if (marking) res.set({ 'Icros-Handling': marking.code, 'Icros-TLP': marking.tlp });
    res.type(out.mediaType).send(out.body);
  });

  r.post('/:id/forward', requireRole('analyst'), body, async (req, res) => {
    const id = uuidParam(req.params.id, 'CASE_NOT_FOUND');
    const input = parseUntrustedJson(bodyOf(req), 'the forward request') as {
      to?: unknown;
      handling?: unknown;
      purpose?: unknown;
    };
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      throw new IcrosError('REQUEST_INVALID', 'expected {"to": [...], "handling": {...}}');
    if (!Array.isArray(input.to) || !input.to.every((t) => typeof t === 'string')) {
      throw new IcrosError('REQUEST_INVALID', '"to" must be an array of country codes', {
        errors: [
          { location: '/to', rule: 'type', message: '"to" must be an array of country codes like ["DE"]' },
        ],
      });
    }
    const messages = await forwardCase(ctx, {
      caseId: id,
      to: input.to,
      handling: forwardHandling(input),
      actor: who(res),
    });
    queue.kick();
    res.status(202).json({ messages });
  });

  r.post('/:id/withdraw', requireRole('analyst'), body, async (req, res) => {
    const id = uuidParam(req.params.id, 'CASE_NOT_FOUND');
    const input = parseUntrustedJson(bodyOf(req), 'the withdraw request') as Record<string, unknown>;
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      throw new IcrosError('REQUEST_INVALID', 'expected {"purpose": "...", "reason": "..."}');
    for (const k of Object.keys(input)) {
      if (!['purpose', 'reason', 'legalBasis'].includes(k)) {
        throw new IcrosError(
          'REQUEST_INVALID',
          `unknown field ${JSON.stringify(k)}; use purpose, reason, legalBasis`,
          {
            errors: [
              { location: `/${k}`, rule: 'additionalProperties', message: 'is not a field of a withdrawal' },
            ],
          },
        );
      }
    }
    const messages = await withdrawCase(ctx, {
      caseId: id,
      purpose: purposeOf(input.purpose, '/purpose'),
      ...optionalText(input, 'reason', 2000),
      ...optionalText(input, 'legalBasis', 500),
      actor: who(res),
    });
    queue.kick();
    res.status(202).json({ messages });
  });

  return r;
}

interface ListRow {
  id: string;
  version: number;
  origin_country: string;
  origin_agency: string | null;
  received_from: string | null;
  tlp: string | null;
  code: string | null;
  doc_handling: { tlp?: string; code?: string } | null;
  digest: string;
  created_at: Date;
  withdrawn_at: Date | null;
  erased_at: Date | null;
  cursor_at: string;
}

/** One entry of GET /api/cases: what the case is and where it came from, not its content. */
function listItem(r: ListRow) {
  const handling = r.tlp && r.code ? { tlp: r.tlp, code: r.code } : r.doc_handling;
  return {
    id: r.id,
    version: r.version,
    origin: { country: r.origin_country, agency: r.origin_agency },
    receivedFrom: r.received_from,
    handling: handling?.tlp && handling.code ? { tlp: handling.tlp, code: handling.code } : null,
    digest: r.digest,
    createdAt: new Date(r.created_at).toISOString(),
    withdrawnAt: r.withdrawn_at ? new Date(r.withdrawn_at).toISOString() : null,
    erased: r.erased_at !== null,
  };
}

const FILTERS = {
  origin: /^[A-Z]{2}$/,
  receivedFrom: /^([A-Z]{2}|none)$/,
  withdrawn: /^(true|false)$/,
  since: /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/,
  limit: /^[0-9]{1,4}$/,
  cursor: /^[A-Za-z0-9_-]{1,200}$/,
} as const;

/** Query filters of GET /api/cases; an unknown or malformed one is an error, never ignored. */
function listFilters(query: express.Request['query']) {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) {
    const rule = FILTERS[k as keyof typeof FILTERS];
    if (!rule)
      throw new IcrosError(
        'REQUEST_INVALID',
        `unknown filter ${JSON.stringify(k)}; use ${Object.keys(FILTERS).join(', ')}`,
        {
          errors: [
            { location: `?${k}`, rule: 'additionalProperties', message: 'is not a filter of GET /api/cases' },
          ],
        },
      );
    if (typeof v !== 'string' || !rule.test(v) || (k === 'since' && !Number.isFinite(Date.parse(v)))) {
      throw new IcrosError('REQUEST_INVALID', `filter ${k}=${JSON.stringify(v)} is not valid`, {
        errors: [{ location: `?${k}`, rule: 'pattern', message: `${k} must match ${rule.source}` }],
      });
    }
    out[k] = v;
  }
  const limit = out.limit ? Number(out.limit) : 100;
  if (limit < 1 || limit > 1000)
    throw new IcrosError('REQUEST_INVALID', 'limit must be between 1 and 1000', {
      errors: [{ location: '?limit', rule: 'range', message: 'must be between 1 and 1000' }],
    });
  return {
    origin: out.origin ?? null,
    receivedFrom: out.receivedFrom ?? null,
    withdrawn: out.withdrawn === undefined ? null : out.withdrawn === 'true',
    since: out.since ?? null,
    cursor: out.cursor ? decodeCursor(out.cursor) : null,
    limit,
  };
}

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));
}

/** `purpose` is required: 1 to 500 characters, located at `where` when missing or wrong. */
function purposeOf(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > PURPOSE_MAX) {
    throw new IcrosError(
      'REQUEST_INVALID',
      `a purpose is required (${where}): say why, in 1 to ${PURPOSE_MAX} characters`,
      {
        errors: [
          {
            location: where,
            rule: v === undefined ? 'required' : 'type',
            message: `must be the purpose of this processing, 1 to ${PURPOSE_MAX} characters`,
          },
        ],
      },
    );
  }
  return v;
}

function optionalText(input: Record<string, unknown>, key: 'reason' | 'legalBasis', max: number) {
  const v = input[key];
  if (v === undefined) return {};
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw new IcrosError('REQUEST_INVALID', `"${key}" must be text of 1 to ${max} characters`, {
      errors: [{ location: `/${key}`, rule: 'type', message: `must be text of 1 to ${max} characters` }],
    });
  }
  return { [key]: v };
}

/**
 * The forward's handling with its purpose: `handling.purpose`, or a top-level `purpose`
 * (both may be given when equal). A missing handling is left to the envelope check, which
 * locates it.
 */
function forwardHandling(input: { handling?: unknown; purpose?: unknown }): Handling {
  const h = input.handling;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return h as Handling;
  const inner = (h as { purpose?: unknown }).purpose;
  if (input.purpose !== undefined && inner !== undefined && input.purpose !== inner) {
    throw new IcrosError('REQUEST_INVALID', 'the forward names two different purposes', {
      errors: [
        { location: '/purpose', rule: 'const', message: 'must equal /handling/purpose when both are given' },
      ],
    });
  }
  const purpose = purposeOf(
    inner ?? input.purpose,
    inner === undefined && input.purpose !== undefined ? '/purpose' : '/handling/purpose',
  );
  return { ...(h as Handling), purpose };
}

function onlyParams(query: express.Request['query'], allowed: string[]): void {
  for (const k of Object.keys(query)) {
    if (!allowed.includes(k))
      throw new IcrosError(
        'REQUEST_INVALID',
        `unknown parameter ${JSON.stringify(k)}; use ${allowed.join(', ')}`,
        {
          errors: [
            { location: `?${k}`, rule: 'additionalProperties', message: 'is not a parameter of this route' },
          ],
        },
      );
  }
}
