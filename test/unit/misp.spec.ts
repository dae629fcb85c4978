/**
 * The `misp` exchange format (schemas/national/misp/): case → MISP event → case keeps the case,
 * exported events follow the MISP core format (draft-dulaunoy-misp-core-format), and events
 * from other tools import with warnings rather than rejections, bounded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { loadFormats, type NationalFormat } from '../../src/convert/format.js';
import { exportCases } from '../../src/convert/from-case.js';
import { type Conversion, convertToCases } from '../../src/convert/to-case.js';
import { isIcrosError } from '../../src/errors.js';
import type { IcrosCase } from '../../src/schema/case.js';
import type { CaseV1 } from '../../src/schema/validators.js';

const LOCAL = { country: 'FR', agency: 'PHAROS' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const EPOCH = /^[0-9]+$/;

/** Category → the types the MISP core format allows in it (the categories this export uses). */
// biome-ignore format: a table, one category a line
const CATEGORY_TYPES: Record<string, string[]> = {
  'Network activity': [
    'ip-src', 'ip-dst', 'ip-dst|port', 'ip-src|port', 'port', 'hostname', 'domain', 'domain|ip', 'email',
    'email-dst', 'email-src', 'url', 'uri', 'user-agent', 'AS', 'text', 'other',
  ],
  'Payload delivery': [
    'md5', 'sha1', 'sha256', 'filename', 'ip-src', 'ip-dst', 'hostname', 'domain', 'email', 'email-src',
    'email-dst', 'email-subject', 'url', 'mime-type', 'attachment', 'link', 'comment', 'text', 'other',
  ],
  'Financial fraud': [
    'btc', 'dash', 'xmr', 'iban', 'bic', 'bank-account-nr', 'aba-rtn', 'bin', 'cc-number', 'prtn',
    'phone-number', 'comment', 'text', 'other', 'hex', 'anonymised',
  ],
  Person: [
    'first-name', 'middle-name', 'last-name', 'full-name', 'nationality', 'country-of-residence', 'comment',
    'text', 'other', 'phone-number', 'email',
  ],
  Other: [
    'comment', 'text', 'other', 'size-in-bytes', 'counter', 'integer', 'datetime', 'cpe', 'port', 'float',
    'hex', 'phone-number', 'boolean', 'anonymised', 'uuid',
  ],
  'External analysis': ['md5', 'sha1', 'sha256', 'filename', 'ip-src', 'ip-dst', 'domain', 'url', 'link', 'text'],
};
const TLP_TAGS = ['tlp:clear', 'tlp:green', 'tlp:amber', 'tlp:amber+strict', 'tlp:red'];

const format = (): NationalFormat => {
  const f = loadFormats().get('misp');
  expect(f, 'the misp format folder').to.not.equal(undefined);
  return f!;
};
/** The first case of a conversion, typed. */
const first = (r: Conversion): IcrosCase => r.cases[0]!.case as unknown as IcrosCase;
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

const sampleCases: [string, IcrosCase][] = [
  ...readdirSync('schemas/icros-case/samples')
    .filter((f) => f.endsWith('.json'))
    .map((f): [string, IcrosCase] => [`icros-case/${f}`, readJson(`schemas/icros-case/samples/${f}`)]),
  ...readdirSync('schemas/national/fr-pharos/samples')
    .filter((f) => f.endsWith('.case.json'))
    .flatMap((f) =>
      (readJson(`schemas/national/fr-pharos/samples/${f}`) as IcrosCase[]).map(
        (c, i): [string, IcrosCase] => [`fr-pharos/${f}[${i}]`, c],
      ),
    ),
];
const phishingBank = (): IcrosCase => readJson('schemas/icros-case/samples/phishing-bank.json');

async function exportEvent(c: IcrosCase) {
  const { body, mediaType } = await exportCases(format(), [c as unknown as CaseV1]);
  expect(mediaType).to.equal('application/json');
  return { body, doc: JSON.parse(body.toString('utf8')) };
}

async function roundTrip(c: IcrosCase): Promise<IcrosCase> {
  const { body } = await exportEvent(c);
  const { cases, rejected } = await convertToCases(format(), body, LOCAL);
  expect(rejected, JSON.stringify(rejected, null, 2)).to.deep.equal([]);
  expect(cases).to.have.length(1);
  return cases[0]!.case as unknown as IcrosCase;
}

/** A minimal event as another tool writes it, with `attributes` and `extra` Event members. */
function foreignEvent(attributes: unknown[], extra: Record<string, unknown> = {}) {
  return {
    Event: {
      uuid: 'c0ffee00-1234-4abc-8def-0123456789ab',
      info: 'Phishing wave against webmail users',
      date: '2026-11-20',
      timestamp: '1795000000',
      threat_level_id: '3',
      analysis: '0',
      distribution: '1',
      published: false,
      Orgc: { id: '12', name: 'Example CERT', uuid: '11111111-2222-4333-8444-555555555555' },
      Tag: [{ name: 'tlp:green' }],
      Attribute: attributes,
      ...extra,
    },
  };
}
const attr = (type: string, value: string, more: Record<string, unknown> = {}) => ({
  type,
  category: 'Network activity',
  value,
  to_ids: false,
  timestamp: '1795000000',
  ...more,
});

describe('misp format', () => {
  describe('case → MISP → case', () => {
    for (const [name, c] of sampleCases) {
      it(`keeps identifiers, parties and handling (${name})`, async () => {
        const back = await roundTrip(c);
        expect(back.identifiers).to.deep.equal(c.identifiers);
        expect(back.parties).to.deep.equal(c.parties);
        expect(back.handling).to.deep.equal(c.handling);
      });
      it(`gives back the whole case exactly (${name})`, async () => {
        expect(await roundTrip(c)).to.deep.equal(c);
      });
    }

    it('keeps a summary MISP cannot hold in Event.info (long, several lines)', async () => {
      const c = phishingBank();
      c.summary.text = `${'Line one of a long account. '.repeat(20)}\nLine two.`;
      const { doc } = await exportEvent(c);
      expect(doc.Event.info.length).to.be.at.most(256);
      expect(doc.Event.info).to.not.match(/[\r\n]/);
      expect(await roundTrip(c)).to.deep.equal(c);
    });

    it('keeps every identifier kind and its own fields', async () => {
      const c = phishingBank();
      c.identifiers = [
        { kind: 'url', value: 'https://a.example/x?y=1' },
        { kind: 'domain', ref: 'd1', value: 'a.example' },
        { kind: 'email', value: 'x@a.example' },
        { kind: 'phone', value: '+33612345678' },
        { kind: 'iban', value: 'DE89370400440532013000' },
        { kind: 'iban', value: 'DE89370400440532013000', bic: 'COBADEFFXXX' },
        { kind: 'bic', value: 'COBADEFF' },
        { kind: 'crypto', value: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', chain: 'bitcoin' },
        {
          kind: 'crypto',
          value:
            '44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A',
          chain: 'monero',
        },
        { kind: 'crypto', value: '0x52908400098527886E0F7030069857D2E4169EE7', chain: 'ethereum' },
        { kind: 'crypto', value: 'TXk9mQ2vRr7dFZp4bL8sWc3nHy6tJa1eUq', chain: 'tron', asset: 'USDT' },
        { kind: 'crypto', value: 'addr1qxy2kgdygjrsqtzq2n0yrf2493p83', chain: 'other', asset: 'XYZ' },
        { kind: 'ip', value: '2001:db8::7', observedAt: '2026-10-30T15:12:09+01:00' },
        { kind: 'ip', value: '203.0.113.45', observedAt: '2026-10-30T15:12:09Z', port: 0 },
        { kind: 'username', value: 'trader_pro_88', platform: 't.me' },
        { kind: 'website', value: 'https://shop.example/' },
        { kind: 'website', value: 'https://shop2.example/', title: 'Shop' },
      ] as IcrosCase['identifiers'];
      c.links = [];
      delete c.links;
      const back = await roundTrip(c);
      expect(back.identifiers).to.deep.equal(c.identifiers);
      expect(back).to.deep.equal(c);
    });

    it('keeps a case with only the required fields', async () => {
      const c = {
        id: '7d3f0c1a-1b2c-4d5e-8f90-a1b2c3d4e5f6',
        version: 3,
        origin: { country: 'BE', agency: 'BE-FCCU', reference: 'FCCU/2026/17' },
        createdAt: '2026-11-02T09:15:00+01:00',
        classification: { iccs: '0701' },
        summary: { text: 'Fraude.', lang: 'fr' },
      } as IcrosCase;
      expect(await roundTrip(c)).to.deep.equal(c);
    });

    it('exports the same case to the same bytes', async () => {
      const a = await exportEvent(phishingBank());
      const b = await exportEvent(phishingBank());
      expect(a.body.equals(b.body)).to.equal(true);
    });
  });

  describe('exported events follow the MISP core format', () => {
    for (const [name, c] of sampleCases) {
      it(`has the required fields and types (${name})`, async () => {
        const { doc } = await exportEvent(c);
        expect(Object.keys(doc)).to.deep.equal(['Event']);
        const e = doc.Event;
        expect(e.uuid).to.equal(c.id).and.to.match(UUID);
        expect(e.info).to.be.a('string').and.not.equal('');
        expect(e.info.length).to.be.at.most(256);
        expect(e.date).to.match(/^\d{4}-\d{2}-\d{2}$/);
        expect(e.timestamp).to.match(EPOCH);
        expect(Number(e.timestamp)).to.equal(Math.floor(Date.parse(c.createdAt) / 1000));
        expect(e.publish_timestamp).to.match(EPOCH);
        expect(e.published).to.equal(false);
        expect(e.threat_level_id).to.be.oneOf(['1', '2', '3', '4']);
        expect(e.analysis).to.be.oneOf(['0', '1', '2']);
        expect(e.distribution).to.be.oneOf(['0', '1', '2', '3', '4']);
        expect(e.Orgc.uuid).to.match(UUID);
        expect(e.Orgc.name).to.equal(c.origin.agency);

        const tags: string[] = e.Tag.map((t: { name: string }) => t.name);
        for (const t of e.Tag) {
          expect(t.name).to.be.a('string');
          expect(t.colour).to.match(/^#[0-9a-f]{6}$/i);
          expect(t.exportable).to.equal(true);
        }
        expect(tags).to.include(`icros:iccs="${c.classification.iccs}"`);
        for (const t of tags)
          expect(TLP_TAGS.includes(t) || /^icros:[a-z-]+="[^"]+"$/.test(t), t).to.equal(true);
        if (c.handling) expect(tags).to.include(`tlp:${c.handling.tlp.toLowerCase()}`);

        const uuids = new Set<string>([e.uuid]);
        const checkAttribute = (a: Record<string, unknown>) => {
          expect(a.uuid).to.match(UUID);
          expect(uuids.has(a.uuid as string), `duplicate uuid ${a.uuid}`).to.equal(false);
          uuids.add(a.uuid as string);
          expect(Object.keys(CATEGORY_TYPES), String(a.category)).to.include(a.category);
          expect(CATEGORY_TYPES[a.category as string], `${a.category}/${a.type}`).to.include(a.type);
          expect(a.value).to.be.a('string').and.not.equal('');
          expect(a.to_ids).to.be.a('boolean');
          expect(a.deleted).to.equal(false);
          expect(a.timestamp).to.match(EPOCH);
          expect(a.distribution).to.be.oneOf(['0', '1', '2', '3', '4', '5']);
        };
        for (const a of e.Attribute) checkAttribute(a);
        for (const o of e.Object) {
          expect(o.uuid).to.match(UUID);
          uuids.add(o.uuid);
          expect(o.name).to.be.a('string');
          expect(o['meta-category']).to.be.a('string');
          expect(o.template_uuid).to.match(UUID);
          expect(o.template_version).to.match(/^[0-9]+$/);
          expect(o.timestamp).to.match(EPOCH);
          expect(o.deleted).to.equal(false);
          expect(o.Attribute).to.be.an('array').that.is.not.empty;
          for (const a of o.Attribute) {
            expect(a.object_relation).to.be.a('string');
            checkAttribute(a);
          }
        }
        // One attribute or object per identifier, one object per party and per evidence.
        const objects = (name: string) => e.Object.filter((o: { name: string }) => o.name === name).length;
        const identifierObjects = ['bank-account', 'coin-address', 'user-account', 'website'].reduce(
          (n, name) => n + objects(name),
          0,
        );
        expect(e.Attribute.length + identifierObjects).to.equal(c.identifiers?.length ?? 0);
        expect(objects('person') + objects('organization')).to.equal(c.parties?.length ?? 0);
        expect(objects('file')).to.equal(c.evidence?.length ?? 0);
        expect(objects('icros-case')).to.equal(1);
      });
    }

    it('writes identifiers as the MISP attribute types partners expect', async () => {
      const { doc } = await exportEvent(phishingBank());
      const byValue = Object.fromEntries(
        doc.Event.Attribute.map((a: { value: string; type: string }) => [a.value, a.type]),
      );
      expect(byValue).to.deep.equal({
        'https://secure-banque-verif.example/login': 'url',
        '+33612345678': 'phone-number',
        '203.0.113.45|51234': 'ip-src|port',
      });
      const ip = doc.Event.Attribute.find((a: { type: string }) => a.type === 'ip-src|port');
      expect(ip.first_seen).to.equal('2026-10-30T15:12:09Z');
      const bank = doc.Event.Object.find((o: { name: string }) => o.name === 'bank-account');
      expect(bank.Attribute.map((a: { type: string; value: string }) => [a.type, a.value])).to.deep.equal([
        ['iban', 'DE89370400440532013000'],
        ['bic', 'COBADEFFXXX'],
      ]);
      const suspect = doc.Event.Object.find(
        (o: { name: string; Attribute: { object_relation: string; value: string }[] }) =>
          o.name === 'person' &&
          o.Attribute.some((a) => a.object_relation === 'role' && a.value === 'Suspect'),
      );
      expect(suspect.Attribute.find((a: { type: string }) => a.type === 'full-name').value).to.equal(
        'Jonas Keller',
      );
    });
  });

  describe('events from other tools', () => {
    it('imports the foreign golden sample as a case of the creator organisation', async () => {
      const { cases, rejected } = await convertToCases(
        format(),
        readFileSync('schemas/national/misp/samples/phishing-campaign.input.json'),
        LOCAL,
      );
      expect(rejected).to.deep.equal([]);
      const c = cases[0]!.case as unknown as IcrosCase;
      expect(c.origin).to.deep.equal({
        country: 'LU',
        agency: 'CSIRT-EXAMPLE-LU',
        reference: '94d2d3ac-a911-4b35-b9fe-9d65e15e8720',
      });
      expect(c.classification).to.deep.equal({ iccs: '0701', budapestArticle: 8 });
      expect(c.handling).to.deep.equal({ tlp: 'AMBER', code: 'H1' });
      expect(c.identifiers?.map((i) => i.kind)).to.include.members([
        'url',
        'domain',
        'email',
        'iban',
        'crypto',
      ]);
      expect(c.identifiers?.find((i) => i.kind === 'iban')?.value).to.equal('LU280019400644750000');
      expect(c.evidence).to.have.length(1);
      expect(JSON.stringify(c)).to.not.include('X0000000'); // the passport number stays out
      expect(JSON.stringify(c)).to.not.include('1994-03-17'); // the date of birth too
    });

    it('keeps an unknown attribute type out of the case with a provenance warning, not a rejection', async () => {
      const event = foreignEvent([
        attr('domain', 'evil.example'),
        attr('yara', 'rule x { condition: true }'),
        attr('yara', 'rule y { condition: true }'),
        attr('x-vendor-thing', 'whatever'),
      ]);
      const { cases, rejected } = await convertToCases(format(), bytes(event), LOCAL);
      expect(rejected).to.deep.equal([]);
      const c = cases[0]!.case as unknown as IcrosCase;
      expect(c.identifiers).to.deep.equal([{ kind: 'domain', value: 'evil.example' }]);
      const dropped = c.provenance?.warnings?.filter((w) => w.rule === 'attribute-type-dropped');
      expect(dropped?.map((w) => [w.location, w.message])).to.deep.equal([
        [
          '/Event/Attribute/1',
          '2 MISP attribute(s) of type "yara" have no place in the shared case and were left out',
        ],
        [
          '/Event/Attribute/3',
          '1 MISP attribute(s) of type "x-vendor-thing" have no place in the shared case and were left out',
        ],
      ]);
      // nothing of the dropped values in the warnings
      expect(JSON.stringify(c.provenance)).to.not.include('condition');
    });

    it('falls back to documented defaults, each with a warning', async () => {
      const event = foreignEvent([attr('ip-dst', '192.0.2.1')], { Tag: [{ name: 'TLP:GREEN' }] });
      const { cases } = await convertToCases(format(), bytes(event), LOCAL);
      const c = cases[0]!.case as unknown as IcrosCase;
      expect(c.id).to.match(UUID);
      expect(c.origin).to.deep.equal({
        country: 'FR',
        agency: 'Example CERT',
        reference: 'c0ffee00-1234-4abc-8def-0123456789ab',
      });
      expect(c.classification).to.deep.equal({ iccs: '11' });
      expect(c.summary).to.deep.equal({ text: 'Phishing wave against webmail users', lang: 'en' });
      expect(c.offencePeriod).to.deep.equal({ start: '2026-11-20' });
      expect(c.createdAt).to.equal('2026-11-18T11:06:40Z');
      expect(c.handling).to.deep.equal({ tlp: 'GREEN', code: 'H0' });
      expect(c.identifiers).to.deep.equal([
        { kind: 'ip', value: '192.0.2.1', observedAt: '2026-11-18T11:06:40Z' },
      ]);
      expect(c.provenance?.sourceFormat).to.equal('misp');
      expect(c.provenance?.warnings?.map((w) => w.rule)).to.deep.equal([
        'classification-defaulted',
        'language-assumed',
        'handling-code-defaulted',
        'origin-assumed',
        'observed-at-approximated',
      ]);
    });

    it('gives the same case id for the same event, a higher version for a later edit', async () => {
      const a = await convertToCases(format(), bytes(foreignEvent([])), LOCAL);
      const b = await convertToCases(format(), bytes(foreignEvent([])), LOCAL);
      const later = await convertToCases(
        format(),
        bytes(foreignEvent([], { timestamp: '1795010000' })),
        LOCAL,
      );
      expect(first(a).id).to.equal(first(b).id);
      expect(first(later).id).to.equal(first(a).id);
      expect(first(later).version).to.be.greaterThan(first(a).version);
    });

    it('drops values not in canonical form with a warning, and normalises the harmless differences', async () => {
      const event = foreignEvent([
        attr('iban', 'DE89 3704 0044 0532 0130 01'), // check digits wrong
        attr('iban', 'de89 3704 0044 0532 0130 00'),
        attr('url', 'hxxp://evil[.]example/a b'),
        attr('domain', 'EVIL.Example'),
        attr('phone-number', '0033 6 12 34 56 78'),
        attr('email-src', 'Boss@EVIL.example'),
        attr('btc', 'not a wallet!'),
      ]);
      const { cases, rejected } = await convertToCases(format(), bytes(event), LOCAL);
      expect(rejected).to.deep.equal([]);
      const c = cases[0]!.case as unknown as IcrosCase;
      expect(c.identifiers).to.deep.equal([
        { kind: 'iban', value: 'DE89370400440532013000' },
        { kind: 'domain', value: 'evil.example' },
        { kind: 'phone', value: '+33612345678' },
        { kind: 'email', value: 'Boss@evil.example' },
      ]);
      expect(
        c.provenance?.warnings?.filter((w) => w.rule === 'value-dropped').map((w) => w.location),
      ).to.deep.equal(['/Event/Attribute/0/value', '/Event/Attribute/2/value', '/Event/Attribute/6/value']);
    });

    it('reads an event our export made and a MISP analyst then added to', async () => {
      const c = phishingBank();
      const { doc } = await exportEvent(c);
      doc.Event.Attribute.push(attr('domain', 'extra.example', { comment: 'added by an analyst' }));
      const { cases, rejected } = await convertToCases(format(), bytes(doc), LOCAL);
      expect(rejected).to.deep.equal([]);
      const back = cases[0]!.case as unknown as IcrosCase;
      expect(back.id).to.equal(c.id);
      expect(back.identifiers).to.deep.equal([...c.identifiers!, { kind: 'domain', value: 'extra.example' }]);
      expect(back.parties).to.deep.equal(c.parties);
      expect(back.links).to.deep.equal(c.links);
    });
  });

  describe('hostile and malformed input', () => {
    it('gives located errors for a document that is not an event', async () => {
      const r = await convertToCases(format(), bytes({ signalements: [] }), LOCAL);
      expect(r.cases).to.deep.equal([]);
      expect(r.rejected[0]!.errors.map((e) => [e.location, e.rule])).to.deep.include.members([
        ['/', 'required'],
        ['/', 'additionalProperties'],
      ]);
      expect(r.rejected[0]!.errors.map((e) => e.message).join(' '))
        .to.match(/Event/)
        .and.match(/signalements/);

      const r2 = await convertToCases(
        format(),
        bytes({ response: [{ Event: { info: 5, uuid: 'nope', Attribute: [{ type: 'url' }] } }] }),
        LOCAL,
      );
      const locations = r2.rejected[0]!.errors.map((e) => e.location);
      expect(locations).to.include.members([
        '/response/0/Event/info',
        '/response/0/Event/uuid',
        '/response/0/Event/Attribute/0',
      ]);
    });

    it('refuses bytes that are not JSON with a clear error, not a crash', async () => {
      for (const input of ['<Event/>', '{"Event": ', '']) {
        try {
          await convertToCases(format(), bytes(input), LOCAL);
          expect.fail('expected an error');
        } catch (err) {
          expect(isIcrosError(err, 'BODY_MALFORMED'), String(err)).to.equal(true);
        }
      }
    });

    it('converts the good events of a response and locates the bad ones', async () => {
      const good = foreignEvent([attr('url', 'https://evil.example/')]);
      const bad = { Event: { ...good.Event, Attribute: [{ type: 'url', value: 42 }] } };
      const r = await convertToCases(format(), bytes({ response: [good, bad, good] }), LOCAL);
      expect(r.cases.map((c) => c.index)).to.deep.equal([0, 2]);
      expect(r.rejected[0]!.errors[0]!.location).to.equal('/response/1/Event/Attribute/0/value');
    });

    it('bounds a huge event: too many attributes is one located error, quickly', async () => {
      const many = Array.from({ length: 10_001 }, (_, i) => attr('domain', `d${i}.example`));
      const t0 = performance.now();
      const r = await convertToCases(format(), bytes(foreignEvent(many)), LOCAL);
      expect(performance.now() - t0).to.be.lessThan(5000);
      expect(r.cases).to.deep.equal([]);
      expect(r.rejected[0]!.errors.map((e) => [e.location, e.rule])).to.deep.equal([
        ['/Event/Attribute', 'maxItems'],
      ]);
    });

    it('bounds a big event within limits: at most 1000 identifiers, with a warning', async () => {
      const many = Array.from({ length: 1500 }, (_, i) => attr('domain', `d${i}.example`));
      const t0 = performance.now();
      const r = await convertToCases(format(), bytes(foreignEvent(many)), LOCAL);
      expect(performance.now() - t0).to.be.lessThan(10_000);
      expect(r.rejected).to.deep.equal([]);
      const c = first(r);
      expect(c.identifiers).to.have.length(1000);
      expect(c.provenance?.warnings?.map((w) => w.rule)).to.include('identifiers-truncated');
    });

    it('locates a 10 MB value as an error of that event, without crashing', async () => {
      const r = await convertToCases(
        format(),
        bytes(foreignEvent([attr('url', `https://x.example/${'a'.repeat(10 * 1024 * 1024)}`)])),
        LOCAL,
      );
      expect(r.rejected[0]!.errors.map((e) => [e.location, e.rule])).to.deep.equal([
        ['/Event/Attribute/0/value', 'maxLength'],
      ]);
    });

    it('cuts an Event.info longer than the case allows, with a warning', async () => {
      const r = await convertToCases(format(), bytes(foreignEvent([], { info: 'x'.repeat(30_000) })), LOCAL);
      const c = first(r);
      expect(c.summary.text).to.have.length(20_000);
      expect(c.provenance?.warnings?.map((w) => w.rule)).to.include('value-truncated');
    });

    it('refuses prototype keys anywhere in an event', async () => {
      try {
        await convertToCases(format(), bytes('{"Event":{"uuid":"x","info":"y","__proto__":{"a":1}}}'), LOCAL);
        expect.fail('expected an error');
      } catch (err) {
        expect(isIcrosError(err, 'PAYLOAD_FORBIDDEN_KEY'), String(err)).to.equal(true);
      }
    });

    it('rejects (does not crash on) a foreign event when no origin country can be found', async () => {
      const r = await convertToCases(format(), bytes(foreignEvent([])));
      expect(r.cases).to.deep.equal([]);
      expect(r.rejected[0]!.errors[0]!.message).to.match(/origin/);
    });
  });
});
