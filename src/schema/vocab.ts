/**
 * Vocabulary checks beyond regular expressions, registered as ajv formats: a country code must
 * be in ISO 3166-1, a currency in ISO 4217, a phone number must be dialable (E.164 and the
 * numbering plan of its country), an IBAN must pass its check digits (ISO 13616 mod 97).
 *
 * Every check refuses an over-long string before doing any work, so a hostile 10 MB value
 * costs one length comparison here (the schema's `maxLength` reports it). The same guard is
 * put around the ajv-formats formats: some of their regular expressions are slow on long input,
 * and `uri-reference` overflows the stack on a 10 MB string (a crash, not a validation error).
 */
import { isIP } from 'node:net';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import currencyCodes from 'currency-codes';
import countries from 'i18n-iso-countries/index.js';
import { ValidationErrorsBIC, ValidationErrorsIBAN, validateBIC, validateIBAN } from 'ibantools';
import { isValidPhoneNumber, validatePhoneNumberLength } from 'libphonenumber-js/max';

/** A vocabulary format: a bounded test, and why a value fails it (for error messages). */
interface VocabFormat {
  /** Longer strings fail at once. */
  maxLength: number;
  /** What the value should be, in "is not a valid <label>". */
  label: string;
  /** What a valid value looks like, when no more precise reason is known. */
  hint: string;
  test(value: string): boolean;
  /** Why `value` fails, when more can be said than `hint`. */
  reason?(value: string): string | undefined;
}

// `i18n-iso-countries/index.js` rather than the package root: the root (entry-node) also loads
// the country names in ~80 languages, which validation does not need. XK (Kosovo) is in the
// list: a user-assigned code that Europol, Interpol and the EU use.
const COUNTRIES: ReadonlySet<string> = new Set(Object.keys(countries.getAlpha2Codes()));
// ISO 4217 list one; XTS (reserved for testing) and XXX ("no currency") cannot measure a loss.
const CURRENCIES: ReadonlySet<string> = new Set(
  currencyCodes.codes().filter((c) => c !== 'XTS' && c !== 'XXX'),
);

const E164 = /^\+[1-9][0-9]{6,14}$/;
const IBAN_ELECTRONIC = /^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// RFC 5646 §2.1 langtag: language(-extlang) (-script) (-region) (-variant)* (-extension)*
// (-privateuse); irregular grandfathered tags are not accepted. Input is at most 35 characters
// (RFC 5646 §4.4.1) before this runs, which bounds the nested repetitions.
const BCP47 =
  /^(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})(?:-[a-z]{4})?(?:-(?:[a-z]{2}|[0-9]{3}))?(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*(?:-x(?:-[a-z0-9]{1,8})+)?$/i;

const isDate = (fullFormats.date as { validate: (s: string) => boolean }).validate;
const isDateTime = (fullFormats['date-time'] as { validate: (s: string) => boolean }).validate;

const IBAN_REASONS: Partial<Record<ValidationErrorsIBAN, string>> = {
  [ValidationErrorsIBAN.NoIBANCountry]: 'its country has no IBAN',
  [ValidationErrorsIBAN.WrongBBANLength]: 'wrong length for its country',
  [ValidationErrorsIBAN.WrongBBANFormat]: 'the account part does not have the form its country uses',
  [ValidationErrorsIBAN.WrongIBANChecksum]: 'check digits do not match',
  [ValidationErrorsIBAN.WrongAccountBankBranchChecksum]:
    'the national check digits of the account do not match',
};

const PHONE_REASONS: Record<string, string> = {
  TOO_SHORT: 'too short for its country',
  TOO_LONG: 'too long for its country',
  INVALID_LENGTH: 'wrong length for its country',
  INVALID_COUNTRY: 'no country uses this calling code',
};

/** The formats the case schema names, keyed by format name. */
export const VOCABULARY: Readonly<Record<string, VocabFormat>> = {
  'iso3166-alpha2': {
    maxLength: 2,
    label: 'ISO 3166-1 alpha-2 country code',
    hint: 'two capital letters naming a country, e.g. FR',
    test: (v) => COUNTRIES.has(v),
  },
  iso4217: {
    maxLength: 3,
    label: 'ISO 4217 currency code',
    hint: 'three capital letters naming a currency, e.g. EUR',
    test: (v) => CURRENCIES.has(v),
  },
  e164: {
    maxLength: 16,
    label: 'E.164 phone number',
    hint: '+, country code and number, no spaces, e.g. +33612345678',
    test: (v) => E164.test(v) && isValidPhoneNumber(v),
    reason(v) {
      if (!E164.test(v)) return 'not in E.164 form: + then 7 to 15 digits, no spaces';
      const length = validatePhoneNumberLength(v);
      return (length && PHONE_REASONS[length]) ?? 'not a number in its country’s numbering plan';
    },
  },
  iban: {
    maxLength: 34,
    label: 'IBAN',
    hint: 'electronic form: capital letters and digits, no spaces',
    test: (v) => IBAN_ELECTRONIC.test(v) && validateIBAN(v).valid,
    reason(v) {
      if (!IBAN_ELECTRONIC.test(v)) {
        return 'not in electronic form: country, check digits, then at most 30 capital letters and digits, no spaces';
      }
      const [code] = validateIBAN(v).errorCodes;
      return code === undefined ? undefined : IBAN_REASONS[code];
    },
  },
  bic: {
    maxLength: 11,
    label: 'BIC',
    hint: 'ISO 9362: 8 or 11 capital letters and digits, e.g. DEUTDEFF',
    test: (v) => validateBIC(v).valid,
    reason(v) {
      const [code] = validateBIC(v).errorCodes;
      if (code === ValidationErrorsBIC.NoBICCountry) return 'its country code is not a country';
      return code === ValidationErrorsBIC.WrongBICFormat
        ? 'not 8 or 11 capital letters and digits'
        : undefined;
    },
  },
  bcp47: {
    maxLength: 35,
    label: 'BCP 47 language tag',
    hint: 'e.g. fr, en-GB, sr-Latn',
    test: (v) => BCP47.test(v),
  },
  'sha256-hex': {
    maxLength: 64,
    label: 'SHA-256 digest',
    hint: '64 lowercase hexadecimal characters',
    test: (v) => SHA256_HEX.test(v),
  },
  ip: {
    maxLength: 45,
    label: 'IP address',
    hint: 'IPv4 dotted quad or IPv6',
    test: (v) => isIP(v) !== 0,
  },
  'date-or-date-time': {
    maxLength: 35,
    label: 'date or date-time',
    hint: 'YYYY-MM-DD, or RFC 3339 with an offset, e.g. 2026-11-02T09:15:00Z',
    test: (v) => (v.length === 10 ? isDate(v) : isDateTime(v)),
  },
};

/** Longer values fail ajv-formats formats without being parsed. */
const FORMAT_GUARD_LENGTH = 8192;

/**
 * Register the vocabulary formats on `ajv`, and put the length guard around the ajv-formats
 * string formats (call after `addFormats`).
 */
export function registerVocabulary(ajv: Ajv2020): void {
  for (const [name, f] of Object.entries(VOCABULARY)) {
    ajv.addFormat(name, { type: 'string', validate: (v: string) => v.length <= f.maxLength && f.test(v) });
  }
  for (const [name, def] of Object.entries(fullFormats)) {
    if (typeof def === 'function') ajv.addFormat(name, guard(def));
    else if (def instanceof RegExp)
      ajv.addFormat(
        name,
        guard((s) => def.test(s)),
      );
    else if (typeof def === 'object' && def.type !== 'number' && !('async' in def && def.async)) {
      const v = def.validate;
      const test =
        typeof v === 'function' ? (v as (s: string) => boolean) : (s: string) => toRegExp(v).test(s);
      ajv.addFormat(name, { ...def, type: 'string', validate: guard(test) } as never);
    }
  }
}

function guard(test: (s: string) => boolean): (s: string) => boolean {
  return (s) => s.length <= FORMAT_GUARD_LENGTH && test(s);
}

function toRegExp(v: unknown): RegExp {
  return v instanceof RegExp ? v : new RegExp(String(v), 'u');
}

/** Hints for the ajv-formats formats the schemas use. */
const GENERIC_HINTS: Readonly<Record<string, string>> = {
  'date-time': 'RFC 3339 with an offset, e.g. 2026-11-02T09:15:00Z',
  date: 'YYYY-MM-DD',
  uuid: 'e.g. 0b6f2a1e-3c4d-4e5f-8a9b-1c2d3e4f5a6b',
  uri: 'an absolute URI, e.g. https://shop.example/pay',
  email: 'e.g. name@domain.example',
  hostname: 'a DNS name in ASCII (IDNA A-labels), e.g. xn--bcher-kva.example',
};

/** Values up to this length get a precise reason; longer ones are only said to be too long. */
const EXPLAIN_LIMIT = 256;

/** True when explainFormat says more about `value` than that it is too long. */
export function canExplain(format: string, value: unknown): boolean {
  return Object.hasOwn(VOCABULARY, format) && typeof value === 'string' && value.length <= EXPLAIN_LIMIT;
}

/**
 * Why `value` is not a valid `format`, as a sentence without its location, e.g.
 * "is not a valid IBAN (check digits do not match)".
 */
export function explainFormat(format: string, value: unknown): string {
  const f = Object.hasOwn(VOCABULARY, format) ? VOCABULARY[format] : undefined;
  if (!f) {
    const hint = Object.hasOwn(GENERIC_HINTS, format) ? GENERIC_HINTS[format] : undefined;
    return hint ? `is not a valid ${format} (${hint})` : `is not a valid ${format}`;
  }
  // `value` is known only when the validator was compiled with ajv's `verbose` option.
  if (typeof value === 'string' && value.length > EXPLAIN_LIMIT) {
    return `is not a valid ${f.label} (longer than ${f.maxLength} characters)`;
  }
  const why = typeof value === 'string' ? f.reason?.(value) : undefined;
  return `is not a valid ${f.label} (${why ?? f.hint})`;
}
