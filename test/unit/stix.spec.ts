/**
 * STIX 2.1 format (schemas/national/stix-2.1): every OASIS example imports, every export is
 * valid against the OASIS JSON schemas, case → STIX → case keeps identifiers, parties and
 * handling, and hostile bundles are bounded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import { loadFormat, NATIONAL_ROOT } from '../../src/convert/format.js';
import { convertFromCase, exportCases } from '../../src/convert/from-case.js';
import { convertToCases } from '../../src/convert/to-case.js';
import type { IcrosCase } from '../../src/schema/case.js';
import type { CaseV1 } from '../../src/schema/validators.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const STIX = path.join(here, '../fixtures/stix-2.1');
const ROOT = path.join(here, '../..');
// The folder alone: another format folder being edited must not break these tests.
const format = loadFormat(path.join(NATIONAL_ROOT, 'stix-2.1'));
const local = { country: 'FR', agency: 'PHAROS' };

function jsonFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return jsonFiles(p);
    return e.name.endsWith('.json') ? [p] : [];
  });
}

const readJson = (p: string): unknown => JSON.parse(readFileSync(p, 'utf8'));

/** Cases to export: the shared samples, the fr-pharos golden cases and our own golden cases. */
function sampleCases(): { name: string; c: CaseV1 }[] {
  const out: { name: string; c: CaseV1 }[] = [];
  for (const f of jsonFiles(path.join(ROOT, 'schemas/icros-case/samples'))) {
    out.push({ name: path.basename(f), c: readJson(f) as CaseV1 });
  }
  for (const id of ['fr-pharos', 'stix-2.1']) {
    const dir = path.join(NATIONAL_ROOT, id, 'samples');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.case.json'))) {
      for (const [i, c] of (readJson(path.join(dir, f)) as CaseV1[]).entries()) {
        out.push({ name: `${id}/${f}[${i}]`, c });
      }
    }
  }
  return out;
}

/** The OASIS schemas, each under its $id; a validator per STIX type. */
function oasisValidators() {
  const ajv = new Ajv2020({ strict: false, allErrors: true, unicodeRegExp: false });
  addFormats.default(ajv);
  const ids = new Map<string, string>();
  for (const f of jsonFiles(path.join(STIX, 'schemas'))) {
    const schema = readJson(f) as { $id: string };
    ajv.addSchema(schema);
    ids.set(path.relative(path.join(STIX, 'schemas'), f).replaceAll(path.sep, '/'), schema.$id);
  }
  const get = (rel: string): ValidateFunction => {
    const id = ids.get(rel);
    if (!id) throw new Error(`no OASIS schema ${rel}`);
    const v = ajv.getSchema(id);
    if (!v) throw new Error(`cannot compile ${rel}`);
    return v;
  };
  const forType = (type: string): ValidateFunction => {
    for (const dir of ['sdos', 'sros', 'observables', 'common']) {
      if (ids.has(`${dir}/${type}.json`)) return get(`${dir}/${type}.json`);
    }
    // Custom SCOs (x-icros-*) are defined by the ICROS extension definition.
    return get('common/cyber-observable-core.json');
  };
  return { bundle: get('common/bundle.json'), forType };
}

describe('stix-2.1 format', () => {
  describe('OASIS examples import', () => {
    const files = jsonFiles(path.join(STIX, 'examples'));
    it('finds the examples', () => {
      expect(files.length).to.be.greaterThan(5);
    });
    for (const file of files) {
      it(`${path.relative(STIX, file)}: no rejection, at least one valid case`, async () => {
        const { cases, rejected } = await convertToCases(format, readFileSync(file), local);
        expect(rejected, JSON.stringify(rejected, null, 2)).to.deep.equal([]);
        expect(cases).to.not.be.empty;
        for (const { case: c } of cases)
          expect((c as unknown as IcrosCase).provenance?.sourceFormat).to.equal('stix-2.1');
      });
    }

    it('threat-reports/poisonivy.json: indicators become identifiers, unmapped objects are warned', async () => {
      const bytes = readFileSync(path.join(STIX, 'examples/threat-reports/poisonivy.json'));
      const { cases } = await convertToCases(format, bytes, local);
      const c = cases[0]!.case as unknown as IcrosCase;
      expect(c.origin.agency).to.equal('FireEye, Inc.');
      expect(c.classification.iccs).to.equal('0902');
      expect(c.identifiers?.some((x) => x.kind === 'domain')).to.equal(true);
      expect(c.identifiers?.some((x) => x.kind === 'ip')).to.equal(true);
      const rules = (c.provenance?.warnings ?? []).map((w) => w.rule);
      expect(rules).to.include.members(['classification-default', 'object-not-mapped']);
      expect(rules.length).to.be.at.most(100);
    });

    it('a lone TLP:RED campaign (not a bundle) gives a case with handling RED', async () => {
      const bytes = readFileSync(path.join(STIX, 'examples/interop-objectmarking-test.json'));
      const { cases } = await convertToCases(format, bytes, local);
      expect(cases[0]!.case.handling).to.deep.equal({ tlp: 'RED', code: 'H2' });
      expect((cases[0]!.case as unknown as IcrosCase).summary.text).to.equal('Spear Phishing');
    });
  });

  describe('exports', () => {
    const oasis = oasisValidators();
    for (const { name, c } of sampleCases()) {
      it(`${name}: the bundle and every object are valid against the OASIS schemas`, async () => {
        const bundle = (await convertFromCase(format, c)) as {
          type: string;
          objects: { type: string; id: string }[];
        };
        const plain = JSON.parse(JSON.stringify(bundle));
        // The OASIS bundle.json predates extension-definition: its "custom object" branch is a
        // oneOf of core.json and cyber-observable-core.json, and an extension-definition (which has
        // created/modified) matches both. So the bundle is checked without them, and each
        // extension-definition against common/extension-definition.json below.
        const known = {
          ...plain,
          objects: plain.objects.filter((o: { type: string }) => o.type !== 'extension-definition'),
        };
        expect(oasis.bundle(known), JSON.stringify(oasis.bundle.errors?.slice(0, 5))).to.equal(true);
        expect(plain.objects.map((o: { type: string }) => o.type)).to.include('extension-definition');
        for (const o of plain.objects) {
          const v = oasis.forType(o.type);
          expect(v(o), `${o.id}: ${JSON.stringify(v.errors?.slice(0, 5))}`).to.equal(true);
        }
        expect(plain.objects.filter((o: { type: string }) => o.type === 'report')).to.have.length(1);
        expect(plain.objects.map((o: { id: string }) => o.id)).to.include(`report--${c.id}`);
      });

      it(`${name}: case → STIX → case keeps identifiers, parties and handling`, async () => {
        const { body } = await exportCases(format, [c]);
        const { cases, rejected } = await convertToCases(format, body, local);
        expect(rejected).to.deep.equal([]);
        expect(cases).to.have.length(1);
        const back = JSON.parse(JSON.stringify(cases[0]!.case)) as CaseV1;
        expect(back.identifiers).to.deep.equal(c.identifiers);
        expect(back.parties).to.deep.equal(c.parties);
        expect(back.handling).to.deep.equal(c.handling);
        expect(back).to.deep.equal(c);
      });

      it(`${name}: the export is reproducible`, async () => {
        const a = await exportCases(format, [c]);
        const b = await exportCases(format, [c]);
        expect(a.body.equals(b.body)).to.equal(true);
        expect(a.mediaType).to.equal('application/stix+json;version=2.1');
      });
    }
  });

  describe('hostile input', () => {
    const indicator = (i: number) => ({
      type: 'indicator',
      spec_version: '2.1',
      id: `indicator--${String(i).padStart(8, '0')}-0000-4000-8000-000000000000`,
      created: '2026-01-01T00:00:00.000Z',
      modified: '2026-01-01T00:00:00.000Z',
      pattern: `[domain-name:value = 'd${i}.example']`,
      pattern_type: 'stix',
      valid_from: '2026-01-01T00:00:00Z',
    });
    const bundle = (n: number) =>
      Buffer.from(
        JSON.stringify({
          type: 'bundle',
          id: 'bundle--00000000-0000-4000-8000-000000000000',
          objects: Array.from({ length: n }, (_, i) => indicator(i)),
        }),
      );

    it('a bundle of 10,001 objects is refused at /objects with maxItems, quickly', async () => {
      const t = Date.now();
      const { cases, rejected } = await convertToCases(format, bundle(10_001), local);
      expect(cases).to.deep.equal([]);
      expect(rejected[0]!.errors.map((e) => [e.location, e.rule])).to.deep.include(['/objects', 'maxItems']);
      expect(Date.now() - t).to.be.below(5000);
    });

    it('a bundle of 5,000 indicators converts to one bounded case', async () => {
      const { cases, rejected } = await convertToCases(format, bundle(5000), local);
      expect(rejected).to.deep.equal([]);
      const c = cases[0]!.case as unknown as IcrosCase;
      expect(c.identifiers).to.have.length(1000);
      expect(c.provenance?.warnings?.map((w) => w.rule)).to.include('value-dropped');
    });

    it('a JSON document that is not STIX gives located errors, not a crash', async () => {
      const { cases, rejected } = await convertToCases(
        format,
        Buffer.from(JSON.stringify({ type: 'bundle', id: 'nope', objects: [{ type: 'x' }] })),
        local,
      );
      expect(cases).to.deep.equal([]);
      const where = rejected[0]!.errors.map((e) => e.location);
      expect(where).to.include.members(['/id', '/objects/0']);
    });

    it('an array of non-objects gives one located rejection per item', async () => {
      const { cases, rejected } = await convertToCases(format, Buffer.from('[1, "two", null]'), local);
      expect(cases).to.deep.equal([]);
      expect(rejected.map((r) => r.location)).to.deep.equal(['/0', '/1', '/2']);
    });

    it('a foreign bundle with no known origin is rejected with a message, not a crash', async () => {
      const { rejected } = await convertToCases(format, bundle(1));
      expect(rejected[0]!.errors[0]!.rule).to.equal('mapping');
      expect(rejected[0]!.errors[0]!.message).to.match(/origin/);
    });
  });
});
