/**
 * JSON Schema validators, compiled once from `schemas/`. Each returns located problems in
 * one shape (JSON pointer, rule, sentence) so every caller reports errors the same way.
 */
import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ProblemItem } from '../errors.js';
import type { IcrosCase } from './case.js';
import { caseRuleProblems } from './case-refs.js';
import { compiledForm } from './compiled-form.js';
import { canExplain, explainFormat, registerVocabulary } from './vocab.js';

/** Hostile input must not make the error list unbounded. */
export const MAX_REPORTED_ERRORS = 50;

const schemasRoot = new URL('../../schemas/', import.meta.url);

export function readSchema(relPath: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(relPath, schemasRoot), 'utf8'));
}

function makeAjv(useDefaults: boolean): Ajv2020 {
  // `$data` stays off (GOTCHAS); allErrors is bounded by the schemas' maxLength/maxItems (for
  // the case, also by the guards of ./compiled-form.ts) and by MAX_REPORTED_ERRORS when
  // reporting. `verbose` keeps the failing value on each error so
  // a message can say why (e.g. which IBAN check failed); `discriminator` picks the oneOf
  // branch by `kind`, so a bad identifier reports its own kind's errors, not ten branches'.
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: false,
    useDefaults,
    allowUnionTypes: true,
    verbose: true,
    discriminator: true,
  });
  addFormats.default(ajv);
  registerVocabulary(ajv);
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

/**
 * Turn ajv errors into located sentences, at most MAX_REPORTED_ERRORS of them. The message
 * never repeats the location (callers prefix locations, e.g. `/case` or `/3`, and show both).
 */
export function toProblemItems(errors: ErrorObject[], prefix = ''): ProblemItem[] {
  const items: ProblemItem[] = [];
  // One error per cause. A value that is too long and fails a vocabulary format gets the
  // format's reason (which says what the value should look like), any other too-long value
  // its maxLength error alone (not also its pattern or format error). A discriminator error repeats the `required` / `enum` error on
  // `kind` that the schema states beside it.
  const tooLong = new Set<string>();
  const explained = new Set<string>();
  const explainedFormat = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'maxLength') tooLong.add(e.instancePath);
    else if (e.keyword === 'required' || e.keyword === 'enum') explained.add(e.instancePath);
    else if (e.keyword === 'format' && canExplain(String(e.params.format), e.data)) {
      explainedFormat.add(e.instancePath);
    }
  }
  for (const e of errors) {
    if (items.length >= MAX_REPORTED_ERRORS) break;
    // `if`/`then` failures repeat the concrete error that caused them.
    if (e.keyword === 'if') continue;
    if (e.keyword === 'maxLength' && explainedFormat.has(e.instancePath)) continue;
    if (e.keyword === 'format' && tooLong.has(e.instancePath) && !explainedFormat.has(e.instancePath))
      continue;
    if (e.keyword === 'pattern' && tooLong.has(e.instancePath)) continue;
    if (e.keyword === 'discriminator' && isExplainedTag(e, explained)) continue;
    items.push({ location: `${prefix}${e.instancePath}` || '/', rule: e.keyword, message: describe(e) });
  }
  return items;
}

function isExplainedTag(e: ErrorObject, explained: Set<string>): boolean {
  const tag = String((e.params as { tag?: unknown }).tag);
  return explained.has(e.instancePath) || explained.has(`${e.instancePath}/${escapePointer(tag)}`);
}

function escapePointer(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** A name or value from the input, quoted and cut short: input may be hostile or personal. */
function quote(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}…"` : s;
}

const COMPARISONS: Readonly<Record<string, string>> = {
  '>=': 'at least',
  '<=': 'at most',
  '>': 'greater than',
  '<': 'less than',
};

/** The sentence for one error, without its location. */
function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      // XML read as JSON: `@Name` is an attribute, `#text` an element's text.
      const name = String(p.missingProperty);
      if (name === '#text') return 'has no text; a value is required';
      if (name.startsWith('@')) return `is missing the attribute ${quote(name.slice(1))}`;
      return `is missing the required property ${quote(name)}`;
    }
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      if (name.startsWith('@')) return `has the attribute ${quote(name.slice(1))}, which is not allowed here`;
      return `has the property ${quote(name)}, which is not allowed here`;
    }
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'type':
      return `must be of type ${p.type}`;
    case 'format':
      return explainFormat(String(p.format), e.data);
    case 'pattern': {
      // The schema's description says in words what the pattern says in regex.
      const what = (e.parentSchema as { description?: unknown } | undefined)?.description;
      return typeof what === 'string'
        ? `does not have the expected form (${what}; pattern ${p.pattern})`
        : `does not have the expected form (${p.pattern})`;
    }
    case 'maxLength':
      return `must be at most ${p.limit} characters long`;
    case 'minLength':
      return p.limit === 1 ? 'must not be empty' : `must be at least ${p.limit} characters long`;
    case 'maxItems':
      return `must have at most ${p.limit} items`;
    case 'minItems':
      return `must have at least ${p.limit} items`;
    case 'uniqueItems':
      return `lists the same value twice (items ${p.j} and ${p.i})`;
    case 'maxProperties':
      return `has more than ${p.limit} properties; only the properties the schema defines are allowed here`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${COMPARISONS[String(p.comparison)] ?? p.comparison} ${p.limit}`;
    case 'discriminator':
      return p.error === 'tag'
        ? `must have a string ${quote(p.tag)} saying what it is`
        : `has ${quote(p.tag)} ${quote(p.tagValue)}, which is not a known kind`;
    case 'not':
      return 'has a property combination that is not allowed for this message type';
    default:
      return e.message ?? 'is not valid';
  }
}

function wrapCase(fn: ValidateFunction): Validator<CaseV1> {
  const rules = (value: unknown) => caseRuleProblems(value as IcrosCase, MAX_REPORTED_ERRORS);
  const v = ((value: unknown) => fn(value) && rules(value).length === 0) as Validator<CaseV1>;
  v.problems = (value: unknown) => (fn(value) ? rules(value) : toProblemItems(fn.errors ?? []));
  return v;
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

/**
 * The shared case as the exchange core needs it. The full shape is owned by
 * schemas/icros-case/1.0.json and typed as `IcrosCase` (./case.ts).
 */
export interface CaseV1 {
  id: string;
  version: number;
  origin: { country: string; agency: string; reference: string };
  [k: string]: unknown;
}

export const validateEnvelope = wrap<EnvelopeV1>(plain.compile(readSchema('envelope/1.0.json')));
/** The case schema, then the rules it cannot state (unique refs, links resolve, period order). */
export const validateCase = wrapCase(plain.compile(compiledForm(readSchema('icros-case/1.0.json'))));
/** Fills defaults in place. */
export const validateConfigDoc = wrap<Record<string, unknown>>(
  withDefaults.compile(readSchema('config.schema.json')),
);
