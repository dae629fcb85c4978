/**
 * The form of a schema file that ajv compiles, with the same meaning and cheaper errors on
 * hostile input. Two rewrites:
 *
 * - Local `$ref`s into `$defs` are inlined. ajv compiles a `$ref` that holds further `$ref`s
 *   as a separate function and merges its errors with `vErrors.concat(...)`, one copy of all
 *   errors so far per call: a case with 40,000 bad identifiers took 30 s to report. Inlined,
 *   errors are pushed into one list and the cost is linear.
 * - `items` of an array with `maxItems` is checked only when the array is within its bound
 *   (`if: {maxItems}`, `then: {items}`): an over-long array gets its one `maxItems` error
 *   instead of an error per item, so `allErrors` work is bounded by the schema, not the input.
 * - Likewise a closed object (`additionalProperties: false`) names each unknown key only when
 *   it has at most EXTRA_KEYS_NAMED more keys than it defines; a flood of keys gets one
 *   `maxProperties` error instead of one error per key (1.5 million keys took 2 s).
 *
 * The file stays the contract partners read; this is how this gateway evaluates it.
 */

import { IcrosError } from '../errors.js';

type Node = Record<string, unknown>;

/** `$ref` siblings that do not validate, so merging them into the target changes nothing. */
const ANNOTATIONS = new Set(['description', 'title', '$comment', 'examples']);
const DEFS = '#/$defs/';
/** Unknown keys beyond the defined ones that are still named one by one. */
export const EXTRA_KEYS_NAMED = 50;

export function compiledForm(schema: Node): Node {
  const defs = (schema.$defs ?? {}) as Record<string, unknown>;
  const walk = (value: unknown, stack: readonly string[]): unknown => {
    if (Array.isArray(value)) return value.map((v) => walk(v, stack));
    if (typeof value !== 'object' || value === null) return value;
    const node = value as Node;
    // Every object is taken for a schema, including the maps under `properties`: a property
    // named "$ref" or "$defs" would be misread (the case schema has none).
    if (typeof node.$ref === 'string') return inline(node, stack);
    const out: Node = {};
    for (const [k, v] of Object.entries(node)) {
      if (k !== '$defs') out[k] = walk(v, stack);
    }
    return guardKeys(guardItems(out));
  };
  const inline = (node: Node, stack: readonly string[]): unknown => {
    const ref = node.$ref as string;
    const name = ref.slice(DEFS.length);
    if (!ref.startsWith(DEFS) || !Object.hasOwn(defs, name) || stack.includes(name)) {
      throw new IcrosError(
        'INTERNAL',
        `compiledForm: cannot inline ${ref} (not a local, non-recursive $defs entry)`,
      );
    }
    const target = walk(defs[name], [...stack, name]) as Node;
    const annotations: Node = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref') continue;
      if (!ANNOTATIONS.has(k))
        throw new IcrosError('INTERNAL', `compiledForm: ${ref} has the sibling keyword ${k}`);
      annotations[k] = v;
    }
    return { ...target, ...annotations };
  };
  return walk(schema, []) as Node;
}

function guardItems(node: Node): Node {
  if (typeof node.maxItems !== 'number' || node.items === undefined) return node;
  assertNoConditional(node);
  const { items, ...rest } = node;
  // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword, not a promise
  return { ...rest, if: { maxItems: node.maxItems }, then: { items } };
}

function guardKeys(node: Node): Node {
  if (node.additionalProperties !== false || typeof node.properties !== 'object') return node;
  assertNoConditional(node);
  const names = Object.keys(node.properties as object);
  const limit = names.length + EXTRA_KEYS_NAMED;
  // additionalProperties only sees the properties of its own schema object: list them again,
  // as `true`, so that the check moves into `then` without checking any value twice.
  const known = Object.fromEntries(names.map((n) => [n, true]));
  const { additionalProperties, ...rest } = node;
  return {
    ...rest,
    if: { maxProperties: limit },
    // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword, not a promise
    then: { properties: known, additionalProperties },
    else: { maxProperties: limit },
  };
}

function assertNoConditional(node: Node): void {
  if ('if' in node || 'then' in node || 'else' in node) {
    throw new IcrosError('INTERNAL', 'compiledForm: a guarded schema already uses if/then/else');
  }
}
