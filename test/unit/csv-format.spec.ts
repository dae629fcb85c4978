/**
 * fr-pharos-csv: what a French spreadsheet export brings — `;`, decimal comma, dd/mm/yyyy in
 * Paris time, Windows-1252, lists in one cell, formulas, ragged rows, mixed line endings — and
 * errors located by row and column.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import iconv from 'iconv-lite';
import { loadFormat, NATIONAL_ROOT } from '../../src/convert/format.js';
import { exportCases } from '../../src/convert/from-case.js';
import { parseRecords } from '../../src/convert/parse.js';
import { convertToCases } from '../../src/convert/to-case.js';
import { isIcrosError } from '../../src/errors.js';

const loaded = loadFormat(path.join(NATIONAL_ROOT, 'fr-pharos-csv'));
const format = () => loaded;
const columns = () => (format().spec.parser as { columns: string[] }).columns;

/** A file with the standard header and rows given as {column: cell}. */
function csv(rows: Record<string, string>[], eol = '\r\n'): Buffer {
  const quote = (v: string) => (/[;"\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  const lines = [
    columns().join(';'),
    ...rows.map((r) =>
      columns()
        .map((c) => quote(r[c] ?? ''))
        .join(';'),
    ),
  ];
  return Buffer.from(lines.join(eol) + eol);
}

const base = {
  numero_signalement: 'PHAROS-2026-009001',
  date_signalement: '03/11/2026 20:14',
  categorie: 'ESCROQUERIE',
  resume: 'Faux site de vente.',
};

/** The case fields these tests read. */
const doc = (c: unknown) => c as { summary: { text: string }; loss?: { amount: string } };

async function convert(rows: Record<string, string>[]) {
  return convertToCases(format(), csv(rows));
}

describe('fr-pharos-csv (French spreadsheet export)', () => {
  it('reads decimal commas with thousands grouped by spaces, dots or narrow spaces', async () => {
    const amounts = ['1 250,50', '1.250,50', '1\u202f250,50', '1250,5', '12', '1 000 000'];
    const r = await convert(
      amounts.map((a, i) => ({
        ...base,
        numero_signalement: `PHAROS-A-${i}`,
        prejudice_montant: a,
        prejudice_devise: 'EUR',
      })),
    );
    expect(r.rejected).to.deep.equal([]);
    expect(r.cases.map((c) => doc(c.case).loss?.amount)).to.deep.equal([
      '1250.50',
      '1250.50',
      '1250.50',
      '1250.5',
      '12',
      '1000000',
    ]);
  });

  it('refuses a decimal point, naming the row, the column and the expected form', async () => {
    const r = await convert([base, { ...base, prejudice_montant: '4800.50', prejudice_devise: 'EUR' }]);
    expect(r.cases).to.have.length(1);
    expect(r.rejected).to.have.length(1);
    const [e] = r.rejected[0]!.errors;
    expect(e!.location).to.equal('row 3, column N (prejudice_montant)');
    expect(e!.message).to.contain('virgule décimale');
  });

  it('reads dd/mm/yyyy times in Paris time, summer and winter', async () => {
    const r = await convert([
      { ...base, date_signalement: '15/01/2026 09:00' },
      { ...base, numero_signalement: 'PHAROS-B-2', date_signalement: '15/07/2026 09:00:30' },
    ]);
    expect(r.cases.map((c) => c.case.createdAt)).to.deep.equal([
      '2026-01-15T09:00:00+01:00',
      '2026-07-15T09:00:30+02:00',
    ]);
  });

  it('rejects a date that does not exist, at its row', async () => {
    const r = await convert([{ ...base, date_signalement: '31/02/2026 10:00' }]);
    expect(r.rejected[0]!.location).to.equal('row 2');
    expect(r.rejected[0]!.errors[0]!.message).to.contain('2026-02-31 10:00 is not a real date and time');
  });

  it('splits repeated elements in one cell and locates a bad one by its position', async () => {
    const r = await convert([
      {
        ...base,
        telephones: '+33612000001 | +33612000002',
        pseudos: 'trader_pro_88 (Telegram)|anon (Instagram)',
      },
      { ...base, numero_signalement: 'PHAROS-C-2', telephones: '+33612000001|0612345678' },
    ]);
    expect(r.cases[0]!.case.identifiers).to.deep.equal([
      { kind: 'phone', ref: 'e1', value: '+33612000001' },
      { kind: 'phone', ref: 'e2', value: '+33612000002' },
      { kind: 'username', ref: 'e3', value: 'trader_pro_88', platform: 'Telegram' },
      { kind: 'username', ref: 'e4', value: 'anon', platform: 'Instagram' },
    ]);
    expect(r.rejected[0]!.errors[0]!.location).to.equal('row 3, column T (telephones), value 2');
  });

  it('decodes Windows-1252 when the bytes are not UTF-8 (€, œ, accents)', async () => {
    const text = csv([{ ...base, resume: "900 € exigés ; l'œuvre d'un réseau, déjà signalé" }]).toString(
      'utf8',
    );
    const bytes = iconv.encode(text, 'windows-1252');
    expect(bytes.includes(0x80), '€ is byte 0x80 in Windows-1252').to.equal(true);
    const r = await convertToCases(format(), bytes);
    expect(r.rejected).to.deep.equal([]);
    expect(doc(r.cases[0]!.case).summary.text).to.contain('€').and.to.contain('œ');
  });

  it('reads mixed line endings (CRLF, LF, CR) and keeps line breaks inside a quoted cell', async () => {
    const lines = csv(
      [
        base,
        { ...base, numero_signalement: 'PHAROS-D-2', resume: 'ligne 1\r\nligne 2' },
        { ...base, numero_signalement: 'PHAROS-D-3' },
      ],
      '\n',
    )
      .toString()
      .split('\n');
    const mixed = `${lines[0]}\r\n${lines[1]}\r${lines[2]}\n${lines.slice(3).join('\n')}`;
    const r = await convertToCases(format(), Buffer.from(mixed));
    expect(r.rejected).to.deep.equal([]);
    expect(r.cases.map((c) => doc(c.case).summary.text)).to.deep.equal([
      'Faux site de vente.',
      'ligne 1\nligne 2',
      'Faux site de vente.',
    ]);
  });

  it('refuses an unknown or repeated column in the header, naming it', async () => {
    for (const [header, message] of [
      ['numero_signalement;date_signalement;montant', 'unknown column "montant"'],
      ['numero_signalement;resume;resume', 'column "resume" appears twice'],
    ] as const) {
      try {
        await convertToCases(format(), Buffer.from(`${header}\r\nx;y;z\r\n`));
        expect.fail('expected REPORT_INVALID');
      } catch (err) {
        expect(isIcrosError(err)).to.equal(true);
        expect((err as { errors: { location: string; message: string }[] }).errors[0]!.message).to.contain(
          message,
        );
        expect((err as { errors: { location: string }[] }).errors[0]!.location).to.equal('row 1, column C');
      }
    }
  });

  it('locates cells beyond the header in a ragged row', async () => {
    const file = Buffer.from(`${csv([base]).toString().trimEnd()};extra\r\n`);
    const r = await convertToCases(format(), file);
    expect(r.rejected[0]!.errors[0]).to.deep.include({ location: 'row 2', rule: 'additionalProperties' });
    expect(r.rejected[0]!.errors[0]!.message).to.contain('column AA');
  });

  it('gives no report for a header-only file, and a clear error for an empty one', async () => {
    expect((await convertToCases(format(), csv([]))).cases).to.deep.equal([]);
    try {
      await convertToCases(format(), Buffer.alloc(0));
      expect.fail('expected an error');
    } catch (err) {
      expect((err as Error).message).to.contain('no header row');
    }
  });

  it('keeps formulas as inert text and never exports them as formulas', async () => {
    const formulas = ['=HYPERLINK("http://evil.example","clic")', '@SUM(1+1)', "+cmd|' /C calc'!A0", '-2+3'];
    const r = await convert(
      formulas.map((f, i) => ({ ...base, numero_signalement: `PHAROS-F-${i}`, resume: f })),
    );
    expect(r.cases.map((c) => doc(c.case).summary.text)).to.deep.equal(formulas);
    const { body } = await exportCases(
      format(),
      r.cases.map((c) => c.case),
    );
    const exported = parseRecords(
      { type: 'csv', delimiter: ';', encodings: ['utf-8'], columns: columns() },
      body,
    );
    // Raw cells: every formula-like cell starts with a quote in the file itself …
    const raw = body.toString('utf8');
    for (const f of formulas) expect(raw).to.contain(`'${f.replaceAll('"', '""')}`);
    expect(raw).to.not.match(/(^|;)"?[=@+-]/m);
    // … and reading the file back gives the same text, not the quote.
    expect(exported.records.map((x) => (x as { resume: string }).resume)).to.deep.equal(formulas);
    // A phone number is not a formula and stays as it is.
    const phone = await convert([{ ...base, telephones: '+33612000001' }]);
    expect((await exportCases(format(), [phone.cases[0]!.case])).body.toString()).to.contain(
      ';+33612000001;',
    );
  });

  it('exports UTF-8 with a BOM and CRLF, as spreadsheets expect', async () => {
    const cases = JSON.parse(readFileSync('schemas/national/fr-pharos-csv/samples/export.case.json', 'utf8'));
    const { body, mediaType } = await exportCases(format(), cases);
    expect([...body.subarray(0, 3)]).to.deep.equal([0xef, 0xbb, 0xbf]);
    expect(body.toString()).to.contain('\r\n');
    expect(mediaType).to.equal('text/csv; charset=utf-8');
  });
});
