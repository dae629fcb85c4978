/**
 * The partner listener's Express app (DESIGN §4). It never listens itself: `server.ts`
 * wraps it in the mTLS server. Checks run in contract order; every rejection is answered
 * with problem+json and recorded in the audit log (rate-limit refusals only in the log, so
 * a flood cannot flood the chain).
 */
import type { TLSSocket } from 'node:tls';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { GatewayContext } from '../context.js';
import { IcrosError, isIcrosError } from '../errors.js';
import {
  bodyOf,
  errorHandler,
  normalizeHttpError,
  notFound,
  rawBody,
  requestId,
  requireContentType,
} from '../http/common.js';
import { log } from '../log.js';
import { BATCH_PATH, MAX_BATCH, parseBatch, receiveBatch } from './batch.js';
import { identify } from './identity.js';
import { RateLimiter } from './rate.js';
import { receiveMessage } from './receive.js';

export function createPartnerApp(ctx: GatewayContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const limiter = new RateLimiter();

  app.use(requestId);
  app.use((req, res, next) => {
    const { partner, fingerprint } = identify(req.socket as TLSSocket, ctx.registry);
    res.locals.partner = partner;
    res.locals.fingerprint = fingerprint;
    if (!limiter.take(partner.country, partner.ratePerSecond)) {
      throw new IcrosError(
        'RATE_LIMITED',
        `more than ${partner.ratePerSecond} requests per second from ${partner.country}`,
      );
    }
    next();
  });

  app.get('/v1/ping', (_req, res) => {
    res.json({
      gateway: { country: ctx.config.country, agency: ctx.config.agency },
      you: {
        country: res.locals.partner.country,
        agency: res.locals.partner.agency,
        tlsFingerprint: res.locals.fingerprint,
      },
      time: ctx.now().toISOString(),
      // What this receiver supports beyond single messages; a sender reads it at start and
      // after each circuit probe, and falls back to POST /v1/messages when it is absent.
      capabilities: { batch: { path: BATCH_PATH, maxMessages: MAX_BATCH } },
    });
  });

  app.post(
    '/v1/messages',
    requireContentType('application/jose'),
    rawBody(ctx.config.limits.maxBodyBytes),
    async (req, res) => {
      const body = bodyOf(req);
      const result = await receiveMessage(ctx, res.locals.partner, body);
      if (result.status === 201)
        ctx.metrics.receipts.inc({ direction: 'issued', partner: res.locals.partner.country });
      log.info('message accepted', {
        partner: res.locals.partner.country,
        messageId: result.envelope?.id,
        type: result.envelope?.type,
        status: result.status,
      });
      res.status(result.status).type('application/jose').send(result.receiptJws);
    },
  );

  // `:` starts a parameter in Express 5 route strings, hence the escape.
  app.post(
    BATCH_PATH.replace(':', '\\:'),
    requireContentType('application/json'),
    rawBody(ctx.config.limits.maxBodyBytes),
    async (req, res) => {
      const body = bodyOf(req);
      const { receiptJws, outcomes } = await receiveBatch(ctx, res.locals.partner, parseBatch(body));
      const count = (s: string) => outcomes.filter((o) => o.status === s).length;
      ctx.metrics.receipts.inc(
        { direction: 'issued', partner: res.locals.partner.country },
        count('accepted'),
      );
      log.info('batch received', {
        partner: res.locals.partner.country,
        messages: outcomes.length,
        accepted: count('accepted'),
        duplicate: count('duplicate'),
        rejected: count('rejected'),
      });
      res.status(200).type('application/jose').send(receiptJws);
    },
  );

  app.use(notFound);
  app.use(async (err: unknown, req: Request, res: Response, next: NextFunction) => {
    const e = normalizeHttpError(err);
    if (!isIcrosError(e, 'NOT_FOUND')) await auditRejection(ctx, req, res, e);
    errorHandler(e, req, res, next);
  });
  return app;
}

async function auditRejection(ctx: GatewayContext, req: Request, res: Response, err: unknown): Promise<void> {
  const code = err instanceof IcrosError ? err.code : 'INTERNAL';
  const partner: string | undefined = res.locals.partner?.country;
  ctx.metrics.inboundRejections.inc({ code, partner: partner ?? 'unknown' });
  log.warn('partner request rejected', { partner, code, path: req.path });
  if (code === 'RATE_LIMITED') return;
  try {
    await ctx.tx.append((q) =>
      q.audit({
        actor: { kind: 'partner', id: partner ?? 'unknown' },
        action: 'message.rejected',
        subject: partner ? { partner } : {},
        detail: {
          code,
          path: req.path,
          ...(partner ? {} : { tlsFingerprint: res.locals.fingerprint ?? null }),
        },
      }),
    );
  } catch (auditErr) {
    log.error('could not audit a rejection', { code, err: (auditErr as Error).message });
  }
}
