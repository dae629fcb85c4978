/** Shared case → national record, with the format's `fromCase` JSONata mapping. Pure. */
import { IcrosError } from '../errors.js';
import type { CaseV1 } from '../schema/validators.js';
import type { NationalFormat } from './format.js';

export async function convertFromCase(format: NationalFormat, c: CaseV1): Promise<unknown> {
  if (!format.fromCase) {
    throw new IcrosError(
      'FORMAT_UNSUPPORTED',
      `format ${format.spec.id} has no mapping from the shared case`,
    );
  }
  try {
    return await format.fromCase.evaluate(c, {
      formatId: format.spec.id,
      mappingVersion: format.spec.mappingVersion,
      tables: format.spec.tables ?? {},
    });
  } catch (cause) {
    throw new IcrosError(
      'FORMAT_UNSUPPORTED',
      `the ${format.spec.id} export mapping failed: ${(cause as Error).message}`,
      { cause },
    );
  }
}
