import { expect } from 'chai';
import fc from 'fast-check';
import { eventJcs } from '../../src/audit/append.js';
import { canonicalJson } from '../../src/envelope/json.js';

describe('audit event canonical JSON', () => {
  it('the hand-written top level gives the same bytes as RFC 8785 of the whole event', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 30 });
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          at: text,
          actor: fc.record({ kind: fc.constantFrom('user', 'partner', 'system'), id: text }),
          action: text,
          subject: fc.record({ case: text, message: text, partner: text }, { requiredKeys: [] }),
          detail: fc.dictionary(text, fc.jsonValue({ maxDepth: 3 })),
          prevHash: text,
        }),
        (e) => {
          expect(eventJcs(e as never)).to.equal(canonicalJson(e));
        },
      ),
      { numRuns: 500 },
    );
  });
});
