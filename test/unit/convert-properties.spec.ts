/**
 * Property-based tests (fast-check) over generated reports: conversion never crashes; it gives
 * either valid cases or rejections whose every error has a location, a rule and a sentence;
 * valid national reports survive national → case → national; any cell text survives a
 * spreadsheet round trip without ever being written as a formula.
 */
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { loadFormat, NATIONAL_ROOT, type NationalFormat } from '../../src/convert/format.js';
import { convertFromCase, exportCases } from '../../src/convert/from-case.js';
import { isFormulaLike } from '../../src/convert/parse.js';
import { type Conversion, convertToCases } from '../../src/convert/to-case.js';
import { isIcrosError } from '../../src/errors.js';
import { validateCase } from '../../src/schema/validators.js';

const load = (id: string) => loadFormat(path.join(NATIONAL_ROOT, id));
const formats = { json: load('fr-pharos'), csv: load('fr-pharos-csv'), xml: load('de-xml') };
const RUNS = Number(process.env.FC_RUNS ?? 150);

const ELEMENTS = [
  { type: 'url', valeur: 'https://secure-banque-verif.example/login' },
  { type: 'site', valeur: 'https://invest-bitcoin-pro.example' },
  { type: 'domaine', valeur: 'banque-verif.example' },
  { type: 'courriel', valeur: 'conseiller@banque-verif.example' },
  { type: 'telephone', valeur: '+33612345678' },
  { type: 'iban', valeur: 'DE89370400440532013000' },
  { type: 'pseudo', valeur: 'trader_pro_88', plateforme: 'Telegram' },
  { type: 'portefeuille', valeur: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', blockchain: 'bitcoin' },
];

/** Text a person could type: any Unicode except control characters, not blank. */
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
    categorie: fc.constantFrom('ESCROQUERIE', 'HAMECONNAGE', 'EXTORSION', 'PIRATAGE', 'AUTRE'),
    sousCategorie: fc.stringMatching(/^[A-Z]{2,6}-[A-Z]{2,8}$/),
    libelleInfraction: text(200),
    resume: text(2000),
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

/** Any JSON value, prototype names included, to break a report with. */
const junk = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('__proto__', '', ' ', '=HYPERLINK("x")', '\u0000', '\ud800', 'x'.repeat(30_000)),
);

/** The promise of conversion: cases that pass the case schema, or errors that say where and why. */
function expectWellFormed(r: Conversion): void {
  for (const c of r.cases)
    expect(validateCase(c.case), JSON.stringify(validateCase.problems(c.case))).to.equal(true);
  for (const rejected of r.rejected) {
    expect(rejected.errors).to.not.be.empty;
    for (const e of rejected.errors) {
      expect(e.location, JSON.stringify(e)).to.be.a('string').and.not.equal('');
      expect(e.rule).to.be.a('string').and.not.equal('');
      expect(e.message).to.be.a('string').and.not.equal('');
    }
  }
}

async function convertOrExplain(format: NationalFormat, bytes: Uint8Array): Promise<void> {
  try {
    expectWellFormed(await convertToCases(format, bytes));
  } catch (err) {
    // A whole-file error is fine if it is ours, with a code; anything else is a crash.
    expect(isIcrosError(err), String((err as Error)?.stack ?? err)).to.equal(true);
  }
}

describe('conversion properties (fast-check)', function () {
  this.timeout(120_000);

  it('a valid PHAROS report converts, and national → case → national gives it back', async () => {
    await fc.assert(
      fc.asyncProperty(pharosReport, async (report) => {
        const r = await convertToCases(formats.json, Buffer.from(JSON.stringify(report)));
        expect(r.rejected, JSON.stringify(r.rejected)).to.deep.equal([]);
        expectWellFormed(r);
        // An export always states the language; a report without one was in French (the default).
        expect(await convertFromCase(formats.json, r.cases[0]!.case)).to.deep.equal({
          langue: 'fr',
          ...report,
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('a PHAROS report with any member replaced, added or removed never crashes the conversion', async () => {
    const mutated = fc
      .tuple(pharosReport, fc.string({ maxLength: 20 }), junk, fc.boolean())
      .map(([report, key, value, remove]) => {
        const r: Record<string, unknown> = { ...report };
        const keys = Object.keys(r);
        const target = keys.includes(key) || key === '' ? keys[key.length % keys.length]! : key;
        if (remove) delete r[target];
        else r[target] = value;
        return r;
      });
    await fc.assert(
      fc.asyncProperty(fc.array(mutated, { minLength: 1, maxLength: 5 }), async (reports) => {
        await convertOrExplain(formats.json, Buffer.from(JSON.stringify({ signalements: reports })));
      }),
      { numRuns: RUNS },
    );
  });

  it('any bytes given as JSON, CSV or XML give cases, located rejections or a coded error', async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 2000 }),
      fc.string({ unit: 'binary', maxLength: 2000 }).map((s) => Buffer.from(s)),
      // Near misses: a real header or root, then noise.
      fc.string({ maxLength: 500 }).map((s) => Buffer.from(`numero_signalement;resume;categorie\r\n${s}`)),
      fc.string({ maxLength: 500 }).map((s) => Buffer.from(`<Meldungen><Meldung>${s}</Meldung></Meldungen>`)),
      fc.string({ maxLength: 500 }).map((s) => Buffer.from(`{"signalements":[${s}]}`)),
    );
    await fc.assert(
      fc.asyncProperty(bytes, fc.constantFrom('json', 'csv', 'xml'), async (b, kind) => {
        await convertOrExplain(formats[kind as keyof typeof formats], b);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('any cell text survives a spreadsheet round trip and is never exported as a formula', async () => {
    const cell = fc.oneof(
      text(300),
      fc.constantFrom(
        '=1+1',
        '@SUM(A1)',
        '+cmd|/C calc!A0',
        '-2+3',
        "'=x",
        '"quoted";semi',
        'a\nb',
        '+33612345678',
      ),
    );
    const [sample] = (
      await convertToCases(
        formats.csv,
        Buffer.from(
          `numero_signalement;date_signalement;categorie;resume\r\nPHAROS-1;01/02/2026 10:00;AUTRE;x\r\n`,
        ),
      )
    ).cases;
    await fc.assert(
      // A label is one line (the case schema says so); a summary may have several.
      fc.asyncProperty(
        cell,
        cell.filter((s) => !s.includes('\n')),
        async (resume, label) => {
          const c = structuredClone(sample!.case) as unknown as Record<string, unknown> & {
            summary: { text: string; lang: string };
            classification: Record<string, unknown>;
          };
          c.summary.text = resume;
          c.classification.nationalLabel = label;
          const { body } = await exportCases(formats.csv, [c as never]);
          for (const line of body
            .toString('utf8')
            .replace(/^\uFEFF/, '')
            .split('\r\n')) {
            for (const raw of line.split(';'))
              expect(isFormulaLike(raw.replace(/^"/, '')), raw).to.equal(false);
          }
          const back = await convertToCases(formats.csv, body);
          expect(back.rejected).to.deep.equal([]);
          const got = back.cases[0]!.case as unknown as typeof c;
          // The parser trims cells: surrounding spaces are the only thing a spreadsheet loses.
          expect(got.summary.text).to.equal(resume.trim());
          expect(got.classification.nationalLabel).to.equal(label.trim());
        },
      ),
      { numRuns: RUNS },
    );
  });
});
