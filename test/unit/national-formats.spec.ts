/**
 * Golden samples of every format folder, both directions. In `samples/`:
 * - `<name>.input.<ext>` with `<name>.case.json`: the national file converts to exactly these cases;
 * - `<name>.export.<ext>` (optional): what `<name>.case.json` exports to, byte for byte.
 * Lossless formats also give back every record as it was (national → case → national), and
 * every format gives back the same case (case → national → case).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadFormats, NATIONAL_ROOT } from '../../src/convert/format.js';
import { convertFromCase, exportCases } from '../../src/convert/from-case.js';
import { parseRecords } from '../../src/convert/parse.js';
import { convertToCases } from '../../src/convert/to-case.js';

const formats = loadFormats();

describe('national formats (golden samples, both directions)', () => {
  it('finds the format folders', () => {
    expect([...formats.keys()]).to.include('fr-pharos');
  });

  for (const [id, format] of formats) {
    const samples = path.join(NATIONAL_ROOT, id, 'samples');
    const inputs = readdirSync(samples).filter((f) => /\.input\.[a-z]+$/.test(f));
    it(`${id}: has at least one golden sample`, () => {
      expect(inputs).to.not.be.empty;
    });
    for (const input of inputs) {
      const [name, , ext] = input.split('.');
      const bytes = readFileSync(path.join(samples, input));
      const expected = JSON.parse(readFileSync(path.join(samples, `${name}.case.json`), 'utf8'));
      const exportFile = path.join(samples, `${name}.export.${ext}`);

      it(`${id}/${name}: converts to the expected cases`, async () => {
        const { cases, rejected } = await convertToCases(format, bytes);
        expect(rejected, JSON.stringify(rejected, null, 2)).to.deep.equal([]);
        expect(cases.map((c) => c.case)).to.deep.equal(expected);
      });

      if ((format.spec.roundTrip ?? 'lossless') === 'lossless') {
        it(`${id}/${name}: national → case → national keeps every mapped field`, async () => {
          const { records } = parseRecords(format.spec.parser, bytes);
          const { cases } = await convertToCases(format, bytes);
          const back = await Promise.all(cases.map((c) => convertFromCase(format, c.case)));
          expect(back).to.deep.equal(records);
        });
      }

      it(`${id}/${name}: case → national → case gives the same case`, async () => {
        for (const c of expected) {
          const { body } = await exportCases(format, [c]);
          const again = await convertToCases(format, body);
          expect(again.rejected, JSON.stringify(again.rejected, null, 2)).to.deep.equal([]);
          expect(again.cases.map((x) => x.case)).to.deep.equal([c]);
        }
      });

      if (existsSync(exportFile)) {
        it(`${id}/${name}: exports to ${name}.export.${ext} byte for byte`, async () => {
          const { body } = await exportCases(format, expected);
          expect(body.toString('utf8')).to.equal(readFileSync(exportFile, 'utf8'));
        });
      }
    }
  }
});
