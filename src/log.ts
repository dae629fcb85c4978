/**
 * Operational logs: winston JSON to stdout, one object a line. Every line written while a
 * request is being served carries that request's id (AsyncLocalStorage), and fields whose
 * names suggest a secret are replaced before the line is written, so a careless
 * `log.info('x', { token })` cannot leak. Personal data is never passed to the logger in the
 * first place: callers log ids and digests only.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';

const requestContext = new AsyncLocalStorage<{ requestId: string }>();

const SECRET_FIELD = /(token|secret|password|passwd|authorization|cookie|private|key(pem)?$|pem$)/i;
const REDACTED = '[redacted]';

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELD.test(k) ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

const addContext = winston.format((info) => {
  const ctx = requestContext.getStore();
  if (ctx && info.requestId === undefined) info.requestId = ctx.requestId;
  for (const k of Object.keys(info)) {
    if (k !== 'level' && k !== 'message' && SECRET_FIELD.test(k)) info[k] = REDACTED;
    else if (typeof info[k] === 'object') info[k] = redact(info[k]);
  }
  return info;
});

/** The process-wide logger. `LOG_LEVEL` is applied by the config loader via `setLogLevel`. */
export const log = winston.createLogger({
  level: 'info',
  format: winston.format.combine(addContext(), winston.format.timestamp(), winston.format.json()),
  transports: [new winston.transports.Console({ stderrLevels: [] })],
});

export function setLogLevel(level: string): void {
  log.level = level;
}

/** Run `fn` with `requestId` attached to every log line it writes. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return requestContext.run({ requestId }, fn);
}

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}
