/**
 * de-xml: a second country's XML export. Errors are located by XML path; hostile XML (DTDs,
 * entities, prototype names, deep nesting, huge text, other encodings) gets a clear error.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import iconv from 'iconv-lite';
import { loadFormat, NATIONAL_ROOT } from '../../src/convert/format.js';
import { exportCases } from '../../src/convert/from-case.js';
import { convertToCases } from '../../src/convert/to-case.js';
import { isIcrosError } from '../../src/errors.js';

const loaded = loadFormat(path.join(NATIONAL_ROOT, 'de-xml'));
const format = () => loaded;
const sample = readFileSync('schemas/national/de-xml/samples/export.input.xml', 'utf8');
const first = sample.slice(sample.indexOf('<Meldung>'), sample.indexOf('</Meldung>') + '</Meldung>'.length);
const file = (...meldungen: string[]) =>
  Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<Meldungen>${meldungen.join('\n')}</Meldungen>\n`);
const doc = (c: unknown) =>
  c as {
    classification: { iccs: string };
    summary: { text: string };
    provenance: { warnings?: { rule: string }[] };
  };

async function refused(bytes: Buffer, code: string, text: string) {
  try {
    await convertToCases(format(), bytes);
  } catch (err) {
    expect(isIcrosError(err), String(err)).to.equal(true);
    expect((err as { code: string }).code).to.equal(code);
    expect((err as Error).message).to.contain(text);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('de-xml (German XML export)', () => {
  it('locates errors by XML path, attributes and repeated elements included', async () => {
    const bad = first
      .replace('<Merkmal Art="Telefon">', '<Merkmal Art="Fax">')
      .replace('Waehrung="EUR">2500.00', 'Waehrung="EUR">2.500,00');
    const r = await convertToCases(format(), file(first, bad));
    expect(r.cases).to.have.length(1);
    expect(r.rejected[0]!.location).to.equal('/Meldungen/Meldung[2]');
    expect(r.rejected[0]!.errors.map((e) => e.location)).to.have.members([
      '/Meldungen/Meldung[2]/Schaden/text()',
      '/Meldungen/Meldung[2]/Tatmittel/Merkmal[2]/@Art',
    ]);
  });

  it('says when a value-bearing element is empty or an attribute is missing', async () => {
    const r = await convertToCases(
      format(),
      file(
        first.replace(
          '<Merkmal Art="IBAN">FR1420041010050500013M02606</Merkmal>',
          '<Merkmal>x</Merkmal><Merkmal Art="IBAN"/>',
        ),
      ),
    );
    const messages = r.rejected[0]!.errors.map((e) => `${e.location}: ${e.message}`);
    expect(messages).to.include('/Meldungen/Meldung[1]/Tatmittel/Merkmal[3]: is missing the attribute "Art"');
    expect(messages).to.include(
      '/Meldungen/Meldung[1]/Tatmittel/Merkmal[4]: has no text; a value is required',
    );
  });

  it('classifies an unknown provision as ICCS 11 with a warning, and takes a stated <ICCS>', async () => {
    const r = await convertToCases(
      format(),
      file(
        first.replace('§ 263a StGB', '§ 184 StGB'),
        first
          .replace('BKA-CC-2026-118834', 'BKA-CC-2026-1')
          .replace('§ 263a StGB</Strafvorschrift>', '§ 184 StGB</Strafvorschrift><ICCS>0303</ICCS>'),
      ),
    );
    expect(r.rejected).to.deep.equal([]);
    const [a, b] = r.cases.map((c) => doc(c.case));
    expect(a!.classification.iccs).to.equal('11');
    expect(a!.provenance.warnings!.map((w) => w.rule)).to.deep.equal(['iccs-unmapped']);
    expect(b!.classification.iccs).to.equal('0303');
    expect(b!.provenance.warnings).to.equal(undefined);
  });

  it('exports a partner case with its ICCS code and origin, and reads it back', async () => {
    const fr = JSON.parse(readFileSync('schemas/national/fr-pharos/samples/export.case.json', 'utf8'))[0];
    const { body, mediaType } = await exportCases(format(), [fr]);
    expect(mediaType).to.equal('application/xml');
    const xml = body.toString();
    expect(xml).to.contain('<Herkunftsstaat>FR</Herkunftsstaat>');
    expect(xml).to.contain('<Strafvorschrift>§ 263 StGB</Strafvorschrift>');
    // § 263 StGB already means ICCS 0701, so no <ICCS> is needed.
    expect(xml).to.not.contain('<ICCS>');
    const back = await convertToCases(format(), body);
    expect(back.rejected).to.deep.equal([]);
    const c = back.cases[0]!.case as typeof fr;
    expect(c.id).to.equal(fr.id);
    expect(c.origin).to.deep.equal(fr.origin);
    expect(c.identifiers).to.deep.equal(fr.identifiers);
    expect(c.parties).to.deep.equal(
      fr.parties.map((p: { ref: string }, i: number) => ({ ...p, ref: `p${i + 1}` })),
    );
  });

  it('refuses DTDs and entity declarations (billion laughs, external entities)', async () => {
    await refused(
      Buffer.from(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Meldungen/>',
      ),
      'BODY_MALFORMED',
      'DTDs and entities are not accepted',
    );
    await refused(
      Buffer.from('<!DOCTYPE x SYSTEM "file:///etc/passwd"><Meldungen/>'),
      'BODY_MALFORMED',
      'DOCTYPE',
    );
  });

  it('refuses malformed XML with its line and column', async () => {
    await refused(Buffer.from('<Meldungen>\n  <Meldung>\n</Meldungen>'), 'BODY_MALFORMED', 'line 3');
  });

  it('refuses prototype names as elements or attributes', async () => {
    await refused(
      file('<Meldung><__proto__><a>1</a></__proto__></Meldung>'),
      'PAYLOAD_FORBIDDEN_KEY',
      '__proto__',
    );
    await refused(file('<Meldung constructor="1"/>'), 'PAYLOAD_FORBIDDEN_KEY', 'constructor');
  });

  it('survives deep nesting and a 10 MB text, with located errors', async () => {
    const deep = `${'<a>'.repeat(20_000)}x${'</a>'.repeat(20_000)}`;
    await refused(file(`<Meldung><Sachverhalt>${deep}</Sachverhalt></Meldung>`), 'BODY_MALFORMED', 'nested');
    const huge = first.replace(
      /<Sachverhalt>[^<]*<\/Sachverhalt>/,
      `<Sachverhalt>${'x'.repeat(10 * 1024 * 1024)}</Sachverhalt>`,
    );
    const r = await convertToCases(format(), file(huge));
    expect(r.rejected[0]!.errors.map((e) => e.location)).to.deep.equal(['/Meldungen/Meldung[1]/Sachverhalt']);
  });

  it('reads the encoding the XML declaration names (ISO-8859-15, Windows-1252)', async () => {
    const text = file(first.replace('Klaus W.', 'Jürgen Öztürk')).toString().replace('UTF-8', 'ISO-8859-15');
    const r = await convertToCases(format(), iconv.encode(text, 'iso-8859-15'));
    expect(r.rejected).to.deep.equal([]);
    expect(JSON.stringify(r.cases[0]!.case)).to.contain('Jürgen Öztürk');
    await refused(
      Buffer.from('<?xml version="1.0" encoding="EBCDIC-X"?><Meldungen/>'),
      'BODY_MALFORMED',
      'EBCDIC-X',
    );
  });

  it('reads an empty <Meldungen/> as no report and another root as an error', async () => {
    expect((await convertToCases(format(), Buffer.from('<Meldungen/>'))).cases).to.deep.equal([]);
    await refused(Buffer.from('<Reports><Report/></Reports>'), 'REPORT_INVALID', '<Meldungen>');
  });
});
