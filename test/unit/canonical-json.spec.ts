/**
 * RFC 8785 (JCS): the bytes every signature and audit hash is computed over. A change here
 * would break every signature a partner holds, so the serializer is checked against the RFC's
 * own examples and, on generated values, byte for byte against the `canonicalize` package
 * the gateway used before (a dev dependency kept as the oracle).
 */

import canonicalizeModule from 'canonicalize';
import { expect } from 'chai';
import fc from 'fast-check';
import { canonicalJson } from '../../src/envelope/json.js';
import { IcrosError } from '../../src/errors.js';

// canonicalize 2 is CommonJS (`module.exports = fn`) while its types declare a default export.
const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ??
  canonicalizeModule) as unknown as (value: unknown) => string | undefined;

/** An IEEE 754 double from its 16 hex digits (RFC 8785 Appendix B lists them so). */
function fromBits(hex: string): number {
  const b = Buffer.from(hex, 'hex');
  return b.readDoubleBE(0);
}

describe('canonical JSON (RFC 8785)', () => {
  it('serializes the example of §3.2.2: numbers, escapes and literals', () => {
    const input = JSON.parse(
      '{"numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalJson(input)).to.equal(
      '{"literals":[null,true,false],"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units, as in §3.2.3 (not by code point, not by locale)', () => {
    const input = JSON.parse(
      '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",' +
        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",' +
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}',
    );
    const out = canonicalJson(input);
    // U+1F600 is the surrogate pair D83D DE00: before U+FB33 in UTF-16, after it by code point.
    expect(out.indexOf('\ud83d\ude00')).to.be.below(out.indexOf('\ufb33'));
    expect(out).to.equal(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('writes numbers as ECMAScript does (RFC 8785 Appendix B)', () => {
    const samples: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'], // minus zero
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, text] of samples) expect(canonicalJson([fromBits(bits)]), bits).to.equal(`[${text}]`);
  });

  it('refuses what JSON cannot carry, with an error that says what', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      { n: Number.NEGATIVE_INFINITY },
      1n,
      { f: () => 1 },
      cyclic,
    ]) {
      expect(() => canonicalJson(bad), String(bad)).to.throw(IcrosError, /canonical JSON/);
    }
    expect(() => canonicalJson(undefined)).to.throw(IcrosError, /no JSON form/);
  });

  it('drops undefined members and writes undefined array items as null, as JSON.stringify does', () => {
    expect(canonicalJson({ b: undefined, a: [undefined, 1] })).to.equal('{"a":[null,1]}');
    expect(canonicalJson({ at: new Date('2026-11-30T06:00:00.000Z') })).to.equal(
      '{"at":"2026-11-30T06:00:00.000Z"}',
    );
  });

  it('gives the same bytes as the canonicalize package on generated JSON values', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 12 });
    const value = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.integer(),
        text,
        fc.array(tie('value'), { maxLength: 6 }),
        fc.dictionary(fc.oneof(text, fc.string({ unit: 'binary', maxLength: 6 })), tie('value'), {
          maxKeys: 6,
        }),
      ),
    })).value;
    fc.assert(
      fc.property(value, (v) => {
        const ours = canonicalJson(v);
        expect(ours).to.equal(canonicalize(v));
        // Canonical text parses back and canonicalizes to itself.
        expect(canonicalJson(JSON.parse(ours))).to.equal(ours);
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the same bytes as the canonicalize package on the sample cases', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const dir = new URL('../../schemas/icros-case/samples/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).to.be.above(0);
    for (const f of files) {
      const doc = JSON.parse(readFileSync(new URL(f, dir), 'utf8'));
      expect(canonicalJson(doc), f).to.equal(canonicalize(doc));
    }
  });
});
