/**
 * National bytes → shared cases. Pure: bytes in, cases and located errors out, no I/O.
 * Each record is checked against the format's input schema, mapped with its JSONata
 * expression, and the result checked against the case schema; a record that fails is
 * reported with its location and never half-converted.
 */
import { parse as uuidParse, v5 as uuidv5 } from 'uuid';
import { IcrosError, type ProblemItem } from '../errors.js';
import { type CaseV1, MAX_REPORTED_ERRORS, toProblemItems, validateCase } from '../schema/validators.js';
import type { NationalFormat } from './format.js';
import { parseRecords } from './parse.js';
import { fromLocalTime, toLocalTime } from './time.js';

/** Namespace of the case ids derived from (country, national reference): re-ingesting a report gives the same id. */
export const CASE_ID_NAMESPACE = '3f1c2b7e-9a64-4d7e-8c51-2f0e6b1d9a40';
export const MAX_RECORDS = 100_000;
/** The namespace as bytes, parsed once rather than on every id. */
const NAMESPACE_BYTES = uuidParse(CASE_ID_NAMESPACE);

export interface Converted {
  index: number;
  location: string;
  case: CaseV1;
}

export interface Rejected {
  index: number;
  location: string;
  errors: ProblemItem[];
}

export interface Conversion {
  cases: Converted[];
  rejected: Rejected[];
}

/** Who is converting: the ingesting gateway's country and agency, for formats that do not carry an origin. */
export interface LocalOrigin {
  country: string;
  agency: string;
}

/**
 * What every mapping sees besides its input: `$caseId(country, reference)`, `$uuid5(name)`,
 * `$fromLocalTime(local, zone)` / `$toLocalTime(instant, zone)` (time.ts),
 * `$tables`, `$formatId`, `$mappingVersion` and `$local` ({country, agency} of the converting
 * gateway, when known).
 */
export const bindings = (format: NationalFormat, local?: LocalOrigin) => ({
  local: local ?? {},
  caseId: (country: string, reference: string) => uuidv5(`${country}:${reference}`, NAMESPACE_BYTES),
  uuid5: (name: string) => uuidv5(String(name), NAMESPACE_BYTES),
  fromLocalTime,
  toLocalTime,
  mappingVersion: format.spec.mappingVersion,
  formatId: format.spec.id,
  tables: format.spec.tables ?? {},
});

/** The shared format: one case, an array of cases, or `{ "cases": [...] }`. */
export function sharedToCases(bytes: Uint8Array, offset = 0): Conversion {
  const { records, locate, locateIn } = parseRecords({ type: 'json', records: 'cases' }, bytes);
  if (records.length > MAX_RECORDS) {
    throw new IcrosError('REPORT_INVALID', `at most ${MAX_RECORDS} cases per request, got ${records.length}`);
  }
  const out: Conversion = { cases: [], rejected: [] };
  for (const [i, record] of records.entries()) {
    const index = i + offset;
    const location = locate(index);
    if (validateCase(record)) out.cases.push({ index, location, case: record });
    else {
      const errors = validateCase.problems(record).map((p) => ({
        ...p,
        location: locateIn(index, p.location === '/' ? '' : p.location),
      }));
      out.rejected.push({ index, location, errors });
    }
  }
  return out;
}

export async function convertToCases(
  format: NationalFormat,
  bytes: Uint8Array,
  local?: LocalOrigin,
  /** Index in the whole file of the first report here (a chunk of `icros ingest`). */
  offset = 0,
): Promise<Conversion> {
  const parsed = parseRecords(format.spec.parser, bytes);
  const { records } = parsed;
  if (records.length > MAX_RECORDS) {
    throw new IcrosError(
      'REPORT_INVALID',
      `at most ${MAX_RECORDS} reports per request, got ${records.length}`,
    );
  }
  const out: Conversion = { cases: [], rejected: [] };
  const bound = bindings(format, local);
  for (const [i, record] of records.entries()) {
    const index = i + offset;
    const location = parsed.locate(index);
    if (!format.validateInput(record)) {
      out.rejected.push({
        index,
        location,
        errors: toProblemItems(format.validateInput.errors ?? []).map((p) => ({
          ...p,
          location: parsed.locateIn(index, p.location === '/' ? '' : p.location),
        })),
      });
      continue;
    }
    let mapped: unknown;
    try {
      // A compiled mapping answers synchronously; jsonata (a mapping left to it, or the error
      // of a report the compiled mapping rejects, in jsonata's words) with a Promise.
      mapped = format.toCaseMapping.run(record, bound);
      if (mapped instanceof Promise) mapped = await mapped;
    } catch (cause) {
      const message = (cause as Error).message ?? String(cause);
      out.rejected.push({
        index,
        location,
        errors: [
          {
            location: location || '/',
            rule: 'mapping',
            message: `the ${format.spec.id} mapping failed: ${message}`,
          },
        ],
      });
      continue;
    }
    // A mapping may give several cases for one record (a STIX bundle with two incidents):
    // all of them are valid, or the record is rejected whole.
    const many = Array.isArray(mapped) ? (mapped as unknown[]) : [mapped];
    const errors = many.flatMap((m, n) =>
      validateCase.problems(m).map((p) => ({
        ...p,
        location: location || '/',
        message: `after conversion, case${many.length > 1 ? ` ${n + 1}` : ''} ${p.location}: ${p.message}`,
      })),
    );
    if (errors.length || many.length === 0) {
      out.rejected.push({
        index,
        location,
        errors: many.length
          ? errors.slice(0, MAX_REPORTED_ERRORS)
          : [
              {
                location: location || '/',
                rule: 'mapping',
                message: `the ${format.spec.id} mapping gave no case`,
              },
            ],
      });
      continue;
    }
    for (const c of many) out.cases.push({ index, location, case: c as CaseV1 });
  }
  return out;
}
