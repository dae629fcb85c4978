/**
 * Error codes raised by the dev PKI: a subset of the registry in `src/errors.ts`.
 */
import { IcrosError } from '../errors.js';

export type PkiErrorCode =
  | 'PKI_BAD_COUNTRIES'
  | 'PKI_BAD_SUBJECT'
  | 'PKI_BAD_ALG'
  | 'PKI_BAD_CA'
  | 'PKI_BAD_CERT'
  | 'PKI_STALE_COUNTRY'
  | 'PKI_IO';

/** A dev PKI failure; tests and callers branch on `code`, never on the message. */
export class PkiError extends IcrosError {
  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PkiError';
  }
}
