import { expect } from 'chai';
import fc from 'fast-check';
import { eventJcs, eventPieces } from '../../src/audit/append.js';
import { canonicalJson } from '../../src/envelope/json.js';

const text = fc.string({ unit: 'grapheme', maxLength: 30 });
const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });

/** Events with any text, any JSON detail, and the given kind of prevHash. */
const events = (prevHash: fc.Arbitrary<string>) =>
  fc.record({
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    at: text,
    actor: fc.record({ kind: fc.constantFrom('user', 'partner', 'system'), id: text }),
    action: text,
    subject: fc.record({ case: text, message: text, partner: text }, { requiredKeys: [] }),
    detail: fc.dictionary(text, fc.jsonValue({ maxDepth: 3 })),
    prevHash,
  });

describe('audit event canonical JSON', () => {
  it('the hand-written top level gives the same bytes as RFC 8785 of the whole event', () => {
    fc.assert(
      fc.property(events(fc.oneof(text, hex64)), (e) => {
        expect(eventJcs(e as never)).to.equal(canonicalJson(e));
      }),
      { numRuns: 500 },
    );
  });

  it('the two pieces PostgreSQL joins around prevHash and seq give the same bytes', () => {
    fc.assert(
      fc.property(events(hex64), (e) => {
        const { jcsHead, jcsTail } = eventPieces(e as never, e.at);
        expect(`${jcsHead}${e.prevHash}","seq":${e.seq}${jcsTail}`).to.equal(canonicalJson(e));
      }),
      { numRuns: 500 },
    );
  });
});
