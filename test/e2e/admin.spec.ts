import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { type Federation, startFederation } from '../helpers/federation.js';

describe('e2e admin API (pglite)', () => {
  let fed: Federation;
  let url: string;
  before(async () => {
    fed = await startFederation('pglite', ['FR', 'DE'], { FR: { noWorker: true } });
    url = fed.gateways.FR!.adminUrl;
  });
  after(async () => fed?.stop());

  it('401 without a token or with an unknown one, 403 for the wrong role', async () => {
    expect((await admin(url, undefined, 'GET', '/api/messages')).json.code).to.equal('AUTH_REQUIRED');
    expect((await admin(url, 'icros_nope', 'GET', '/api/messages')).json.code).to.equal('AUTH_INVALID');
    const r = await admin(url, token(fed.pki, 'FR', 'auditor'), 'GET', '/api/messages');
    expect(r.status).to.equal(403);
    expect(r.json.code).to.equal('ROLE_FORBIDDEN');
    expect(r.headers.get('x-request-id')).to.be.a('string');
  });

  it('ingests valid cases and reports invalid ones by index with located errors', async () => {
    const good = sampleCase();
    const bad = sampleCase({ version: 'one' });
    const r = await admin(url, token(fed.pki, 'FR'), 'POST', '/api/reports?format=icros-case', [good, bad]);
    expect(r.status).to.equal(201);
    expect(r.json.accepted).to.have.length(1);
    expect(r.json.rejected[0].index).to.equal(1);
    expect(r.json.rejected[0].errors[0].location).to.equal('/1/version');
    const none = await admin(url, token(fed.pki, 'FR'), 'POST', '/api/reports', [bad]);
    expect(none.status).to.equal(422);
    expect(none.json.code).to.equal('REPORT_INVALID');
    const foreign = await admin(
      url,
      token(fed.pki, 'FR'),
      'POST',
      '/api/reports',
      sampleCase({ origin: { country: 'DE', agency: 'BKA', reference: 'x' } }),
    );
    expect(foreign.status).to.equal(422);
    expect(foreign.json.errors[0].location).to.equal('/origin/country');
  });

  it('ingests a PHAROS export: each report converted and stored, a bad one located in the national file', async () => {
    const t = token(fed.pki, 'FR');
    const doc = JSON.parse(readFileSync('schemas/national/fr-pharos/samples/export.input.json', 'utf8'));
    doc.signalements[1].prejudice.devise = 'EURO';
    const r = await admin(url, t, 'POST', '/api/reports?format=fr-pharos', doc);
    expect(r.status, JSON.stringify(r.json)).to.equal(201);
    expect(r.json.accepted).to.have.length(1);
    expect(r.json.accepted[0].status).to.equal('created');
    expect(r.json.rejected[0].index).to.equal(1);
    expect(r.json.rejected[0].errors[0].location).to.equal('/signalements/1/prejudice/devise');
    const exported = await admin(
      url,
      t,
      'GET',
      `/api/cases/${r.json.accepted[0].id}/export?format=fr-pharos&purpose=test`,
    );
    expect(exported.status).to.equal(200);
    expect(exported.json).to.deep.equal(doc.signalements[0]);
    expect(
      (await admin(url, t, 'GET', `/api/cases/${r.json.accepted[0].id}/export?format=xx`)).json.code,
    ).to.equal('FORMAT_UNSUPPORTED');
    // The same report again is recognised (its case id derives from the PHAROS number).
    const again = await admin(url, t, 'POST', '/api/reports?format=fr-pharos', doc.signalements[0]);
    expect(again.json.accepted[0]).to.deep.include({ id: r.json.accepted[0].id, status: 'unchanged' });
  });

  it('ingests a PHAROS spreadsheet and exports a case in every format with its media type', async () => {
    const t = token(fed.pki, 'FR');
    const csv = readFileSync('schemas/national/fr-pharos-csv/samples/windows-1252.input.csv');
    const posted = await fetch(`${url}/api/reports?format=fr-pharos-csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t}`, 'content-type': 'text/csv' },
      body: new Uint8Array(csv),
    });
    const r = (await posted.json()) as { accepted: { id: string }[] };
    expect(posted.status, JSON.stringify(r)).to.equal(201);
    const id = r.accepted[0]!.id;
    const expected = {
      'fr-pharos-csv': ['text/csv; charset=utf-8', 'PHAROS-2026-004633;21/03/2026 08:05'],
      'de-xml': ['application/xml', '<Herkunftsstaat>FR</Herkunftsstaat>'],
      'stix-2.1': ['application/stix+json;version=2.1', `"report--${id}"`],
      misp: ['application/json; charset=utf-8', `"uuid": "${id}"`],
      'icros-case': ['application/json; charset=utf-8', '"sourceFormat": "fr-pharos-csv"'],
    };
    for (const [format, [type, text]] of Object.entries(expected)) {
      const res = await fetch(`${url}/api/cases/${id}/export?format=${format}&purpose=test`, {
        headers: { authorization: `Bearer ${t}` },
      });
      expect(res.status, format).to.equal(200);
      expect(res.headers.get('content-type'), format).to.equal(type);
      const body = await res.text();
      expect(body, format).to.contain(text);
      if (format === 'fr-pharos-csv') expect(body).to.contain('900 € en bitcoins').and.contain("l'œuvre");
    }
  });

  it('rejects bad bodies and formats with their codes, never a 500', async () => {
    const t = token(fed.pki, 'FR');
    expect((await admin(url, t, 'POST', '/api/reports', '{not json')).json.code).to.equal('BODY_MALFORMED');
    expect((await admin(url, t, 'POST', '/api/reports?format=nope', '{}')).json.code).to.equal(
      'FORMAT_UNSUPPORTED',
    );
    expect((await admin(url, t, 'POST', '/api/reports', '{"__proto__":{"x":1}}')).json.code).to.equal(
      'PAYLOAD_FORBIDDEN_KEY',
    );
    expect((await admin(url, t, 'GET', '/api/cases/not-a-uuid')).json.code).to.equal('CASE_NOT_FOUND');
    expect((await admin(url, t, 'GET', '/api/nothing')).json.code).to.equal('NOT_FOUND');
  });

  it('refuses a forward to an unknown partner or without handling, and queues a valid one', async () => {
    const t = token(fed.pki, 'FR');
    const c = sampleCase();
    await admin(url, t, 'POST', '/api/reports', c);
    const unknown = await admin(url, t, 'POST', `/api/cases/${c.id}/forward`, {
      to: ['XX'],
      handling: HANDLING,
    });
    expect(unknown.json.code).to.equal('FORWARD_PARTNER_UNKNOWN');
    const noHandling = await admin(url, t, 'POST', `/api/cases/${c.id}/forward`, { to: ['DE'] });
    expect(noHandling.status).to.equal(400);
    expect(noHandling.json.errors.map((e: { location: string }) => e.location)).to.include('/');
    const ok = await admin(url, t, 'POST', `/api/cases/${c.id}/forward`, {
      to: ['DE', 'DE'],
      handling: HANDLING,
    });
    expect(ok.status).to.equal(202);
    expect(ok.json.messages).to.have.length(1);
    const listed = await admin(url, t, 'GET', `/api/messages?state=queued&case=${c.id}`);
    expect(listed.json.messages.map((m: { id: string }) => m.id)).to.deep.equal([ok.json.messages[0].id]);
  });

  it('refuses unknown or malformed message filters instead of ignoring them', async () => {
    const t = token(fed.pki, 'FR');
    expect((await admin(url, t, 'GET', '/api/messages?case=nope')).json.code).to.equal('REQUEST_INVALID');
    expect((await admin(url, t, 'GET', '/api/messages?state=lost')).json.code).to.equal('REQUEST_INVALID');
    expect((await admin(url, t, 'GET', '/api/messages?colour=red')).json.code).to.equal('REQUEST_INVALID');
    expect((await admin(url, t, 'GET', '/api/messages?limit=0')).json.code).to.equal('REQUEST_INVALID');
  });

  it('pages messages with a cursor', async () => {
    const t = token(fed.pki, 'FR');
    const page1 = await admin(url, t, 'GET', '/api/messages?limit=1');
    expect(page1.json.messages).to.have.length(1);
    expect(page1.json.next).to.be.a('string');
    const page2 = await admin(url, t, 'GET', `/api/messages?limit=1&cursor=${page1.json.next}`);
    expect(page2.status, JSON.stringify(page2.json)).to.equal(200);
    expect((await admin(url, t, 'GET', '/api/messages?cursor=garbage')).json.code).to.equal(
      'REQUEST_INVALID',
    );
  });

  it('never skips a message at a page boundary, even when several share a millisecond', async () => {
    const t = token(fed.pki, 'FR');
    const c = crypto.randomUUID();
    const ids = [1, 2, 3].map(() => crypto.randomUUID());
    for (const [i, id] of ids.entries()) {
      await fed.gateways.FR!.ctx.db.query(
        `INSERT INTO messages (id, direction, peer, type, case_id, jws, digest, state, created_at)
         VALUES ($1, 'out', 'DE', 'case.transfer', $2, 'x', 'd', 'dead', '2026-01-02T03:04:05.123Z'::timestamptz + $3 * interval '1 microsecond')`,
        [id, c, 100 * (i + 1)],
      );
    }
    const seen: string[] = [];
    let next: string | null = null;
    do {
      const page = await admin(
        url,
        t,
        'GET',
        `/api/messages?case=${c}&limit=1${next ? `&cursor=${next}` : ''}`,
      );
      expect(page.status, JSON.stringify(page.json)).to.equal(200);
      seen.push(...page.json.messages.map((m: { id: string }) => m.id));
      next = page.json.next;
    } while (next && seen.length < 10);
    expect(seen).to.deep.equal([...ids].reverse());
  });
});
