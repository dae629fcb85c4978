/**
 * National bytes → shared cases. Pure: bytes in, cases and located errors out, no I/O.
 * Each record is checked against the format's input schema, mapped with its JSONata
 * expression, and the result checked against the case schema; a record that fails is
 * reported with its location and never half-converted.
 */
import { v5 as uuidv5 } from 'uuid';
import { parseUntrustedJson } from '../envelope/json.js';
import { IcrosError, type ProblemItem } from '../errors.js';
import { type CaseV1, MAX_REPORTED_ERRORS, toProblemItems, validateCase } from '../schema/validators.js';
import type { NationalFormat } from './format.js';

/** Namespace of the case ids derived from (country, national reference): re-ingesting a report gives the same id. */
export const CASE_ID_NAMESPACE = '3f1c2b7e-9a64-4d7e-8c51-2f0e6b1d9a40';
export const MAX_RECORDS = 100_000;

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

const bindings = (format: NationalFormat) => ({
  caseId: (country: string, reference: string) => uuidv5(`${country}:${reference}`, CASE_ID_NAMESPACE),
  mappingVersion: format.spec.mappingVersion,
  formatId: format.spec.id,
  tables: format.spec.tables ?? {},
});

/** The shared format: one case, an array of cases, or `{ "cases": [...] }`. */
export function sharedToCases(bytes: Uint8Array): Conversion {
  const doc = parseUntrustedJson(bytes, 'the report');
  const { records, locate } = splitRecords('cases', doc);
  if (records.length > MAX_RECORDS) {
    throw new IcrosError('REPORT_INVALID', `at most ${MAX_RECORDS} cases per request, got ${records.length}`);
  }
  const out: Conversion = { cases: [], rejected: [] };
  for (const [index, record] of records.entries()) {
    const location = locate(index);
    if (validateCase(record)) out.cases.push({ index, location, case: record });
    else {
      const errors = validateCase.problems(record).map((p) => ({
        ...p,
        location: `${location}${p.location === '/' ? '' : p.location}` || '/',
      }));
      out.rejected.push({ index, location, errors });
    }
  }
  return out;
}

export async function convertToCases(format: NationalFormat, bytes: Uint8Array): Promise<Conversion> {
  const doc = parseUntrustedJson(bytes, 'the report');
  const { records, locate } = splitRecords(format.spec.parser.records, doc);
  if (records.length > MAX_RECORDS) {
    throw new IcrosError(
      'REPORT_INVALID',
      `at most ${MAX_RECORDS} reports per request, got ${records.length}`,
    );
  }
  const out: Conversion = { cases: [], rejected: [] };
  const bound = bindings(format);
  for (const [index, record] of records.entries()) {
    const location = locate(index);
    if (!format.validateInput(record)) {
      out.rejected.push({
        index,
        location,
        errors: toProblemItems(format.validateInput.errors ?? [], location),
      });
      continue;
    }
    let mapped: unknown;
    try {
      mapped = await format.toCase.evaluate(record, bound);
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
    const problems = validateCase.problems(mapped);
    if (problems.length) {
      out.rejected.push({
        index,
        location,
        errors: problems.slice(0, MAX_REPORTED_ERRORS).map((p) => ({
          ...p,
          location: location || '/',
          message: `after conversion, case ${p.location}: ${p.message}`,
        })),
      });
      continue;
    }
    out.cases.push({ index, location, case: mapped as CaseV1 });
  }
  return out;
}

/** One report, an array of reports, or an object whose `parser.records` member holds them. */
function splitRecords(
  member: string | undefined,
  doc: unknown,
): { records: unknown[]; locate: (i: number) => string } {
  if (Array.isArray(doc)) return { records: doc, locate: (i) => `/${i}` };
  if (
    member &&
    typeof doc === 'object' &&
    doc !== null &&
    Array.isArray((doc as Record<string, unknown>)[member])
  ) {
    return { records: (doc as Record<string, unknown[]>)[member]!, locate: (i) => `/${member}/${i}` };
  }
  return { records: [doc], locate: () => '' };
}
