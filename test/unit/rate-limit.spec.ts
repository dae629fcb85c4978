import { expect } from 'chai';
import { TokenBuckets } from '../../src/api/rate-limit.js';

describe('admin rate limit (token buckets)', () => {
  it('allows a burst, then refills at perSecond and says how long to wait', () => {
    let t = 0;
    const b = new TokenBuckets(2, 3, () => t);
    expect([b.take('a'), b.take('a'), b.take('a')]).to.deep.equal([0, 0, 0]);
    expect(b.take('a')).to.equal(1);
    expect(b.take('b'), 'another key has its own bucket').to.equal(0);
    t = 500; // one request refilled
    expect(b.take('a')).to.equal(0);
    expect(b.take('a')).to.equal(1);
    t = 60_000; // capped at the burst, not 120 requests
    for (let i = 0; i < 3; i++) expect(b.take('a')).to.equal(0);
    expect(b.take('a')).to.be.greaterThan(0);
  });

  it('rounds the wait up to whole seconds for a slow refill', () => {
    const b = new TokenBuckets(0.1, 1, () => 0);
    expect(b.take('a')).to.equal(0);
    expect(b.take('a')).to.equal(10);
  });

  it('forgets idle callers once it holds too many keys, keeping the busy ones limited', () => {
    let t = 0;
    const b = new TokenBuckets(1, 1, () => t, 2);
    b.take('busy');
    b.take('idle');
    t = 5_000;
    b.take('busy'); // refilled and spent again: its bucket is empty
    b.take('new'); // over the cap: 'idle' (full again) is dropped, 'busy' (empty) is kept
    expect(b.take('busy')).to.equal(1);
  });
});
