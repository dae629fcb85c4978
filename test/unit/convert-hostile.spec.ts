import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { nationalFormat } from '../../src/convert/registry.js';
import { convertToCases } from '../../src/convert/to-case.js';
import { isIcrosError } from '../../src/errors.js';

const sample = JSON.parse(readFileSync('schemas/national/fr-pharos/samples/export.input.json', 'utf8'))
  .signalements[0];
const format = () => nationalFormat('fr-pharos');
const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

async function rejectsWith(input: Buffer, code: string) {
  try {
    await convertToCases(format(), input);
  } catch (err) {
    expect(isIcrosError(err), String(err)).to.equal(true);
    expect((err as { code: string }).code).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('conversion of hostile input (fr-pharos)', () => {
  it('accepts a UTF-8 BOM', async () => {
    const r = await convertToCases(format(), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes(sample)]));
    expect(r.cases).to.have.length(1);
  });

  it('refuses invalid UTF-8 with a clear code', async () => {
    await rejectsWith(
      Buffer.concat([bytes('{"numeroSignalement": "'), Buffer.from([0xc3, 0x28]), bytes('"}')]),
      'BODY_MALFORMED',
    );
  });

  it('refuses prototype keys anywhere', async () => {
    await rejectsWith(bytes(`{"signalements":[{"__proto__":{"x":1}}]}`), 'PAYLOAD_FORBIDDEN_KEY');
    await rejectsWith(bytes(`{"signalements":[{"constructor":{"prototype":{}}}]}`), 'PAYLOAD_FORBIDDEN_KEY');
  });

  it('locates a 10 MB string and deep nesting as errors of that report, quickly, without crashing', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const doc = `{"signalements":[${JSON.stringify({ ...sample, resume: 'x'.repeat(10 * 1024 * 1024) })},${JSON.stringify({ ...sample, numeroSignalement: 'PHAROS-1' }).replace('"langue":"fr"', `"langue":${deep}`)}]}`;
    const t0 = performance.now();
    const r = await convertToCases(format(), bytes(doc));
    expect(performance.now() - t0).to.be.lessThan(5000);
    expect(r.cases).to.have.length(0);
    expect(r.rejected.map((x) => x.errors[0]!.location)).to.deep.equal([
      '/signalements/0/resume',
      '/signalements/1/langue',
    ]);
  });

  it('keeps a spreadsheet formula as inert text', async () => {
    const r = await convertToCases(
      format(),
      bytes({ ...sample, resume: '=HYPERLINK("http://evil.example","clic")' }),
    );
    expect(r.cases[0]!.case.summary).to.deep.include({ text: '=HYPERLINK("http://evil.example","clic")' });
  });

  it('reports every bad report of a file with its index, converts the good ones', async () => {
    const good = sample;
    const bad = { ...sample, numeroSignalement: 'PHAROS-2', prejudice: { montant: '12,50', devise: 'EUR' } };
    const r = await convertToCases(format(), bytes({ signalements: [good, bad, good] }));
    expect(r.cases.map((c) => c.index)).to.deep.equal([0, 2]);
    expect(r.rejected[0]!.errors[0]!.location).to.equal('/signalements/1/prejudice/montant');
  });
});
