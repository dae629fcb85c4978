import { IcrosError } from '../errors.js';

/** EADDRINUSE and friends as a sentence an operator can act on. */
export function explainListenError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.code === 'EADDRINUSE') {
    return new IcrosError(
      'CONFIG_INVALID',
      `port ${e.port} on ${e.address} is already in use: stop what runs there, or set listen.*.port (or ICROS_PARTNER_PORT / ICROS_ADMIN_PORT)`,
      { cause: err },
    );
  }
  if (e?.code === 'EACCES' || e?.code === 'EADDRNOTAVAIL') {
    return new IcrosError('CONFIG_INVALID', `cannot listen on ${e.address}:${e.port} (${e.code})`, {
      cause: err,
    });
  }
  return err;
}
