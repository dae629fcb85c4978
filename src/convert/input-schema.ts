import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

// National input schemas are compiled apart from the shared ones: each format folder brings
// its own `$id`s, and a mistake in one must not break the others.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
addFormats.default(ajv);

export function compileInputSchema(schema: Record<string, unknown>): ValidateFunction {
  return ajv.compile(schema);
}
