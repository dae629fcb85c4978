import { expect } from 'chai';
import { backoffDelay } from '../../src/outbound/backoff.js';

describe('backoff', () => {
  it('doubles from the base, between half and all of the schedule', () => {
    expect(backoffDelay(1, 500, 300_000, 0)).to.equal(250);
    expect(backoffDelay(1, 500, 300_000, 1)).to.equal(500);
    expect(backoffDelay(4, 500, 300_000, 1)).to.equal(4000);
    expect(backoffDelay(4, 500, 300_000, 0)).to.equal(2000);
  });

  it('never exceeds the cap, even for huge attempt numbers', () => {
    for (const a of [20, 100, 10_000]) expect(backoffDelay(a, 500, 300_000, 1)).to.equal(300_000);
  });
});
