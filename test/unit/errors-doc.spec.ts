import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ERRORS, IcrosError, problemType, toProblem } from '../../src/errors.js';

describe('error registry', () => {
  it('docs/errors.md lists exactly the registered codes with their HTTP status', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = new Map<string, number>();
    for (const line of doc.split('\n')) {
      const m = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
      if (m) {
        expect(rows.has(m[1]!), `${m[1]} documented twice`).to.equal(false);
        rows.set(m[1]!, Number(m[2]));
      }
    }
    const registry = new Map(Object.entries(ERRORS).map(([code, e]) => [code, e.status as number]));
    expect([...rows.keys()].sort()).to.deep.equal([...registry.keys()].sort());
    for (const [code, status] of registry) expect(rows.get(code), code).to.equal(status);
  });

  it('renders RFC 9457 problems with the code, and hides unknown errors as INTERNAL', () => {
    const p = toProblem(
      new IcrosError('JWS_KID_UNKNOWN', 'kid "x" is not registered'),
      'urn:icros:request:1',
    );
    expect(p).to.deep.include({
      status: 401,
      code: 'JWS_KID_UNKNOWN',
      detail: 'kid "x" is not registered',
      type: problemType('JWS_KID_UNKNOWN'),
    });
    const hidden = toProblem(new Error('password=hunter2 in a stack'));
    expect(hidden.code).to.equal('INTERNAL');
    expect(JSON.stringify(hidden)).to.not.include('hunter2');
  });
});
