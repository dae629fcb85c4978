/**
 * National formats are data: `schemas/national/<id>/format.json` names the parser, the input
 * schema and the JSONata mappings to and from the shared case. Adding a country adds a
 * folder, no code (docs/national-formats.md).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ValidateFunction } from 'ajv';
import type jsonata from 'jsonata';
import { IcrosError } from '../errors.js';
import { type CompiledMapping, compileMapping } from './compile.js';
import { compileInputSchema } from './input-schema.js';
import type { ParserSpec } from './parse.js';

export interface FormatSpec {
  id: string;
  label: string;
  mappingVersion: string;
  /** How bytes become records and records become bytes: `json`, `csv` or `xml` (parse.ts). */
  parser: ParserSpec;
  mediaType: string;
  inputSchema: string;
  toCase: string;
  fromCase?: string;
  /** Lookup data (code lists) the mappings read as `$tables`. */
  tables?: Record<string, unknown>;
  /**
   * `lossless` (default): national → case → national gives back every record as it was, and
   * the golden tests check it. `lossy` for exchange formats that carry more than a case
   * (STIX, MISP): only case → format → case is checked.
   */
  roundTrip?: 'lossless' | 'lossy';
}

export interface NationalFormat {
  spec: FormatSpec;
  dir: string;
  validateInput: ValidateFunction;
  /** jsonata's parsed expressions of the mappings (syntax checked, positions). */
  toCase: jsonata.Expression;
  fromCase?: jsonata.Expression;
  /**
   * The same mappings compiled to synchronous closures (compile.ts), which is what conversion
   * runs; a mapping the compiler does not cover runs on jsonata (`compiled: false`, `reason`).
   */
  toCaseMapping: CompiledMapping;
  fromCaseMapping?: CompiledMapping;
}

export const NATIONAL_ROOT = fileURLToPath(new URL('../../schemas/national/', import.meta.url));

/** Load and compile one format folder; errors name the file and what is wrong. */
export function loadFormat(dir: string): NationalFormat {
  const read = (file: string) => {
    const p = path.join(dir, file);
    try {
      return readFileSync(p, 'utf8');
    } catch (cause) {
      throw new IcrosError('FORMAT_UNSUPPORTED', `national format ${dir}: cannot read ${file}`, { cause });
    }
  };
  const spec = JSON.parse(read('format.json')) as FormatSpec;
  const compile = (file: string): CompiledMapping => {
    try {
      return compileMapping(read(file));
    } catch (cause) {
      const e = cause as { message?: string; position?: number };
      throw new IcrosError('FORMAT_UNSUPPORTED', `${path.join(dir, file)}: ${e.message} at ${e.position}`, {
        cause,
      });
    }
  };
  const toCase = compile(spec.toCase);
  const fromCase = spec.fromCase ? compile(spec.fromCase) : undefined;
  return {
    spec,
    dir,
    validateInput: compileInputSchema(JSON.parse(read(spec.inputSchema))),
    toCase: toCase.expression,
    toCaseMapping: toCase,
    ...(fromCase ? { fromCase: fromCase.expression, fromCaseMapping: fromCase } : {}),
  };
}

/** Every format under `root` (default `schemas/national/`), by id. */
export function loadFormats(root: string = NATIONAL_ROOT): Map<string, NationalFormat> {
  const out = new Map<string, NationalFormat>();
  if (!existsSync(root)) return out;
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || !existsSync(path.join(root, entry.name, 'format.json'))) continue;
    const f = loadFormat(path.join(root, entry.name));
    if (f.spec.id !== entry.name) {
      throw new IcrosError(
        'FORMAT_UNSUPPORTED',
        `${entry.name}/format.json declares id ${f.spec.id}; the folder must be named after it`,
      );
    }
    out.set(f.spec.id, f);
  }
  return out;
}
