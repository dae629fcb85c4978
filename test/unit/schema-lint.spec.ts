import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import { compiledForm } from '../../src/schema/compiled-form.js';
import { readSchema, validateCase } from '../../src/schema/validators.js';
import { registerVocabulary } from '../../src/schema/vocab.js';

type Node = Record<string, unknown>;

const schema = readSchema('icros-case/1.0.json');

/** Every subschema of the file with its JSON pointer. */
function subschemas(node: unknown, at = ''): [string, Node][] {
  if (typeof node !== 'object' || node === null) return [];
  if (Array.isArray(node)) return node.flatMap((n, i) => subschemas(n, `${at}/${i}`));
  const out: [string, Node][] = [[at || '/', node as Node]];
  for (const [k, v] of Object.entries(node)) {
    if (k === 'enum' || k === 'const' || k === 'examples' || k === 'required') continue;
    if (k === 'properties' || k === '$defs') {
      for (const [name, sub] of Object.entries(v as Node)) out.push(...subschemas(sub, `${at}/${k}/${name}`));
    } else if (typeof v === 'object') out.push(...subschemas(v, `${at}/${k}`));
  }
  return out;
}

function resolve(node: Node): Node {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  return (schema.$defs as Record<string, Node>)[ref.replace('#/$defs/', '')] as Node;
}

describe('case schema file: rules every part follows', () => {
  const all = subschemas(schema);

  it('is JSON Schema 2020-12 with the versioned $id', () => {
    expect(schema.$schema).to.equal('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).to.equal('urn:icros:schema:icros-case:1.0');
  });

  it('closes every object: additionalProperties false, or a kind-discriminated oneOf of closed objects', () => {
    const objects = all.filter(([, s]) => s.type === 'object');
    expect(objects.length).to.be.above(20);
    for (const [at, s] of objects) {
      if (s.discriminator) {
        for (const branch of s.oneOf as Node[])
          expect(resolve(branch).additionalProperties, at).to.equal(false);
      } else {
        expect(s.additionalProperties, at).to.equal(false);
      }
    }
  });

  it('bounds every string with maxLength and every array with maxItems', () => {
    for (const [at, s] of all) {
      if (s.type === 'string' || s.pattern !== undefined || s.format !== undefined) {
        expect(s.maxLength, at).to.be.a('number');
      }
      if (s.type === 'array') expect(s.maxItems, at).to.be.a('number');
    }
  });

  it('describes every property, directly or through the $defs entry it refers to', () => {
    for (const [at, s] of all) {
      for (const [name, prop] of Object.entries((s.properties ?? {}) as Record<string, Node>)) {
        const description = prop.description ?? resolve(prop).description;
        expect(description, `${at}/properties/${name}`).to.be.a('string').and.not.equal('');
      }
    }
  });

  it('covers what issue #3 lists', () => {
    expect(Object.keys(schema.properties as Node)).to.include.members([
      'id',
      'version',
      'origin',
      'createdAt',
      'reportedAt',
      'classification',
      'summary',
      'offencePeriod',
      'parties',
      'identifiers',
      'concernedCountries',
      'loss',
      'evidence',
      'links',
      'handling',
      'retainUntil',
      'provenance',
    ]);
    const defs = schema.$defs as Record<string, { properties: Record<string, Node> }>;
    const kinds = defs.identifier?.properties.kind?.enum;
    expect(kinds).to.have.members([
      'url',
      'domain',
      'email',
      'phone',
      'iban',
      'bic',
      'crypto',
      'ip',
      'username',
      'website',
    ]);
  });
});

describe('case schema: the compiled form means what the file says', () => {
  // The file compiled as it is, by an ajv set up like the gateway's: the rewrite in
  // compiled-form.ts must not change any verdict.
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, discriminator: true });
  addFormats.default(ajv);
  registerVocabulary(ajv);
  const asWritten = ajv.compile(schema);
  const samplesDir = new URL('../../schemas/icros-case/samples/', import.meta.url);
  const base = (f = 'phishing-bank.json'): Node => JSON.parse(readFileSync(new URL(f, samplesDir), 'utf8'));

  const variants: [string, Node][] = [
    ...readdirSync(samplesDir).map((f): [string, Node] => [f, base(f)]),
    ['unknown top-level key', { ...base(), x: 1 }],
    [
      'unknown key in a party',
      { ...base(), parties: [{ kind: 'person', ref: 'p', role: 'victim', age: 3 }] },
    ],
    ['unknown kind', { ...base(), identifiers: [{ kind: 'fax', value: '1' }], links: [] }],
    ['ip without time', { ...base(), identifiers: [{ kind: 'ip', value: '192.0.2.1' }], links: [] }],
    [
      'too many identifiers',
      { ...base(), identifiers: Array(1001).fill({ kind: 'url', value: 'https://a.example' }) },
    ],
    [
      '1000 identifiers',
      { ...base(), identifiers: Array(1000).fill({ kind: 'url', value: 'https://a.example' }) },
    ],
    [
      'many unknown keys',
      { ...base(), ...Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, i])) },
    ],
    ['bad money', { ...base(), loss: { amount: '01.5', currency: 'EUR' } }],
    [
      'organisation',
      { ...base(), parties: [{ kind: 'organisation', ref: 'o', role: 'suspect', country: 'GB' }] },
    ],
  ];

  for (const [name, c] of variants) {
    it(`agrees on: ${name}`, () => {
      // validateCase adds the ref rules; compare the schema verdicts only.
      const gateway = validateCase
        .problems(c)
        .filter((p) => !['knownRef', 'uniqueRef', 'periodOrder'].includes(p.rule));
      expect(gateway.length === 0, JSON.stringify(gateway)).to.equal(asWritten(c));
    });
  }

  it('refuses to inline a $ref with a validating sibling, or a recursive one', () => {
    expect(() =>
      compiledForm({
        $defs: { a: { type: 'string' } },
        properties: { x: { $ref: '#/$defs/a', maxLength: 2 } },
      }),
    ).to.throw(/sibling keyword maxLength/);
    expect(() =>
      compiledForm({ $defs: { a: { items: { $ref: '#/$defs/a' } } }, $ref: '#/$defs/a' }),
    ).to.throw(/recursive/);
  });
});
