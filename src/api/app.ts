/**
 * The admin listener's Express app (DESIGN §5): analysts ingest, read and forward cases and
 * follow messages; everything behind a bearer token, errors as problem+json. It never
 * listens itself (`main.ts` does).
 */
import express from 'express';
import helmet from 'helmet';
import type { GatewayContext } from '../context.js';
import { parseUntrustedJson } from '../envelope/json.js';
import { IcrosError } from '../errors.js';
import { bodyOf, errorHandler, notFound, rawBody, requestId } from '../http/common.js';
import type { DeliveryQueue } from '../outbound/queue.js';
import { sql } from '../store/sql.js';
import { auditRouter } from './audit.js';
import { authenticate, type Principal, requireRole } from './auth.js';
import { casesRouter } from './cases.js';
import { serveOpenApi } from './openapi.js';
import { decodeCursor, nextCursor, UUID, uuidParam } from './params.js';
import { readyz } from './readyz.js';
import { ingestReports } from './reports.js';
import { usersRouter } from './users.js';

export function createAdminApp(ctx: GatewayContext, queue: DeliveryQueue): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestId);
  // Security headers on every admin answer (nosniff, no framing, no referrer, a strict CSP).
  app.use(helmet());

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Database, keys and own certificates decide; the queue is reported (readyz.ts says why).
  app.get('/readyz', readyz(ctx, queue));

  // Prometheus scrapes the admin listener, which is not exposed to partners (docs/operations.md).
  app.get('/metrics', async (_req, res) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });

  // The API's description is public, like the schemas it is built from: mounted before the token check.
  app.get('/api/openapi.json', serveOpenApi);

  const api = express.Router();
  api.use(authenticate(ctx.config, ctx));
  const body = rawBody(ctx.config.admin.maxBodyBytes);
  const who = (res: express.Response) => (res.locals.principal as Principal).name;

  api.post('/reports', requireRole('analyst'), body, async (req, res) => {
    const format = typeof req.query.format === 'string' ? req.query.format : 'icros-case';
    const result = await ingestReports(ctx, format, bodyOf(req), who(res), offsetParam(req.query.offset));
    if (result.accepted.length === 0 && result.rejected.length > 0) {
      throw new IcrosError('REPORT_INVALID', `${result.rejected.length} report(s) rejected, none stored`, {
        errors: result.rejected.flatMap((r) => r.errors),
      });
    }
    res.status(201).json(result);
  });

  api.use('/cases', casesRouter(ctx, queue));

  api.get('/messages', requireRole('analyst'), async (req, res) => {
    const f = messageFilters(req.query);
    const rows = await ctx.db.query<{ cursor_at: string; id: string }>(sql('listMessages'), [
      f.direction,
      f.state,
      f.partner,
      f.case,
      f.cursor?.at ?? null,
      f.cursor?.id ?? null,
      f.limit,
    ]);
    res.json({ messages: rows.map(({ cursor_at: _, ...m }) => m), next: nextCursor(rows, f.limit) });
  });

  api.get('/messages/:id', requireRole('analyst'), async (req, res) => {
    const id = uuidParam(req.params.id, 'MESSAGE_NOT_FOUND');
    const rows = await ctx.db.query<{ peer: string; direction: string }>(sql('getMessage'), [id]);
    if (rows.length === 0) throw new IcrosError('MESSAGE_NOT_FOUND', `no message ${id}`);
    const withAttempts = await Promise.all(
      rows.map(async (m) => {
        const [receipt] = await ctx.db.query(sql('getReceipt'), [m.direction, m.peer, id]);
        const attempts = await ctx.db.query(sql('listAttempts'), [id, m.peer]);
        return { ...m, attempts_history: attempts, receipt: receipt ?? null };
      }),
    );
    res.json(withAttempts.length === 1 ? withAttempts[0] : { messages: withAttempts });
  });

  api.post('/messages/redrive', requireRole('admin'), body, async (req, res) => {
    const input = parseUntrustedJson(bodyOf(req), 'the redrive request') as Record<string, unknown>;
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new IcrosError('REQUEST_INVALID', 'expected {"state": "dead", "partner": "DE"}');
    }
    if (input.state !== 'dead') {
      throw new IcrosError('REQUEST_INVALID', 'only dead messages can be redriven: send "state": "dead"', {
        errors: [{ location: '/state', rule: 'const', message: 'must be "dead"' }],
      });
    }
    const partner = input.partner;
    if (partner !== undefined && (typeof partner !== 'string' || !ctx.registry.byCountry(partner))) {
      throw new IcrosError('REQUEST_INVALID', `"partner" must be a registered partner country`, {
        errors: [{ location: '/partner', rule: 'enum', message: 'must be a registered partner country' }],
      });
    }
    const rows = await redrive(ctx, who(res), sql('redriveMany'), [partner ?? null]);
    queue.kick();
    res.json({ redriven: rows.length, messages: rows.map((r) => ({ id: r.id, partner: r.peer })) });
  });

  api.post('/messages/:id/redrive', requireRole('admin'), async (req, res) => {
    const id = uuidParam(req.params.id, 'MESSAGE_NOT_FOUND');
    const rows = await redrive(ctx, who(res), sql('redriveOne'), [id]);
    if (rows.length === 0) {
      const found = await ctx.db.query<{ state: string; direction: string }>(sql('getMessage'), [id]);
      const out = found.find((m) => m.direction === 'out');
      if (!out) throw new IcrosError('MESSAGE_NOT_FOUND', `no outbound message ${id}`);
      throw new IcrosError('MESSAGE_NOT_DEAD', `message ${id} is ${out.state}, not dead`);
    }
    queue.kick();
    res.json({ id, partner: rows[0]!.peer, state: 'queued' });
  });

  api.get('/partners', requireRole('analyst', 'auditor'), async (_req, res) => {
    const counts = await ctx.db.query<{ peer: string; state: string; n: number }>(sql('countByPartnerState'));
    const open = await ctx.db.query<{
      peer: string;
      open: number;
      oldest: Date | null;
      oldest_age_s: number;
    }>(sql('openByPartner'));
    const lanes = new Map((await queue.partners()).map((l) => [l.country, l]));
    res.json({
      driver: queue.driver,
      partners: ctx.config.partners.map((p) => {
        const o = open.find((r) => r.peer === p.country);
        return {
          country: p.country,
          agency: p.agency,
          url: p.url,
          circuit: lanes.get(p.country)?.circuit ?? { state: 'closed', consecutiveFailures: 0 },
          inFlight: lanes.get(p.country)?.inFlight ?? 0,
          messages: Object.fromEntries(counts.filter((c) => c.peer === p.country).map((c) => [c.state, c.n])),
          oldestOpenAgeSeconds: o ? Math.round(Number(o.oldest_age_s)) : null,
          delivery: p.delivery,
        };
      }),
    });
  });

  api.use('/audit', auditRouter(ctx));
  api.use('/users', usersRouter(ctx));

  app.use('/api', api);
  app.use(notFound);
  app.use(errorHandler);
  return app;
}

const FILTERS = {
  direction: /^(in|out)$/,
  state: /^(queued|sending|retrying|delivered|dead|accepted)$/,
  partner: /^[A-Z]{2}$/,
  case: UUID,
  limit: /^[0-9]{1,4}$/,
  cursor: /^[A-Za-z0-9_-]{1,200}$/,
} as const;

/** Query filters of GET /api/messages; an unknown or malformed one is an error, never ignored. */
function messageFilters(query: express.Request['query']) {
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(query)) {
    const rule = FILTERS[k as keyof typeof FILTERS];
    if (!rule)
      throw new IcrosError(
        'REQUEST_INVALID',
        `unknown filter ${JSON.stringify(k)}; use ${Object.keys(FILTERS).join(', ')}`,
      );
    if (typeof v !== 'string' || !rule.test(v)) {
      throw new IcrosError('REQUEST_INVALID', `filter ${k}=${JSON.stringify(v)} is not valid`, {
        errors: [{ location: `?${k}`, rule: 'pattern', message: `${k} must match ${rule.source}` }],
      });
    }
    out[k] = v;
  }
  const limit = out.limit ? Number(out.limit) : 100;
  if (limit < 1 || limit > 1000) throw new IcrosError('REQUEST_INVALID', 'limit must be between 1 and 1000');
  return {
    direction: out.direction ?? null,
    state: out.state ?? null,
    partner: out.partner ?? null,
    case: out.case ?? null,
    cursor: out.cursor ? decodeCursor(out.cursor) : null,
    limit,
  };
}

/** Redrive rows (dead → queued) and audit each one, in one transaction. */
async function redrive(
  ctx: GatewayContext,
  actor: string,
  statement: string,
  params: unknown[],
): Promise<{ id: string; peer: string; case_id: string | null; attempts: number }[]> {
  const rows = await ctx.tx(async (q) => {
    const redriven = await q.query<{ id: string; peer: string; case_id: string | null; attempts: number }>(
      statement,
      params,
    );
    for (const r of redriven) {
      q.audit({
        actor: { kind: 'user', id: actor },
        action: 'message.redriven',
        subject: { message: r.id, partner: r.peer, ...(r.case_id ? { case: r.case_id } : {}) },
        detail: { attemptsSoFar: r.attempts },
      });
    }
    return redriven;
  });
  for (const r of rows) ctx.metrics.redriven.inc({ partner: r.peer });
  return rows;
}

/** `?offset=N`: the index in the whole file of this upload's first report (icros ingest sends chunks). */
function offsetParam(v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'string' || !/^[0-9]{1,9}$/.test(v)) {
    throw new IcrosError('REQUEST_INVALID', 'offset must be a whole number of reports (0 to 999999999)', {
      errors: [{ location: 'query offset', rule: 'type', message: 'must be a whole number' }],
    });
  }
  return Number(v);
}
