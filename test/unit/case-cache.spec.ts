/** The cases a gateway keeps for forwards: by bytes, least recently used first, latest version kept. */
import { expect } from 'chai';
import { type CachedCase, createCaseCache } from '../../src/outbound/case-cache.js';
import type { CaseV1 } from '../../src/schema/validators.js';

const row = (id: string, version = 1): CachedCase => ({
  id,
  version,
  received_from: null,
  handling: null,
  doc: { id, version } as unknown as CaseV1,
  withdrawn_at: null,
});

describe('case cache', () => {
  it('evicts the least recently used cases once the bytes held exceed the bound', () => {
    const cache = createCaseCache(300);
    cache.put(row('a'), 100);
    cache.put(row('b'), 100);
    cache.put(row('c'), 100);
    expect(cache.get('a')?.id).to.equal('a'); // a is now the most recently used
    cache.put(row('d'), 100);
    expect(cache.get('b')).to.equal(undefined);
    expect(['a', 'c', 'd'].map((id) => cache.get(id)?.id)).to.deep.equal(['a', 'c', 'd']);
    expect(cache.bytes).to.equal(300);
    cache.put(row('e'), 250); // makes room for itself: a, c and d go
    expect(['a', 'c', 'd', 'e'].map((id) => cache.get(id)?.id)).to.deep.equal([
      undefined,
      undefined,
      undefined,
      'e',
    ]);
    expect(cache.bytes).to.equal(250);
  });

  it('keeps the latest version of a case, whatever order they come in', () => {
    const cache = createCaseCache(1000);
    cache.put(row('a', 2), 10);
    cache.put(row('a', 1), 10);
    expect(cache.get('a')?.version).to.equal(2);
    cache.put(row('a', 3), 20);
    expect(cache.get('a')?.version).to.equal(3);
    expect(cache.bytes).to.equal(20);
    cache.drop('a');
    expect(cache.get('a')).to.equal(undefined);
    expect(cache.bytes).to.equal(0);
  });

  it('keeps nothing larger than the bound, and nothing at all with a bound of 0', () => {
    const small = createCaseCache(50);
    small.put(row('a'), 51);
    expect(small.get('a')).to.equal(undefined);
    const none = createCaseCache(0);
    none.put(row('a'));
    expect(none.get('a')).to.equal(undefined);
    const sized = createCaseCache(1000);
    sized.put(row('abc')); // measured: {"id":"abc","version":1}
    expect(sized.bytes).to.equal(JSON.stringify({ id: 'abc', version: 1 }).length);
  });
});
