import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadFormats, NATIONAL_ROOT } from '../../src/convert/format.js';
import { convertFromCase } from '../../src/convert/from-case.js';
import { convertToCases } from '../../src/convert/to-case.js';

const formats = loadFormats();

describe('national formats (golden samples, both directions)', () => {
  it('finds the format folders', () => {
    expect([...formats.keys()]).to.include('fr-pharos');
  });

  for (const [id, format] of formats) {
    const samples = path.join(NATIONAL_ROOT, id, 'samples');
    for (const input of readdirSync(samples).filter((f) => f.endsWith('.input.json'))) {
      const name = input.replace('.input.json', '');
      const bytes = readFileSync(path.join(samples, input));
      const expected = JSON.parse(readFileSync(path.join(samples, `${name}.case.json`), 'utf8'));

      it(`${id}/${name}: converts to the expected cases`, async () => {
        const { cases, rejected } = await convertToCases(format, bytes);
        expect(rejected, JSON.stringify(rejected, null, 2)).to.deep.equal([]);
        expect(cases.map((c) => c.case)).to.deep.equal(expected);
      });

      it(`${id}/${name}: national → case → national keeps every mapped field`, async () => {
        const doc = JSON.parse(bytes.toString('utf8'));
        const records: unknown[] = Array.isArray(doc)
          ? doc
          : (doc[format.spec.parser.records ?? ''] ?? [doc]);
        const { cases } = await convertToCases(format, bytes);
        const back = await Promise.all(cases.map((c) => convertFromCase(format, c.case)));
        expect(back).to.deep.equal(records);
      });

      it(`${id}/${name}: case → national → case gives the same case`, async () => {
        for (const c of expected) {
          const national = await convertFromCase(format, c);
          const again = await convertToCases(format, Buffer.from(JSON.stringify(national)));
          expect(again.rejected).to.deep.equal([]);
          expect(again.cases[0]!.case).to.deep.equal(c);
        }
      });
    }
  }
});
