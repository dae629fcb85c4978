/**
 * What the partner and admin listeners share: request ids, problem+json errors, a 404 for
 * unknown routes, and reading a raw body within a limit.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { v7 as uuidv7 } from 'uuid';
import { type ErrorCode, IcrosError, toProblem } from '../errors.js';
import { log, withRequestId } from '../log.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** Take the caller's `X-Request-Id` when it is sane, else mint one; echo it; log under it. */
export const requestId: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  const id = given && SAFE_REQUEST_ID.test(given) ? given : uuidv7();
  res.locals.requestId = id;
  res.set('X-Request-Id', id);
  withRequestId(id, next);
};

export function sendProblem(res: Response, err: unknown): void {
  const problem = toProblem(
    err,
    res.locals.requestId ? `urn:icros:request:${res.locals.requestId}` : undefined,
  );
  if (problem.status >= 500) log.error('request failed', { code: problem.code, err: describeError(err) });
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new IcrosError('NOT_FOUND', `no route for ${req.method} ${req.path}`));
};

/** Body-parser and other framework errors get their registered code, never a bare 500. */
export function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  sendProblem(res, normalizeHttpError(err));
}

export function normalizeHttpError(err: unknown): unknown {
  if (err instanceof IcrosError) return err;
  // The router could not percent-decode a path parameter: the caller's URL, not our fault.
  if (err instanceof URIError && (err as { status?: number }).status === 400) {
    return new IcrosError('REQUEST_INVALID', 'a path segment is not valid percent-encoding', { cause: err });
  }
  const type = (err as { type?: string })?.type;
  const map: Record<string, [ErrorCode, string]> = {
    'entity.too.large': ['PAYLOAD_TOO_LARGE', 'the request body exceeds the size limit'],
    'encoding.unsupported': ['UNSUPPORTED_MEDIA_TYPE', 'compressed request bodies are not accepted'],
    'charset.unsupported': ['UNSUPPORTED_MEDIA_TYPE', 'the request charset is not supported'],
    'request.aborted': ['BODY_MALFORMED', 'the request body was aborted'],
    'entity.verify.failed': ['BODY_MALFORMED', 'the request body could not be read'],
    'entity.parse.failed': ['BODY_MALFORMED', 'the request body could not be parsed'],
  };
  const hit = type ? map[type] : undefined;
  if (hit) {
    const limit = (err as { limit?: number }).limit;
    return new IcrosError(
      hit[0],
      limit && hit[0] === 'PAYLOAD_TOO_LARGE' ? `${hit[1]} (${limit} bytes)` : hit[1],
      {
        cause: err,
      },
    );
  }
  return err;
}

/** The body `rawBody` read (empty when there was none). */
export function bodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** Refuse a request whose Content-Type is not `type` (415), before its body is read. */
export function requireContentType(type: string): RequestHandler {
  return (req, _res, next) => {
    if (!req.is(type)) {
      throw new IcrosError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Content-Type must be ${type}, got ${req.get('content-type') ?? 'none'}`,
      );
    }
    next();
  };
}

/** The raw request body as a Buffer, up to `limit` bytes; compressed bodies are refused. */
export function rawBody(limit: number): RequestHandler {
  return express.raw({ type: () => true, limit, inflate: false });
}

function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { value: String(err) };
}
