import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { ProblemItem } from '../../src/errors.js';
import type { IcrosCase } from '../../src/schema/case.js';
import { MAX_REPORTED_ERRORS, toProblemItems, validateCase } from '../../src/schema/validators.js';

const samplesDir = new URL('../../schemas/icros-case/samples/', import.meta.url);
const sampleFiles = readdirSync(samplesDir).filter((f) => f.endsWith('.json'));

function sample(name = 'phishing-bank.json'): IcrosCase {
  return JSON.parse(readFileSync(new URL(name, samplesDir), 'utf8'));
}

/** The phishing sample after `change`; a fresh copy each time. */
function changed(change: (c: IcrosCase & Record<string, unknown>) => void): unknown {
  const c = sample() as IcrosCase & Record<string, unknown>;
  change(c);
  return c;
}

function problems(value: unknown): ProblemItem[] {
  expect(validateCase(value), 'validateCase verdict').to.equal(false);
  return validateCase.problems(value);
}

function expectProblem(value: unknown, location: string, rule: string, message?: RegExp): ProblemItem {
  const all = problems(value);
  const hit = all.find((p) => p.location === location && p.rule === rule);
  expect(hit, `${rule} at ${location} in ${JSON.stringify(all)}`).to.not.equal(undefined);
  if (message) expect(hit?.message).to.match(message);
  return hit as ProblemItem;
}

function elapsedMs(fn: () => unknown): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

describe('case schema: samples', () => {
  it('has the three samples, and every one validates with no problem', () => {
    expect(sampleFiles).to.include.members([
      'phishing-bank.json',
      'fake-shop.json',
      'crypto-investment.json',
    ]);
    for (const f of sampleFiles) {
      const c = sample(f);
      expect(validateCase.problems(c), f).to.deep.equal([]);
      expect(validateCase(c), f).to.equal(true);
    }
  });

  it('samples use reserved example names only: .example domains, documentation IP ranges', () => {
    for (const f of sampleFiles) {
      for (const id of sample(f).identifiers ?? []) {
        if (id.kind === 'url' || id.kind === 'website')
          expect(new URL(id.value).hostname, f).to.match(/\.example$/);
        if (id.kind === 'domain' || id.kind === 'email') expect(id.value, f).to.match(/\.example$/);
        if (id.kind === 'ip') expect(id.value, f).to.match(/^(192\.0\.2|198\.51\.100|203\.0\.113)\./);
      }
    }
  });

  it('validates a typical case well under 1 ms', () => {
    const c = sample('crypto-investment.json');
    validateCase(c);
    const runs = 2000;
    const ms = elapsedMs(() => {
      for (let i = 0; i < runs; i++) validateCase(c);
    });
    expect(ms / runs).to.be.below(0.5);
  });
});

describe('case schema: vocabulary checks', () => {
  it('rejects a country code that is not in ISO 3166-1, and a lowercase one', () => {
    const p = expectProblem(
      changed((c) => {
        c.origin.country = 'XX';
      }),
      '/origin/country',
      'format',
      /ISO 3166-1 alpha-2/,
    );
    expect(p.message).to.not.include('/origin');
    expectProblem(
      changed((c) => {
        (c.parties?.[0] as { residenceCountry?: string }).residenceCountry = 'fr';
      }),
      '/parties/0/residenceCountry',
      'format',
    );
  });

  it('rejects currencies that are not ISO 4217 codes (EUR1, ABC) and the test code XTS', () => {
    for (const currency of ['EUR1', 'ABC', 'XTS', 'eur']) {
      expectProblem(
        changed((c) => {
          c.loss = { amount: '10.00', currency };
        }),
        '/loss/currency',
        'format',
        /ISO 4217/,
      );
    }
  });

  it('rejects a phone number too short for its country, and one with spaces', () => {
    expectProblem(
      changed((c) => {
        c.identifiers = [{ kind: 'phone', value: '+3361234' }];
      }),
      '/identifiers/0/value',
      'format',
      /E\.164 phone number \(too short/,
    );
    expectProblem(
      changed((c) => {
        c.identifiers = [{ kind: 'phone', value: '+33 6 12 34 56 78' }];
      }),
      '/identifiers/0/value',
      'format',
      /no spaces/,
    );
  });

  it('rejects an IBAN with a wrong check digit, naming the check that failed', () => {
    const p = expectProblem(
      changed((c) => {
        c.identifiers = [
          { kind: 'url', value: 'https://a.example/' },
          { kind: 'url', value: 'https://b.example/' },
          { kind: 'iban', value: 'DE88370400440532013000' },
        ];
      }),
      '/identifiers/2/value',
      'format',
    );
    expect(p.message).to.equal('is not a valid IBAN (check digits do not match)');
    expectProblem(
      changed((c) => {
        c.identifiers = [{ kind: 'iban', value: 'FR14 2004 1010 0505 0001 3M02 606' }];
      }),
      '/identifiers/0/value',
      'format',
      /electronic form/,
    );
  });

  it('rejects a BIC whose country part is not a country, as an identifier and beside an IBAN', () => {
    expectProblem(
      changed((c) => {
        c.identifiers = [{ kind: 'bic', value: 'DEUTXXFF' }];
      }),
      '/identifiers/0/value',
      'format',
      /BIC/,
    );
    expectProblem(
      changed((c) => {
        c.identifiers = [{ kind: 'iban', value: 'DE89370400440532013000', bic: 'COBA1EFF' }];
      }),
      '/identifiers/0/bic',
      'format',
      /BIC/,
    );
  });

  it('rejects a malformed language tag, digest, IP address and date', () => {
    expectProblem(
      changed((c) => {
        c.summary.lang = 'en_GB';
      }),
      '/summary/lang',
      'format',
      /BCP 47/,
    );
    expectProblem(
      changed((c) => {
        (c.evidence?.[0] as { sha256: string }).sha256 =
          'B59DDBD8565C5E1AACD4CF8D16C0C296B47A58081B3C939CC3C46355EE9A197E';
      }),
      '/evidence/0/sha256',
      'format',
      /SHA-256/,
    );
    expectProblem(
      changed((c) => {
        c.identifiers = [{ kind: 'ip', value: '300.1.2.3', observedAt: '2026-10-30T15:12:09Z' }];
      }),
      '/identifiers/0/value',
      'format',
      /IP address/,
    );
    expectProblem(
      changed((c) => {
        c.offencePeriod = { start: '2026-02-30' };
      }),
      '/offencePeriod/start',
      'format',
    );
  });

  it('checks concerned countries one by one, and refuses one listed twice', () => {
    expectProblem(
      changed((c) => {
        c.concernedCountries = ['DE', 'EU'];
      }),
      '/concernedCountries/1',
      'format',
      /ISO 3166-1/,
    );
    expectProblem(
      changed((c) => {
        c.concernedCountries = ['DE', 'BE', 'DE'];
      }),
      '/concernedCountries',
      'uniqueItems',
      /items 0 and 2/,
    );
  });

  it('accepts what the vocabularies allow: XK, other E.164 countries, 11-character BICs, tags with script', () => {
    const c = changed((c) => {
      c.origin.country = 'XK';
      c.summary.lang = 'sr-Latn-RS';
      c.identifiers = [
        { kind: 'phone', value: '+32470123456' },
        { kind: 'iban', value: 'FR1420041010050500013M02606', bic: 'BNPAFRPPXXX' },
        { kind: 'ip', value: '2001:db8::1', observedAt: '2026-10-30T15:12:09Z' },
      ];
      c.links = [];
      c.loss = { amount: '0.5', currency: 'CHF' };
    });
    expect(validateCase.problems(c)).to.deep.equal([]);
  });
});

describe('case schema: structure', () => {
  it('closed objects reject unknown keys, at the object that has them', () => {
    expectProblem(
      changed((c) => {
        c.priority = 'high';
      }),
      '/',
      'additionalProperties',
      /"priority"/,
    );
    expectProblem(
      changed((c) => {
        (c.origin as Record<string, unknown>).officer = 'J. Martin';
      }),
      '/origin',
      'additionalProperties',
    );
    expectProblem(
      changed((c) => {
        (c.parties?.[0] as unknown as Record<string, unknown>).birthDate = '1958-03-14';
      }),
      '/parties/0',
      'additionalProperties',
      /"birthDate"/,
    );
    expectProblem(
      changed((c) => {
        c.identifiers = [{ kind: 'url', value: 'https://a.example/', note: 'called twice' } as never];
      }),
      '/identifiers/0',
      'additionalProperties',
    );
  });

  it('checks each identifier kind against its own fields only (discriminator on kind)', () => {
    const all = problems(
      changed((c) => {
        c.identifiers = [
          { kind: 'ip', value: '203.0.113.9' } as never,
          { kind: 'crypto', value: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq' } as never,
          { kind: 'fax', value: '+33112345678' } as never,
          { value: 'x' } as never,
        ];
        c.links = [];
      }),
    );
    expect(all.map((p) => [p.location, p.rule])).to.deep.equal([
      ['/identifiers/0', 'required'],
      ['/identifiers/1', 'required'],
      ['/identifiers/2/kind', 'enum'],
      ['/identifiers/3', 'required'],
    ]);
    expect(all[0]?.message).to.include('"observedAt"');
    expect(all[1]?.message).to.include('"chain"');
  });

  it('links must name refs of the case; refs are unique; the period does not end before it starts', () => {
    expectProblem(
      changed((c) => {
        c.links?.push({ from: 's1', to: 'nobody', relation: 'uses' });
      }),
      `/links/${sample().links?.length}/to`,
      'knownRef',
    );
    expectProblem(
      changed((c) => {
        c.parties?.push({ kind: 'person', ref: 'v1', role: 'witness' });
      }),
      `/parties/${sample().parties?.length}/ref`,
      'uniqueRef',
      /\/parties\/0\/ref/,
    );
    expectProblem(
      changed((c) => {
        c.offencePeriod = { start: '2026-10-30T16:05:00+01:00', end: '2026-10-29' };
      }),
      '/offencePeriod/end',
      'periodOrder',
    );
    const sameDay = changed((c) => {
      c.offencePeriod = { start: '2026-10-30T23:30:00+01:00', end: '2026-10-30' };
    });
    expect(validateCase.problems(sameDay)).to.deep.equal([]);
  });

  it('rejects prototype keys as unknown properties and pollutes nothing', () => {
    const c = JSON.parse(
      `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},${JSON.stringify(sample()).slice(1)}`,
    );
    const all = problems(c);
    expect(all.filter((p) => p.rule === 'additionalProperties').map((p) => p.message)).to.deep.equal([
      'has the property "__proto__", which is not allowed here',
      'has the property "constructor", which is not allowed here',
    ]);
    const inItem = changed((c) => {
      c.identifiers = [JSON.parse('{"kind":"url","value":"https://a.example/","__proto__":{"x":1}}')];
    });
    expectProblem(inItem, '/identifiers/0', 'additionalProperties', /__proto__/);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(({} as Record<string, unknown>).x).to.equal(undefined);
  });
});

describe('case schema: hostile input', () => {
  const tenMb = 'a'.repeat(10 * 1024 * 1024);

  it('rejects 10 MB strings by maxLength, quickly, wherever they are', () => {
    const cases: [unknown, string][] = [
      [
        changed((c) => {
          c.summary.text = tenMb;
        }),
        '/summary/text',
      ],
      [
        changed((c) => {
          c.identifiers = [{ kind: 'url', value: `https://${tenMb}` }];
        }),
        '/identifiers/0/value',
      ],
      [
        changed((c) => {
          c.identifiers = [{ kind: 'email', value: `${tenMb}@x.example` }];
        }),
        '/identifiers/0/value',
      ],
      [
        changed((c) => {
          c.origin.country = tenMb;
        }),
        '/origin/country',
      ],
      [
        changed((c) => {
          (c.parties?.[0] as { ref: string }).ref = `v${tenMb}`;
        }),
        '/parties/0/ref',
      ],
      [
        changed((c) => {
          c.identifiers = [{ kind: 'iban', value: tenMb }];
        }),
        '/identifiers/0/value',
      ],
    ];
    for (const [c, location] of cases) {
      let all: ProblemItem[] = [];
      const ms = elapsedMs(() => {
        all = validateCase.problems(c);
      });
      expect(all, location).to.have.length(1);
      expect(all[0]?.location).to.equal(location);
      expect(all[0]?.message.length, 'message stays short').to.be.below(200);
      expect(ms, location).to.be.below(1000);
    }
  });

  it('cuts a 10 MB unknown key short in its message', () => {
    const all = problems(
      changed((c) => {
        c[tenMb] = 1;
      }),
    );
    expect(all).to.have.length(1);
    expect(all[0]?.message.length).to.be.below(120);
  });

  it('answers a deeply nested value with one type error, without recursing into it', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const all = problems(
      changed((c) => {
        (c.summary as Record<string, unknown>).text = deep;
      }),
    );
    expect(all).to.deep.equal([
      { location: '/summary/text', rule: 'type', message: 'must be of type string' },
    ]);
  });

  it('reports at most MAX_REPORTED_ERRORS for a case with a thousand bad identifiers, quickly', () => {
    const bad = changed((c) => {
      c.identifiers = Array.from({ length: 1000 }, () => ({
        kind: 'iban' as const,
        value: 'DE88370400440532013000',
      }));
      c.links = [];
    });
    let all: ProblemItem[] = [];
    const ms = elapsedMs(() => {
      all = validateCase.problems(bad);
    });
    expect(all).to.have.length(MAX_REPORTED_ERRORS);
    expect(all[0]).to.deep.equal({
      location: '/identifiers/0/value',
      rule: 'format',
      message: 'is not a valid IBAN (check digits do not match)',
    });
    expect(ms).to.be.below(1000);
  });

  it('answers tens of thousands of bad identifiers with maxItems alone, not an error per item', () => {
    // Regression: ajv merged each item's errors by copying the whole list (40,000 items: 30 s).
    const flood = changed((c) => {
      c.identifiers = Array.from({ length: 40_000 }, () => ({ kind: 'fax', value: '+33112345678' }) as never);
    });
    let all: ProblemItem[] = [];
    const ms = elapsedMs(() => {
      all = validateCase.problems(flood);
    });
    expect(all).to.deep.equal([
      { location: '/identifiers', rule: 'maxItems', message: 'must have at most 1000 items' },
    ]);
    expect(ms).to.be.below(1000);
  });

  it('names a few unknown keys one by one, and answers a flood of keys with one error', () => {
    const few = problems(
      changed((c) => {
        for (let i = 0; i < 3; i++) c[`extra${i}`] = i;
      }),
    );
    expect(few.map((p) => p.rule)).to.deep.equal([
      'additionalProperties',
      'additionalProperties',
      'additionalProperties',
    ]);
    const flood = changed((c) => {
      for (let i = 0; i < 100_000; i++) c[`k${i}`] = i;
    });
    const all = problems(flood);
    expect(all).to.have.length(1);
    expect(all[0]).to.include({ location: '/', rule: 'maxProperties' });
  });
});

describe('case schema: problem items', () => {
  it('have exactly location, rule and message, and messages never repeat the location', () => {
    const all = problems(
      changed((c) => {
        c.origin.country = 'XX';
        c.version = 0;
        c.identifiers = [{ kind: 'phone', value: '+3361234' }];
        delete (c as Partial<IcrosCase>).summary;
      }),
    );
    expect(all.length).to.be.at.least(4);
    for (const p of all) {
      expect(Object.keys(p).sort()).to.deep.equal(['location', 'message', 'rule']);
      if (p.location !== '/') expect(p.message).to.not.include(p.location);
    }
  });

  it('prefix the location only, so a caller can place the case inside a larger document', () => {
    const bad = changed((c) => {
      c.version = 0;
    });
    const direct = validateCase.problems(bad);
    expect(direct).to.deep.equal([{ location: '/version', rule: 'minimum', message: 'must be at least 1' }]);
    const prefixed = toProblemItems(
      [
        {
          instancePath: '/version',
          keyword: 'minimum',
          params: { comparison: '>=', limit: 1 },
          schemaPath: '',
        },
      ],
      '/case',
    );
    expect(prefixed).to.deep.equal([
      { location: '/case/version', rule: 'minimum', message: 'must be at least 1' },
    ]);
  });
});

describe('case schema: golden problem reports', () => {
  const dir = new URL('../fixtures/cases/', import.meta.url);
  const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('.problems.json'));

  it('has fixtures', () => {
    expect(fixtures).to.include.members(['invalid-vocabulary.json', 'invalid-links.json']);
  });

  for (const f of fixtures) {
    it(`reports exactly the expected problems for ${f}`, () => {
      const c = JSON.parse(readFileSync(new URL(f, dir), 'utf8'));
      const expected = JSON.parse(readFileSync(new URL(f.replace(/\.json$/, '.problems.json'), dir), 'utf8'));
      expect(validateCase.problems(c)).to.deep.equal(expected);
    });
  }
});
