/**
 * JSON Schema validators, compiled once from `schemas/`. Each returns located problems in
 * one shape (JSON pointer, rule, sentence) so every caller reports errors the same way.
 */
import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ProblemItem } from '../errors.js';

/** Hostile input must not make the error list unbounded. */
export const MAX_REPORTED_ERRORS = 50;

const schemasRoot = new URL('../../schemas/', import.meta.url);

export function readSchema(relPath: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(relPath, schemasRoot), 'utf8'));
}

function makeAjv(useDefaults: boolean): Ajv2020 {
  // `$data` stays off (GOTCHAS); allErrors is bounded by the schemas' maxLength/maxItems and
  // by MAX_REPORTED_ERRORS when reporting.
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: false,
    useDefaults,
    allowUnionTypes: true,
  });
  addFormats.default(ajv);
  return ajv;
}

const plain = makeAjv(false);
const withDefaults = makeAjv(true);

export interface Validator<T> {
  (value: unknown): value is T;
  /** The problems of the last failed call, located by JSON pointer. */
  problems(value: unknown): ProblemItem[];
}

function wrap<T>(fn: ValidateFunction): Validator<T> {
  const v = ((value: unknown) => fn(value)) as Validator<T>;
  v.problems = (value: unknown) => {
    if (fn(value)) return [];
    return toProblemItems(fn.errors ?? []);
  };
  return v;
}

/** Turn ajv errors into sentences a person can act on, located by JSON pointer. */
export function toProblemItems(errors: ErrorObject[], prefix = ''): ProblemItem[] {
  const items: ProblemItem[] = [];
  for (const e of errors) {
    if (items.length >= MAX_REPORTED_ERRORS) break;
    // `if`/`then` failures repeat the concrete error that caused them.
    if (e.keyword === 'if') continue;
    items.push({ location: `${prefix}${e.instancePath}` || '/', rule: e.keyword, message: describe(e) });
  }
  return items;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || 'the document';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${at} is missing the required property "${p.missingProperty}"`;
    case 'additionalProperties':
      return `${at} has the property "${p.additionalProperty}", which is not allowed here`;
    case 'enum':
      return `${at} must be one of ${JSON.stringify(p.allowedValues)}`;
    case 'const':
      return `${at} must be ${JSON.stringify(p.allowedValue)}`;
    case 'type':
      return `${at} must be of type ${p.type}`;
    case 'format':
      return `${at} must be a valid ${p.format}`;
    case 'pattern':
      return `${at} does not have the expected form (${p.pattern})`;
    case 'not':
      return `${at} has a property combination that is not allowed for this message type`;
    default:
      return `${at} ${e.message ?? 'is not valid'}`;
  }
}

export interface EnvelopeV1 {
  v: 1;
  id: string;
  type: 'case.transfer' | 'case.update' | 'case.withdraw' | 'ping';
  from: string;
  to: string;
  sentAt: string;
  handling: Handling;
  case?: CaseV1;
  refersTo?: string;
}

export interface Handling {
  tlp: 'CLEAR' | 'GREEN' | 'AMBER' | 'AMBER+STRICT' | 'RED';
  code: 'H0' | 'H1' | 'H2' | 'H3';
  purpose: string;
  legalBasis: string;
  restrictions?: string;
}

/** The shared case; the full shape is owned by schemas/icros-case/1.0.json. */
export interface CaseV1 {
  id: string;
  version: number;
  origin: { country: string; agency: string; reference: string };
  [k: string]: unknown;
}

export const validateEnvelope = wrap<EnvelopeV1>(plain.compile(readSchema('envelope/1.0.json')));
export const validateCase = wrap<CaseV1>(plain.compile(readSchema('icros-case/1.0.json')));
/** Fills defaults in place. */
export const validateConfigDoc = wrap<Record<string, unknown>>(
  withDefaults.compile(readSchema('config.schema.json')),
);
