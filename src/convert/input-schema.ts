import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { registerVocabulary } from '../schema/vocab.js';

/**
 * Each national input schema gets an ajv instance of its own: format folders bring their own
 * `$id`s, loading the formats twice must not clash, and a mistake in one folder must not
 * break the others. Same vocabulary formats and long-string guards as the case schema.
 */
export function compileInputSchema(schema: Record<string, unknown>): ValidateFunction {
  // verbose: error messages quote the schema's description of a pattern.
  const ajv = new Ajv2020({
    allErrors: true,
    verbose: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
  });
  addFormats.default(ajv);
  registerVocabulary(ajv);
  return ajv.compile(schema);
}
