/**
 * The JSONata compiler (src/convert/compile.ts), tested differentially against jsonata itself:
 * every shipped mapping compiles; every golden sample, generated report, mutated record, mutated
 * case and random JSON value gives the same result compiled and interpreted (or both throw the
 * same error); the corners of JSONata's semantics the mappings rely on behave as jsonata's; an
 * expression the compiler does not cover falls back to jsonata, visibly; and conversion errors
 * are the same located rejections as with jsonata.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { type CompiledMapping, compileMapping } from '../../src/convert/compile.js';
import { loadFormats, NATIONAL_ROOT, type NationalFormat } from '../../src/convert/format.js';
import { exportCases } from '../../src/convert/from-case.js';
import { parseRecords } from '../../src/convert/parse.js';
import { bindings, convertToCases } from '../../src/convert/to-case.js';

const formats = loadFormats();
const LOCAL = { country: 'FR', agency: 'PHAROS' };
/** `$now()` pinned in both engines (a binding shadows the built-in), so that results compare. */
const NOW = '2026-11-29T12:00:00.000Z';
const RUNS = Number(process.env.FC_RUNS ?? 60);

const bound = (format: NationalFormat) => ({ ...bindings(format, LOCAL), now: () => NOW });

type Failure = { message: string; code?: string; position?: number };
type Outcome = { value: unknown } | { error: Failure };

const failure = (err: unknown): { error: Failure } => {
  const e = err as { message?: string; code?: string; position?: number };
  return { error: { message: String(e?.message ?? err), code: e?.code, position: e?.position } };
};

/** What a mapping gives, compiled and interpreted, each on its own copy of the input (jsonata may flag arrays in place). */
async function both(
  m: CompiledMapping,
  input: unknown,
  b: Record<string, unknown>,
): Promise<[Outcome, Outcome]> {
  let compiled: Outcome;
  try {
    compiled = { value: m.evaluate(structuredClone(input), b) };
  } catch (err) {
    compiled = failure(err);
  }
  let interpreted: Outcome;
  try {
    interpreted = { value: await m.expression.evaluate(structuredClone(input), b) };
  } catch (err) {
    interpreted = failure(err);
  }
  return [compiled, interpreted];
}

/**
 * Same value (deep, and key order as JSON writes it), or both throw. The message is the same
 * too, unless the two errors come from different places of the mapping: when several items of
 * one constructor fail, jsonata (which evaluates them concurrently) may report another than
 * the first. What conversion calls (`run`) gives exactly jsonata's outcome in every case.
 */
async function expectSame(m: CompiledMapping, input: unknown, b: Record<string, unknown>, what: string) {
  const [compiled, interpreted] = await both(m, input, b);
  const context = `${what}\ninput: ${JSON.stringify(input)?.slice(0, 600)}`;
  if ('error' in interpreted || 'error' in compiled) {
    expect(compiled, `${context}\njsonata: ${JSON.stringify(interpreted).slice(0, 600)}`).to.have.property(
      'error',
    );
    const c = (compiled as { error: Failure }).error;
    const i = (interpreted as { error: Failure }).error;
    if (c.message !== i.message) {
      expect(c.position, `${context}\n${JSON.stringify(c)}\n${JSON.stringify(i)}`).to.not.equal(i.position);
    }
    let run: Outcome;
    try {
      run = { value: await m.run(structuredClone(input), b) };
    } catch (err) {
      run = failure(err);
    }
    expect(run, context).to.deep.equal(interpreted);
    return;
  }
  expect(compiled.value, context).to.deep.equal(interpreted.value);
  expect(JSON.stringify(compiled.value), context).to.equal(JSON.stringify(interpreted.value));
}

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const samplesOf = (id: string) => path.join(NATIONAL_ROOT, id, 'samples');

/** Every national record of a format's samples (inputs and exports are both national documents). */
function sampleRecords(id: string): unknown[] {
  const format = formats.get(id)!;
  return readdirSync(samplesOf(id))
    .filter((f) => /\.(input|export)\.[a-z]+$/.test(f))
    .flatMap((f) => parseRecords(format.spec.parser, readFileSync(path.join(samplesOf(id), f))).records);
}

/** Every case of every format's samples and of schemas/icros-case/samples. */
const sampleCases: unknown[] = [
  ...[...formats.keys()].flatMap((id) =>
    readdirSync(samplesOf(id))
      .filter((f) => f.endsWith('.case.json'))
      .flatMap((f) => readJson(path.join(samplesOf(id), f)) as unknown[]),
  ),
  ...readdirSync('schemas/icros-case/samples')
    .filter((f) => f.endsWith('.json'))
    .map((f) => readJson(`schemas/icros-case/samples/${f}`)),
];

// ---- generators (adapted from convert-properties.spec.ts) ------------------------------------

const ELEMENTS = [
  { type: 'url', valeur: 'https://secure-banque-verif.example/login' },
  { type: 'site', valeur: 'https://invest-bitcoin-pro.example' },
  { type: 'domaine', valeur: 'banque-verif.example' },
  { type: 'courriel', valeur: 'conseiller@banque-verif.example' },
  { type: 'telephone', valeur: '+33612345678' },
  { type: 'iban', valeur: 'DE89370400440532013000' },
  { type: 'pseudo', valeur: 'trader_pro_88', plateforme: 'Telegram' },
  { type: 'portefeuille', valeur: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', blockchain: 'bitcoin' },
  { type: 'ip', valeur: '203.0.113.7', dateObservation: '2026-11-02T21:03:00+01:00' },
];

const text = (max: number) =>
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: max })
    .filter((s) => s.trim().length > 0 && !/\p{Cc}/u.test(s));

const pharosReport = fc.record(
  {
    numeroSignalement: fc.stringMatching(/^PHAROS-20[0-9]{2}-[0-9]{6}$/),
    dateSignalement: fc
      .date({
        min: new Date('2000-01-01T00:00:00Z'),
        max: new Date('2099-12-31T00:00:00Z'),
        noInvalidDate: true,
      })
      .map((d) => `${d.toISOString().slice(0, 19)}+01:00`),
    dateFaits: fc.record(
      { debut: fc.constant('2026-10-28'), fin: fc.constant('2026-11-02') },
      { requiredKeys: ['debut'] },
    ),
    categorie: fc.constantFrom('ESCROQUERIE', 'HAMECONNAGE', 'EXTORSION', 'PIRATAGE', 'AUTRE'),
    sousCategorie: fc.stringMatching(/^[A-Z]{2,6}-[A-Z]{2,8}$/),
    libelleInfraction: text(200),
    resume: text(300),
    langue: fc.constantFrom('fr', 'en', 'de', 'fr-BE'),
    victime: fc.oneof(
      fc.record(
        {
          type: fc.constant('personne'),
          nom: text(200),
          anneeNaissance: fc.integer({ min: 1900, max: 2100 }),
          paysResidence: fc.constantFrom('FR', 'BE', 'DE', 'ES'),
        },
        { requiredKeys: ['type'] },
      ),
      fc.record(
        { type: fc.constant('organisation'), raisonSociale: text(200), pays: fc.constantFrom('FR', 'LU') },
        { requiredKeys: ['type'] },
      ),
    ),
    prejudice: fc.record({
      montant: fc.stringMatching(/^[1-9][0-9]{0,8}(\.[0-9]{2})?$/),
      devise: fc.constantFrom('EUR', 'USD', 'CHF'),
    }),
    elementsSignales: fc.uniqueArray(fc.constantFrom(...ELEMENTS), {
      minLength: 1,
      maxLength: ELEMENTS.length,
    }),
    paysConcernes: fc.uniqueArray(fc.constantFrom('BE', 'DE', 'ES', 'IT'), { minLength: 1, maxLength: 4 }),
  },
  { requiredKeys: ['numeroSignalement', 'dateSignalement', 'categorie', 'resume'] },
);

/** Any JSON value, and the values that break mappings: empty, blank, prototype names, long text, numbers as text. */
const junk = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    '__proto__',
    '',
    ' ',
    '0',
    '1',
    '1.5',
    '-1',
    'x'.repeat(3000),
    '\ud800',
    0,
    -1,
    1.5,
    true,
    null,
    [],
    {},
  ),
);

/** Field names the mappings read: mutations insert these, so that they reach the expressions. */
const FIELDS = [
  ...new Set(
    [...formats.values()].flatMap((f) => [f.toCase, f.fromCase].flatMap((e) => (e ? namesIn(e.ast()) : []))),
  ),
].sort();

function namesIn(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) namesIn(n, out);
  else if (node && typeof node === 'object') {
    const n = node as { type?: string; value?: unknown };
    if (n.type === 'name' && typeof n.value === 'string') out.push(n.value);
    for (const [k, v] of Object.entries(node)) if (k !== 'position') namesIn(v, out);
  }
  return out;
}

type Path = (string | number)[];

/** Every place in a JSON value (the root first). */
function places(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) places(x, [...at, i], out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) places(x, [...at, k], out);
  return out;
}

interface Mutation {
  op: 'replace' | 'delete' | 'insert' | 'copy' | 'wrap' | 'unwrap';
  at: number;
  from: number;
  key: string;
  value: unknown;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('replace', 'delete', 'insert', 'copy', 'wrap', 'unwrap'),
  at: fc.nat(),
  from: fc.nat(),
  key: fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })),
  value: junk,
});

/** A copy of `record` with the mutations applied: values replaced, removed, added, moved, put in or taken out of arrays. */
function mutate(record: unknown, mutations: Mutation[]): unknown {
  let root = structuredClone(record);
  for (const m of mutations) {
    const all = places(root);
    const at = all[m.at % all.length]!;
    const get = (p: Path) => p.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], root);
    const current = get(at);
    let next: unknown;
    switch (m.op) {
      case 'replace':
        next = structuredClone(m.value);
        break;
      case 'copy':
        next = structuredClone(get(all[m.from % all.length]!));
        break;
      case 'wrap':
        next = [current];
        break;
      case 'unwrap':
        next = Array.isArray(current) ? current[0] : current;
        break;
      case 'insert':
        if (Array.isArray(current)) current.push(structuredClone(m.value));
        else if (current && typeof current === 'object') {
          (current as Record<string, unknown>)[m.key] = structuredClone(m.value);
        }
        continue;
      case 'delete': {
        if (at.length === 0) continue;
        const parent = get(at.slice(0, -1)) as Record<string | number, unknown>;
        const last = at[at.length - 1]!;
        if (Array.isArray(parent)) parent.splice(last as number, 1);
        else delete parent[last];
        continue;
      }
    }
    if (at.length === 0) root = next;
    else (get(at.slice(0, -1)) as Record<string | number, unknown>)[at[at.length - 1]!] = next;
  }
  return root;
}

// ---------------------------------------------------------------------------------------------

describe('JSONata compiler (compile.ts), differentially against jsonata', function () {
  this.timeout(300_000);

  describe('the shipped mappings', () => {
    it('finds the five format folders (and any added since)', () => {
      expect([...formats.keys()]).to.include.members([
        'de-xml',
        'fr-pharos',
        'fr-pharos-csv',
        'misp',
        'stix-2.1',
      ]);
    });

    it('compiles every shipped mapping, both ways: all ten (no fallback to jsonata)', () => {
      const status = [...formats.values()].flatMap((f) => [
        { mapping: `${f.spec.id}/${f.spec.toCase}`, ...f.toCaseMapping },
        ...(f.fromCaseMapping ? [{ mapping: `${f.spec.id}/${f.spec.fromCase}`, ...f.fromCaseMapping }] : []),
      ]);
      expect(status.length).to.be.at.least(10);
      for (const { mapping, compiled, reason } of status) {
        expect({ mapping, compiled, reason }).to.deep.equal({ mapping, compiled: true, reason: undefined });
      }
    });

    for (const [id, format] of formats) {
      it(`${id}: every sample record maps to the same case, compiled and interpreted`, async () => {
        const records = sampleRecords(id);
        expect(records).to.not.be.empty;
        for (const [i, r] of records.entries())
          await expectSame(format.toCaseMapping, r, bound(format), `record ${i}`);
      });

      const { fromCaseMapping } = format;
      if (fromCaseMapping) {
        it(`${id}: every sample case exports to the same record, compiled and interpreted`, async () => {
          for (const [i, c] of sampleCases.entries())
            await expectSame(fromCaseMapping, c, bound(format), `case ${i}`);
        });
      }
    }
  });

  describe('properties (fast-check)', () => {
    const pharos = formats.get('fr-pharos')!;
    /** The formats that export (all five today). */
    const exporting = [...formats.values()].filter((f) => f.fromCaseMapping);

    it('generated PHAROS reports: to a case, to every format and back, compiled = interpreted', async () => {
      await fc.assert(
        fc.asyncProperty(pharosReport, async (report) => {
          await expectSame(pharos.toCaseMapping, report, bound(pharos), 'fr-pharos to-case');
          const c = pharos.toCaseMapping.evaluate(report, bound(pharos));
          for (const format of exporting) {
            await expectSame(format.fromCaseMapping!, c, bound(format), `${format.spec.id} from-case`);
            const record = format.fromCaseMapping!.evaluate(c, bound(format));
            await expectSame(format.toCaseMapping, record, bound(format), `${format.spec.id} to-case`);
          }
        }),
        { numRuns: RUNS },
      );
    });

    it("mutated records of every format: same result, or both throw (and conversion gives jsonata's error)", async () => {
      const seeds = fc.oneof(
        ...[...formats.keys()].map((id) => fc.tuple(fc.constant(id), fc.constantFrom(...sampleRecords(id)))),
        pharosReport.map((r) => ['fr-pharos', r] as [string, unknown]),
      );
      await fc.assert(
        fc.asyncProperty(
          seeds,
          fc.array(mutation, { minLength: 1, maxLength: 4 }),
          async ([id, record], ms) => {
            const format = formats.get(id)!;
            await expectSame(format.toCaseMapping, mutate(record, ms), bound(format), `${id} to-case`);
          },
        ),
        { numRuns: RUNS * 4 },
      );
    });

    it("mutated cases: every export mapping gives the same record, or both throw (and export gives jsonata's error)", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...sampleCases),
          fc.array(mutation, { minLength: 1, maxLength: 4 }),
          fc.constantFrom(...exporting),
          async (c, ms, format) => {
            await expectSame(
              format.fromCaseMapping!,
              mutate(c, ms),
              bound(format),
              `${format.spec.id} from-case`,
            );
          },
        ),
        { numRuns: RUNS * 4 },
      );
    });

    it('random JSON values: every mapping, both ways, gives the same result or both throw', async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => {
          for (const format of formats.values()) {
            await expectSame(format.toCaseMapping, value, bound(format), `${format.spec.id} to-case`);
            if (format.fromCaseMapping) {
              await expectSame(format.fromCaseMapping, value, bound(format), `${format.spec.id} from-case`);
            }
          }
        }),
        { numRuns: RUNS },
      );
    });

    it('mappings without the converting gateway known (no $local): the same, errors included', async () => {
      for (const id of ['stix-2.1', 'misp']) {
        const format = formats.get(id)!;
        for (const r of sampleRecords(id)) {
          await expectSame(format.toCaseMapping, r, { ...bindings(format), now: () => NOW }, id);
        }
      }
    });
  });

  describe('semantics, each checked against jsonata itself', () => {
    const tables = { kinds: { url: 'url', site: 'website' }, list: ['A', 'B'] };
    const items = {
      items: [
        { type: 'x', v: 1, tags: ['a', 'b'] },
        { type: 'y', v: 2, tags: 'c' },
        { type: 'x', v: 3 },
      ],
      one: { type: 'x', v: 9 },
      nested: [
        [1, 2],
        [3, 4],
      ],
    };

    /** `expr` on `input` gives `expected` (or throws a message matching it), compiled exactly as jsonata. */
    function check(title: string, expr: string, input: unknown, expected: unknown) {
      it(`${title}: ${expr}`, async () => {
        const m = compileMapping(expr);
        expect(m.compiled, m.reason).to.equal(true);
        const b = { tables, caseId: (c: string, r: string) => `${c}:${r}`, now: () => NOW };
        await expectSame(m, input, b, expr);
        const [compiled] = await both(m, input, b);
        if (expected instanceof RegExp) {
          expect(compiled).to.have.property('error');
          expect((compiled as { error: { message: string } }).error.message).to.match(expected);
        } else {
          expect(compiled, JSON.stringify(compiled)).to.have.property('value');
          expect(JSON.stringify((compiled as { value: unknown }).value)).to.equal(JSON.stringify(expected));
        }
      });
    }

    // a path giving one value gives it, not an array of one; over an array it maps and flattens
    check('singleton', 'one.v', items, 9);
    check('singleton from an array of one', 'a.b', { a: [{ b: 1 }] }, 1);
    check('array of one kept with []', 'a.b[]', { a: [{ b: 1 }] }, [1]);
    check('array constructor of a singleton', '[one.v]', items, [9]);
    check('map over an array', 'items.v', items, [1, 2, 3]);
    check('flattening of arrays met on the way', 'items.tags', items, ['a', 'b', 'c']);
    check('a last-step array as it is', 'a.b', { a: { b: [[1, 2], [3]] } }, [[1, 2], [3]]);
    check('nested arrays flattened one level per step', 'a.b', { a: [{ b: [1, 2] }, { b: [3] }] }, [1, 2, 3]);
    check('nested [ ] kept, path results spread', '[[1, 2], items.v, [one.v], nested]', items, [
      [1, 2],
      1,
      2,
      3,
      [9],
      [1, 2],
      [3, 4],
    ]);
    check('array constructor as a step', 'items.[v]', items, [[1], [2], [3]]);
    check('object per item', 'items.{ "t": type }', items, [{ t: 'x' }, { t: 'y' }, { t: 'x' }]);
    check(
      'undefined value drops its key',
      '{ "a": missing, "b": 1, "c": false ? 2, "d": null }',
      {},
      { b: 1, d: null },
    );
    check(
      'integer-like keys first, as jsonata orders them',
      '{ "b": 1, "2": 2, "a": 3, "1": 4 }',
      {},
      {
        1: 4,
        2: 2,
        b: 1,
        a: 3,
      },
    );
    check('[0] after a filter', 'items[type = "x"][0].v', items, 1);
    check('[n] on a single value', 'one[0].v', items, 9);
    check('negative index', 'items[-1].v', items, 3);
    check('filter then index in parentheses', '(items[type = "x"])[1].v', items, 3);
    check('numeric predicate from an expression', 'items[$count($$.items) - 1].v', items, 3);
    check('range predicate', 'items[[0..1]].v', items, [1, 2]);
    check('#$i positions', 'items#$i.{ "i": $i, "v": v }', items, [
      { i: 0, v: 1 },
      { i: 1, v: 2 },
      { i: 2, v: 3 },
    ]);
    check('#$i then a filter', 'items#$i[v > 1].$i', items, [1, 2]);
    check('a filter then #$i', 'items[v > 1]#$i.($i & ":" & v)', items, ['0:2', '1:3']);
    check('@$v focus binding', 'items@$it.one.($it.v + v)', items, [10, 11, 12]);
    check('in with a singleton', '"a" in "a"', {}, true);
    check('in with an array', '"B" in $tables.list', {}, true);
    check('in with a number and a string', '1 in "1"', {}, false);
    check('in with a missing side', 'missing in ["a"]', {}, false);
    check('$lookup of a missing key', '$lookup($tables.kinds, "nope")', {}, undefined);
    check('$exists of a missing lookup', '$exists($lookup($tables.kinds, "nope"))', {}, false);
    check('$lookup over an array', '$lookup(items, "v")', items, [1, 2, 3]);
    check('& with undefined', '"a" & missing & "b"', {}, 'ab');
    check('& of two undefined', 'missing & missing', {}, '');
    check('& of numbers', '1 & 2.5 & (0.1 + 0.2)', {}, '12.50.3');
    check('& of an object', '"" & one', items, '{"type":"x","v":9}');
    check('= of a number and a string', '1 = "1"', {}, false);
    check('= of strings', '"1" = "1"', {}, true);
    check('= of arrays, deep', '[1, [2]] = [1, [2]]', {}, true);
    check('= with a missing side', 'missing = missing', {}, false);
    check('!= with a missing side', 'missing != 1', {}, false);
    check('< with a missing side', 'missing < 1', {}, undefined);
    check('< of a number and a string', '1 < "a"', {}, /must be of the same data type/);
    check('and / or of non-booleans', '["a" and 0, [] or {}, "" or one]', items, [false, false, true]);
    check('arithmetic', '[7 % 3, 2 * 3 - 1, 10 / 4, -one.v]', items, [1, 5, 2.5, -9]);
    check(
      'arithmetic on a string',
      '1 + "1"',
      {},
      /The right side of the "\+" operator must evaluate to a number/,
    );
    check('out of range', '1 / 0 + 1', {}, /Number out of range/);
    check('negating a string', '-one.type', items, /Cannot negate a non-numeric value/);
    check('wildcard', 'one.*', items, ['x', 9]);
    check('root and context', 'items.($$.one.v + v)', items, [10, 11, 12]);
    check('top-level array input', '$.a', [{ a: 1 }, { a: 2 }], [1, 2]);
    check('top-level array input, index', '$[1]', [1, 2, 3], 2);
    check('top-level array input, name', 'a', [{ a: 1 }], 1);
    check('group-by', 'items{ type: $sum(v) }', items, { x: 4, y: 2 });
    check('group-by with positions', 'items#$i{ type: $i }', items, { x: [0, 2], y: 1 });
    check('group-by on a variable', '($x := items; $x{ type: $count(v) })', items, { x: 2, y: 1 });
    check(
      'conflicting group keys',
      '{ "a": 1, "a": 2 }',
      {},
      /Multiple key definitions evaluate to same key/,
    );
    check('non-string key', '{ one.v: 1 }', items, /Key in object structure must evaluate to a string/);
    check('block scope', '($x := 1; ($x := 2); $x)', {}, 1);
    check('closures', '($add := function($a) { function($b) { $a + $b } }; $add(2)(3))', {}, 5);
    check('recursion', '($f := function($n) { $n <= 1 ? 1 : $n * $f($n - 1) }; $f(5))', {}, 120);
    check(
      'tail calls do not grow the stack',
      '($l := function($n, $a) { $n = 0 ? $a : $l($n - 1, $a + 1) }; $l(20000, 0))',
      {},
      20000,
    );
    // a tail call's sequence reaches $map uncollapsed (jsonata's trampoline skips that step), and
    // the block around collapses the sequence of one that $map's own result then holds
    check(
      'tail call result',
      '($f := function() { $map([1], function($x) { $x }) }; $map([0], function() { $f() }))',
      {},
      1,
    );
    check('~> and $each', '{ "a": 1, "b": 2 } ~> $each(function($v, $k) { $k & $v })', {}, ['a1', 'b2']);
    check('function chaining', '($f := $uppercase ~> $trim; $f(" ab "))', {}, 'AB');
    check('$map with index', '$map(items, function($x, $i) { $i & $x.type })', items, ['0x', '1y', '2x']);
    check('$filter', '$filter(items, function($x) { $x.v > 1 }).v', items, [2, 3]);
    check('$reduce', '$reduce([1, 2, 3], function($a, $b) { $a * 10 + $b }, 0)', {}, 123);
    check('$sort with a comparator', '$sort(items, function($a, $b) { $a.v < $b.v }).v', items, [3, 2, 1]);
    check('$sort of strings', '$sort(["b", "c", "a"])', {}, ['a', 'b', 'c']);
    check('$sort of mixed values', '$sort([1, "a"])', {}, /single argument form of the sort function/);
    check('$sift', '$sift({ "a": 1, "b": 2 }, function($v, $k) { $k != "a" })', {}, { b: 2 });
    check('$merge and $append', '$merge([{ "a": 1 }, { "b": 2 }, { "a": 3 }]) ~> $append(["x"])', {}, [
      { a: 3, b: 2 },
      'x',
    ]);
    check('$distinct', '$distinct([1, 2, 1, [1], [1]])', {}, [1, 2, [1]]);
    check('$split with a regex', '$split("a1b22c", /[0-9]+/)', {}, ['a', 'b', 'c']);
    check(
      '$replace with groups',
      '$replace("2026-11-03", /(\\d+)-(\\d+)-(\\d+)/, "$3/$2/$1")',
      {},
      '03/11/2026',
    );
    check('$match groups', '$match("ab (cd)", /^(.*\\S)\\s*\\(([^()]*)\\)$/).groups', {}, ['ab', 'cd']);
    check('$contains with a regex', '$contains("abc", /B/i)', {}, true);
    check(
      'a zero-length regex match',
      '$match("abc", /x*/)',
      {},
      /Regular expression matches zero length string/,
    );
    check('$substring with negatives', '[$substring("abcdef", -2), $substring("abcdef", 1, 2)]', {}, [
      'ef',
      'bc',
    ]);
    check('$string of a fraction', '$string(1/3)', {}, '0.333333333333333');
    check('$number', '[$number("1e3"), $number("0x10"), $number(true)]', {}, [1000, 16, 1]);
    check('$number of text', '$number("abc")', {}, /Unable to cast value to a number/);
    check('a built-in with the context as argument', 'one.type.$uppercase()', items, 'X');
    check('context of the wrong type', 'one.$uppercase()', items, /Context value is not a compatible type/);
    check('a wrong argument type', '$substring(123, 1, 2)', {}, /Argument 3 of function "substring"/);
    check(
      'a missing first argument taken from the context',
      '$substring(123, 1)',
      {},
      /Context value is not a compatible type/,
    );
    check('an array of the wrong type', '$join([1, 2])', {}, /must be an array of "strings"/);
    check('a single value for an array', '[$join("a"), $count(5), $sum(2)]', {}, ['a', 1, 2]);
    check('$error', '$error("boom")', {}, /^boom$/);
    check('$error without a message', '$error()', {}, /^\$error\(\) function evaluated$/);
    check('a missing $', 'caseId("FR", "x")', {}, /Did you mean \$caseId/);
    check('calling a non-function', '$tables()', {}, /Attempted to invoke a non-function/);
    check('a binding', '$caseId("FR", one.type)', items, 'FR:x');
    check('$now from the binding', '$now()', {}, NOW);
    check(
      '$fromMillis / $toMillis',
      '$fromMillis($toMillis("2026-11-03T20:14:00+01:00"), "[Y0001]-[M01]-[D01]T[H01]:[m01]Z")',
      {},
      '2026-11-03T19:14Z',
    );
    check('$type and $keys', '[$type(null), $type(one), $keys(one)]', items, ['null', 'object', 'type', 'v']);
  });

  describe('the instant of an evaluation', () => {
    it('$now() and $millis() give one instant per evaluation, as jsonata does', () => {
      const m = compileMapping('[$now(), $now(), $millis(), $millis(), $now("[Y0001]")]');
      expect(m.compiled).to.equal(true);
      const before = Date.now();
      const [a, b, x, y, year] = m.evaluate({}) as [string, string, number, number, string];
      expect(a)
        .to.equal(b)
        .and.match(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(x).to.equal(y).and.equal(Date.parse(a)).and.be.within(before, Date.now());
      expect(year).to.equal(a.slice(0, 4));
    });
  });

  describe('the engine', () => {
    it("converts and exports with the compiled mappings, not jsonata's evaluator", async () => {
      const fresh = loadFormats();
      for (const format of fresh.values()) {
        const refuse = () => {
          throw new Error('jsonata evaluate called');
        };
        format.toCase.evaluate = refuse as never;
        format.fromCase!.evaluate = refuse as never;
      }
      const format = fresh.get('fr-pharos')!;
      const bytes = readFileSync(path.join(samplesOf('fr-pharos'), 'export.input.json'));
      const { cases, rejected } = await convertToCases(format, bytes);
      expect(rejected).to.deep.equal([]);
      expect(cases.map((c) => c.case)).to.deep.equal(
        readJson(path.join(samplesOf('fr-pharos'), 'export.case.json')),
      );
      const { body } = await exportCases(fresh.get('misp')!, [cases[0]!.case]);
      expect(JSON.parse(body.toString('utf8'))).to.have.property('Event');
    });
  });

  describe('fallback to jsonata', () => {
    for (const [expr, input] of [
      ['**.v', { a: { v: 1 } }],
      ['items.%.one', { items: [1], one: 2 }],
      ['items^(v)', { items: [{ v: 2 }, { v: 1 }] }],
      ['$ ~> |a|{"b": 1}|', { a: {} }],
      ['$substring(?, 0, 1)("ab")', {}],
      ['$eval("1 + 1")', {}],
      ['[$x := 1, $x]', {}],
    ] as const) {
      it(`leaves ${expr} to jsonata, and says why`, async () => {
        const m = compileMapping(expr);
        expect(m.compiled).to.equal(false);
        expect(m.reason)
          .to.be.a('string')
          .and.match(/^not compiled: /);
        const result = m.evaluate(input, {});
        expect(result).to.be.instanceOf(Promise);
        expect(await result).to.deep.equal(await m.expression.evaluate(input, {}));
      });
    }

    it('throws jsonata syntax errors, with their position', () => {
      expect(() => compileMapping('{ "a": }'))
        .to.throw()
        .with.property('position');
    });
  });

  describe('errors in conversion: the same located rejections as with jsonata', () => {
    it('an impossible local date in a spreadsheet row', async () => {
      const format = formats.get('fr-pharos-csv')!;
      const csv = Buffer.from(
        'numero_signalement;date_signalement;categorie;resume\r\nPHAROS-1;31/02/2026 10:00;AUTRE;x\r\n',
      );
      const { rejected } = await convertToCases(format, csv);
      const record = parseRecords(format.spec.parser, csv).records[0];
      const expected = await format.toCase.evaluate(record, bindings(format)).then(
        () => expect.fail('jsonata should fail'),
        (err: Error) => err.message,
      );
      expect(rejected).to.deep.equal([
        {
          index: 0,
          location: 'row 2',
          errors: [
            { location: 'row 2', rule: 'mapping', message: `the fr-pharos-csv mapping failed: ${expected}` },
          ],
        },
      ]);
      expect(expected).to.equal('2026-02-31 10:00 is not a real date and time');
    });

    it('several failing parts of one mapping: the error jsonata reports, not only the first', async () => {
      // birthYear ($number of a list) and loss ($replace of an object) both fail; jsonata, which
      // evaluates an object constructor's values concurrently, reports the second.
      const format = formats.get('fr-pharos-csv')!;
      const record = {
        numero_signalement: 'PHAROS-1',
        date_signalement: '03/11/2026 20:14',
        categorie: 'AUTRE',
        resume: 'x',
        victime_type: 'personne',
        victime_annee_naissance: ['1956'],
        prejudice_montant: {},
      };
      const [compiled, interpreted] = await both(format.toCaseMapping, record, bindings(format));
      expect(compiled)
        .to.have.nested.property('error.message')
        .that.matches(/function "number"/);
      expect(interpreted)
        .to.have.nested.property('error.message')
        .that.matches(/function "replace"/);
      const run = await Promise.resolve(format.toCaseMapping.run(record, bindings(format))).then(
        () => expect.fail('should fail'),
        (err: Error) => err.message,
      );
      expect(run).to.equal((interpreted as { error: Failure }).error.message);
    });

    it('$error in a mapping (a STIX bundle with no origin to take)', async () => {
      const format = formats.get('stix-2.1')!;
      const bundle = {
        type: 'bundle',
        id: 'bundle--6f1d1c1e-8a7b-4c3d-9e2f-1a2b3c4d5e6f',
        objects: [
          {
            type: 'url',
            spec_version: '2.1',
            id: 'url--0c5e8ab4-7b4b-4a5e-9f57-2d1c0f6a3b21',
            value: 'https://x.example/',
          },
        ],
      };
      const { rejected } = await convertToCases(format, Buffer.from(JSON.stringify(bundle)));
      const expected = await format.toCase.evaluate(bundle, bindings(format)).then(
        () => expect.fail('jsonata should fail'),
        (err: Error) => err.message,
      );
      expect(rejected).to.have.length(1);
      expect(rejected[0]!.errors).to.deep.equal([
        { location: '/', rule: 'mapping', message: `the stix-2.1 mapping failed: ${expected}` },
      ]);
      expect(expected).to.match(/names no creator identity or location/);
    });
  });
});
