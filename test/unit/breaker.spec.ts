import { expect } from 'chai';
import { CircuitBreaker } from '../../src/outbound/breaker.js';

describe('circuit breaker', () => {
  let t = 0;
  const now = () => t;

  it('opens after the threshold of consecutive transient failures, not before', () => {
    t = 0;
    const b = new CircuitBreaker(3, 1000, now);
    expect(b.record('transient')).to.equal(undefined);
    expect(b.record('transient')).to.equal(undefined);
    expect(b.allows()).to.equal(true);
    expect(b.record('transient')).to.equal('open');
    expect(b.allows()).to.equal(false);
    expect(b.record('transient'), 'already open: no second transition').to.equal(undefined);
  });

  it('counts only consecutive failures: a success or a permanent answer resets the count', () => {
    const b = new CircuitBreaker(2, 1000, now);
    b.record('transient');
    b.record('success');
    b.record('transient');
    b.record('permanent');
    expect(b.record('transient')).to.equal(undefined);
    expect(b.snapshot().consecutiveFailures).to.equal(1);
  });

  it('probes at its interval while open, stays open on a failed probe, closes on a good one', () => {
    t = 10_000;
    const b = new CircuitBreaker(1, 1000, now);
    b.record('transient');
    expect(b.probeDue()).to.equal(false);
    t += 1000;
    expect(b.probeDue()).to.equal(true);
    expect(b.probed('GET /v1/ping answered 503')).to.equal(undefined);
    expect(b.snapshot()).to.deep.include({ state: 'open', lastProbeError: 'GET /v1/ping answered 503' });
    expect(b.probeDue()).to.equal(false);
    t += 999;
    expect(b.probeDue()).to.equal(false);
    t += 1;
    expect(b.probed(undefined)).to.equal('closed');
    expect(b.allows()).to.equal(true);
    expect(b.snapshot().consecutiveFailures).to.equal(0);
    expect(b.probeDue(), 'closed circuits are not probed').to.equal(false);
  });

  it("adopts another replica's opening (as of its time) and its closing", () => {
    t = 50_000;
    const b = new CircuitBreaker(3, 1000, now);
    b.record('transient');
    expect(b.adopt(49_500)).to.equal('open');
    expect(b.allows()).to.equal(false);
    expect(b.snapshot().openedAt).to.equal(new Date(49_500).toISOString());
    expect(b.openedSince).to.equal(49_500);
    expect(b.adopt(49_900), 'already open: keeps its own time').to.equal(undefined);
    expect(b.openedSince).to.equal(49_500);
    t = 50_500;
    expect(b.probeDue(), 'the interval runs from the opening it adopted').to.equal(true);
    expect(b.reset()).to.equal('closed');
    expect(b.allows()).to.equal(true);
    expect(b.snapshot().consecutiveFailures).to.equal(0);
    expect(b.reset(), 'already closed').to.equal(undefined);
  });
});
