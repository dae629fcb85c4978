/** Shared case → national record(s) and bytes, with the format's `fromCase` JSONata mapping. Pure. */
import { IcrosError } from '../errors.js';
import type { CaseV1 } from '../schema/validators.js';
import type { NationalFormat } from './format.js';
import { type Serialized, serializeRecords } from './serialize.js';
import { bindings } from './to-case.js';

export async function convertFromCase(format: NationalFormat, c: CaseV1): Promise<unknown> {
  const mapping = format.fromCaseMapping;
  if (!mapping) {
    throw new IcrosError(
      'FORMAT_UNSUPPORTED',
      `format ${format.spec.id} has no mapping from the shared case`,
    );
  }
  try {
    // A compiled mapping answers synchronously; jsonata (a mapping left to it, or the error
    // of a case the compiled mapping fails on, in jsonata's words) with a Promise.
    const record = mapping.run(c, bindings(format));
    return record instanceof Promise ? await record : record;
  } catch (cause) {
    throw new IcrosError(
      'FORMAT_UNSUPPORTED',
      `the ${format.spec.id} export mapping failed: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/** Cases → one document in the format's own syntax (a JSON object or array, a CSV file, an XML file). */
export async function exportCases(format: NationalFormat, cases: CaseV1[]): Promise<Serialized> {
  const records = [];
  for (const c of cases) records.push(await convertFromCase(format, c));
  return serializeRecords(format.spec.parser, format.spec.mediaType, records);
}
