/** The cases a gateway keeps for forwards: for a while, within a byte bound, the latest version. */
import { expect } from 'chai';
import { type CachedCase, createCaseCache, KEEP_MS } from '../../src/outbound/case-cache.js';
import type { CaseV1 } from '../../src/schema/validators.js';

const row = (id: string, version = 1): CachedCase => ({
  id,
  version,
  received_from: null,
  handling: null,
  doc: { id, version } as unknown as CaseV1,
  withdrawn_at: null,
});
const ids = (cache: ReturnType<typeof createCaseCache>, all: string[]) => all.map((id) => cache.get(id)?.id);

describe('case cache', () => {
  it('lets the oldest cases go once the bytes held exceed the bound', () => {
    const cache = createCaseCache(300);
    cache.put(row('a'), 100);
    cache.put(row('b'), 100);
    cache.put(row('c'), 100);
    cache.put(row('d'), 100);
    expect(ids(cache, ['a', 'b', 'c', 'd'])).to.deep.equal([undefined, 'b', 'c', 'd']);
    expect(cache.bytes).to.equal(300);
    cache.put(row('e'), 250); // makes room for itself: b, c and d go
    expect(ids(cache, ['b', 'c', 'd', 'e'])).to.deep.equal([undefined, undefined, undefined, 'e']);
    expect(cache.bytes).to.equal(250);
  });

  it('keeps a case for KEEP_MS from when it was kept, then lets it go', () => {
    let t = 0;
    const cache = createCaseCache(1000, KEEP_MS, () => t);
    cache.put(row('a'), 10);
    t = KEEP_MS / 2;
    cache.put(row('b'), 10);
    t = KEEP_MS;
    expect(ids(cache, ['a', 'b'])).to.deep.equal(['a', 'b']);
    t = KEEP_MS + 1;
    expect(cache.get('a')).to.equal(undefined);
    expect(cache.bytes).to.equal(10);
    t = KEEP_MS * 2;
    cache.put(row('c'), 10); // a put also lets the expired ones go: b
    expect(cache.bytes).to.equal(10);
    expect(ids(cache, ['b', 'c'])).to.deep.equal([undefined, 'c']);
  });

  it('lets expired cases go on its own when nothing else happens', async () => {
    const cache = createCaseCache(1000, 20);
    cache.put(row('a'), 10);
    await new Promise((r) => setTimeout(r, 100));
    expect(cache.bytes).to.equal(0);
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
