/**
 * The case routes on a real FR → DE, BE federation over mTLS: listing with filters, paging
 * and audit; withdrawal reaching every partner that was sent the case, after the transfer it
 * retracts; handling codes at egress (received H2 / TLP:RED not forwarded, H1 exports
 * marked); a purpose on every forward, export and withdrawal.
 */
import { expect } from 'chai';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { dbKinds } from '../helpers/db.js';
import { type Federation, startFederation } from '../helpers/federation.js';
import { waitFor as waitForMs } from '../helpers/wait.js';

const waitFor = <T>(what: string, fn: () => Promise<T | undefined>) => waitForMs(what, fn, 20_000);

for (const kind of dbKinds()) {
  describe(`e2e cases: list, withdraw, handling at egress (${kind})`, () => {
    let fed: Federation;
    const url = (cc: string) => fed.gateways[cc]!.adminUrl;
    const t = (cc: string, role: 'analyst' | 'auditor' = 'analyst') => token(fed.pki, cc, role);
    const call = (cc: string, method: string, p: string, body?: unknown) =>
      admin(url(cc), t(cc), method, p, body);

    /** Ingest a fresh case at FR and return it. */
    async function ingest(overrides: Record<string, unknown> = {}) {
      const c = sampleCase(overrides);
      const r = await call('FR', 'POST', '/api/reports', c);
      expect(r.status, JSON.stringify(r.json)).to.equal(201);
      return c;
    }

    async function forward(cc: string, id: string, to: string[], handling: object = HANDLING) {
      const r = await call(cc, 'POST', `/api/cases/${id}/forward`, { to, handling });
      expect(r.status, JSON.stringify(r.json)).to.equal(202);
      return r.json.messages as { id: string; to: string }[];
    }

    async function delivered(cc: string, id: string) {
      // FR starts without its worker (the ordering test queues behind a waiting transfer);
      // whoever waits for a delivery first starts it (start() is idempotent).
      fed.gateways.FR!.queue.start();
      return waitFor(`message ${id} delivered`, async () => {
        const m = await call(cc, 'GET', `/api/messages/${id}`);
        return m.json.state === 'delivered' ? m.json : undefined;
      });
    }

    before(async () => {
      // FR's worker starts at the first wait for a delivery (see delivered()).
      fed = await startFederation(kind, ['FR', 'DE', 'BE'], { FR: { noWorker: true } });
    });
    after(async () => fed?.stop());

    it('queues a withdrawal behind a still-queued transfer, and DE stores it withdrawn after the transfer', async () => {
      const c = await ingest();
      const [transfer] = await forward('FR', c.id, ['DE']);
      const w = await call('FR', 'POST', `/api/cases/${c.id}/withdraw`, { purpose: 'Duplicate report' });
      expect(w.status, JSON.stringify(w.json)).to.equal(202);
      expect(w.json.messages).to.have.length(1);
      expect(w.json.messages[0]).to.include({ to: 'DE', state: 'queued' });
      const withdrawal = w.json.messages[0].id as string;
      const [row] = await fed.gateways.FR!.ctx.db.query<{ predecessor: string; type: string }>(
        "SELECT predecessor, type FROM messages WHERE direction = 'out' AND id = $1",
        [withdrawal],
      );
      expect(row).to.deep.equal({ predecessor: transfer!.id, type: 'case.withdraw' });

      const [a, b] = [await delivered('FR', transfer!.id), await delivered('FR', withdrawal)];
      expect(Date.parse(a.delivered_at)).to.be.at.most(Date.parse(b.delivered_at));
      const atDe = await call('DE', 'GET', `/api/cases/${c.id}`);
      expect(atDe.json.received_from).to.equal('FR');
      expect(atDe.json.withdrawn_at).to.be.a('string');
      const inbound = await fed.gateways.DE!.ctx.db.query<{ id: string }>(
        "SELECT id FROM messages WHERE direction = 'in' AND case_id = $1 ORDER BY seq",
        [c.id],
      );
      expect(inbound.map((m) => m.id)).to.deep.equal([transfer!.id, withdrawal]);
    });

    it('withdraws to every partner that was sent the case; both mark it withdrawn; FR refuses to forward or withdraw it again', async () => {
      const c = await ingest();
      const sent = [...(await forward('FR', c.id, ['DE'])), ...(await forward('FR', c.id, ['BE']))];
      for (const m of sent) await delivered('FR', m.id);
      const w = await call('FR', 'POST', `/api/cases/${c.id}/withdraw`, {
        purpose: 'Report retracted by the victim',
        reason: 'filed twice',
      });
      expect(w.status, JSON.stringify(w.json)).to.equal(202);
      expect(w.json.messages.map((m: { to: string }) => m.to).sort()).to.deep.equal(['BE', 'DE']);
      for (const m of w.json.messages) await delivered('FR', m.id);
      for (const cc of ['DE', 'BE']) {
        const atPartner = await call(cc, 'GET', `/api/cases/${c.id}`);
        expect(atPartner.json.withdrawn_at, cc).to.be.a('string');
        const listed = await call(cc, 'GET', '/api/cases?withdrawn=true&receivedFrom=FR');
        expect(
          listed.json.cases.map((x: { id: string }) => x.id),
          cc,
        ).to.include(c.id);
      }
      const local = await call('FR', 'GET', `/api/cases/${c.id}`);
      expect(local.json.withdrawn_at).to.be.a('string');

      const again = await call('FR', 'POST', `/api/cases/${c.id}/withdraw`, { purpose: 'again' });
      expect(again.status).to.equal(409);
      expect(again.json.code).to.equal('CASE_WITHDRAWN');
      const fwd = await call('FR', 'POST', `/api/cases/${c.id}/forward`, { to: ['DE'], handling: HANDLING });
      expect(fwd.status).to.equal(409);
      expect(fwd.json.code).to.equal('CASE_WITHDRAWN');

      const events = await admin(
        url('FR'),
        t('FR', 'auditor'),
        'GET',
        `/api/audit?action=case.withdrawn&case=${c.id}`,
      );
      expect(events.json.events).to.have.length(1);
      expect(events.json.events[0].detail).to.deep.include({
        purpose: 'Report retracted by the victim',
        reason: 'filed twice',
        partners: ['BE', 'DE'],
      });
    });

    it('a forward racing a withdrawal is either refused or withdrawn too, never missed', async () => {
      for (let i = 0; i < 6; i++) {
        const c = await ingest();
        await forward('FR', c.id, ['DE']);
        const [fwd, w] = await Promise.all([
          call('FR', 'POST', `/api/cases/${c.id}/forward`, { to: ['BE'], handling: HANDLING }),
          call('FR', 'POST', `/api/cases/${c.id}/withdraw`, { purpose: 'race' }),
        ]);
        expect(w.status, JSON.stringify(w.json)).to.equal(202);
        const to = w.json.messages.map((m: { to: string }) => m.to).sort();
        if (fwd.status === 202) expect(to, `round ${i}`).to.deep.equal(['BE', 'DE']);
        else {
          expect(fwd.json.code, `round ${i}`).to.equal('CASE_WITHDRAWN');
          expect(to, `round ${i}`).to.deep.equal(['DE']);
        }
      }
    });

    it('refuses to withdraw a case we received (only its origin can), and one never sent is withdrawn locally', async () => {
      const c = await ingest();
      const [m] = await forward('FR', c.id, ['DE']);
      await delivered('FR', m!.id);
      const r = await call('DE', 'POST', `/api/cases/${c.id}/withdraw`, { purpose: 'cleanup' });
      expect(r.status).to.equal(403);
      expect(r.json.code).to.equal('WITHDRAW_NOT_ORIGIN');
      expect(r.json.detail).to.include('FR');

      const lonely = await ingest();
      const w = await call('FR', 'POST', `/api/cases/${lonely.id}/withdraw`, {
        purpose: 'entered by mistake',
      });
      expect(w.status).to.equal(202);
      expect(w.json.messages).to.deep.equal([]);
      expect((await call('FR', 'GET', `/api/cases/${lonely.id}`)).json.withdrawn_at).to.be.a('string');
      expect(
        (await call('FR', 'POST', `/api/cases/${crypto.randomUUID()}/withdraw`, { purpose: 'x' })).json.code,
      ).to.equal('CASE_NOT_FOUND');
    });

    it('refuses to forward onward a case received under H2 or TLP:RED, naming the code and the sender; H3/AMBER passes', async () => {
      const received: Record<string, string> = {};
      const handlings = {
        h2: { ...HANDLING, code: 'H2', tlp: 'AMBER' },
        red: { ...HANDLING, code: 'H1', tlp: 'RED' },
        h3: { ...HANDLING, code: 'H3', tlp: 'AMBER' },
        // The envelope says H3, but the case's own handling (the origin's default) says H2.
        caseH2: { ...HANDLING, code: 'H3', tlp: 'AMBER' },
      };
      for (const [name, handling] of Object.entries(handlings)) {
        const c = await ingest(name === 'caseH2' ? { handling: { tlp: 'AMBER', code: 'H2' } } : {});
        const [m] = await forward('FR', c.id, ['DE'], handling);
        await delivered('FR', m!.id);
        received[name] = c.id;
      }
      for (const name of ['h2', 'red', 'caseH2']) {
        const r = await call('DE', 'POST', `/api/cases/${received[name]}/forward`, {
          to: ['BE'],
          handling: HANDLING,
        });
        expect(r.status, name).to.equal(403);
        expect(r.json.code, name).to.equal('HANDLING_FORBIDS_FORWARD');
        expect(r.json.detail, name)
          .to.include('FR')
          .and.include(name === 'red' ? 'TLP:RED' : 'H2');
      }
      const none = await call('DE', 'GET', `/api/messages?direction=out&partner=BE&case=${received.h2}`);
      expect(none.json.messages).to.deep.equal([]);
      // Onward only under handling as strict as it came with: TLP no lower, the provider's code kept.
      const lower = await call('DE', 'POST', `/api/cases/${received.h3}/forward`, {
        to: ['BE'],
        handling: { ...HANDLING, code: 'H3', tlp: 'GREEN' },
      });
      expect(lower.status).to.equal(400);
      expect(lower.json.errors[0].location).to.equal('/handling/tlp');
      const otherCode = await call('DE', 'POST', `/api/cases/${received.h3}/forward`, {
        to: ['BE'],
        handling: { ...HANDLING, code: 'H0', tlp: 'AMBER+STRICT' },
      });
      expect(otherCode.json.errors[0].location).to.equal('/handling/code');
      const ok = await call('DE', 'POST', `/api/cases/${received.h3}/forward`, {
        to: ['BE'],
        handling: { ...HANDLING, code: 'H3', tlp: 'AMBER+STRICT' },
      });
      expect(ok.status, JSON.stringify(ok.json)).to.equal(202);
      // FR, the origin, may forward its own H2 case.
      await forward('FR', received.h2!, ['BE']);
    });

    it('requires a purpose on forward, export and withdrawal, located at the field, and audits it', async () => {
      const c = await ingest();
      const { purpose: _p, ...noPurpose } = HANDLING;
      const f = await call('FR', 'POST', `/api/cases/${c.id}/forward`, { to: ['DE'], handling: noPurpose });
      expect(f.status).to.equal(400);
      expect(f.json.code).to.equal('REQUEST_INVALID');
      expect(f.json.errors[0].location).to.equal('/handling/purpose');
      // A top-level purpose is accepted in place of handling.purpose.
      const top = await call('FR', 'POST', `/api/cases/${c.id}/forward`, {
        to: ['DE'],
        handling: noPurpose,
        purpose: 'Joint investigation',
      });
      expect(top.status, JSON.stringify(top.json)).to.equal(202);
      const clash = await call('FR', 'POST', `/api/cases/${c.id}/forward`, {
        to: ['DE'],
        handling: HANDLING,
        purpose: 'Something else',
      });
      expect(clash.json.errors[0].location).to.equal('/purpose');

      const e = await call('FR', 'GET', `/api/cases/${c.id}/export?format=icros-case`);
      expect(e.status).to.equal(400);
      expect(e.json.errors[0].location).to.equal('?purpose');
      const blank = await call('FR', 'GET', `/api/cases/${c.id}/export?purpose=%20`);
      expect(blank.json.code).to.equal('REQUEST_INVALID');
      const ok = await call('FR', 'GET', `/api/cases/${c.id}/export?purpose=Court%20file%2042`);
      expect(ok.status).to.equal(200);

      const w = await call('FR', 'POST', `/api/cases/${c.id}/withdraw`, { reason: 'x' });
      expect(w.status).to.equal(400);
      expect(w.json.errors[0].location).to.equal('/purpose');
      const extra = await call('FR', 'POST', `/api/cases/${c.id}/withdraw`, { purpose: 'x', to: ['DE'] });
      expect(extra.json.errors[0].location).to.equal('/to');

      const auditor = t('FR', 'auditor');
      const exported = await admin(url('FR'), auditor, 'GET', `/api/audit?action=case.exported&case=${c.id}`);
      expect(
        exported.json.events.map((x: { detail: { purpose: string } }) => x.detail.purpose),
      ).to.deep.equal(['Court file 42']);
      const fwd = await admin(url('FR'), auditor, 'GET', `/api/audit?action=case.forwarded&case=${c.id}`);
      expect(fwd.json.events[0].detail.purpose).to.equal('Joint investigation');
    });

    it('marks H1 exports: headers on every format, and inside the document where the format has a place', async () => {
      const c = await ingest();
      const [m] = await forward('FR', c.id, ['DE'], { ...HANDLING, code: 'H1', tlp: 'AMBER' });
      await delivered('FR', m!.id);
      const expected: Record<string, string[]> = {
        'icros-case': ['"handling": {', '"code": "H1"'],
        'de-xml': ['<Weitergabe TLP="AMBER" Code="H1"'],
        'stix-2.1': ['"handling_code": "H1"', 'marking-definition--'],
        misp: ['icros:handling-code=\\"H1\\"', 'tlp:amber'],
        'fr-pharos': [],
      };
      for (const [format, needles] of Object.entries(expected)) {
        const res = await fetch(
          `${url('DE')}/api/cases/${c.id}/export?format=${format}&purpose=Prosecution%20request`,
          {
            headers: { authorization: `Bearer ${t('DE')}` },
          },
        );
        const text = await res.text();
        expect(res.status, `${format}: ${text.slice(0, 300)}`).to.equal(200);
        expect(res.headers.get('icros-handling'), format).to.equal('H1');
        expect(res.headers.get('icros-tlp'), format).to.equal('AMBER');
        for (const n of needles) expect(text, format).to.include(n);
      }
      // Our own case with no handling at all carries no marking.
      const plain = await ingest({ handling: undefined });
      const res = await call('FR', 'GET', `/api/cases/${plain.id}/export?purpose=x`);
      expect(res.headers.get('icros-handling')).to.equal(null);
    });

    it('lists the latest version of each case with filters and cursor paging, and audits the listing', async () => {
      const mine = [await ingest(), await ingest(), await ingest()];
      const v2 = { ...mine[0]!, version: 2 };
      expect((await call('FR', 'POST', '/api/reports', v2)).status).to.equal(201);

      const all: { id: string; version: number; origin: { country: string }; receivedFrom: null }[] = [];
      let next: string | null = null;
      let pages = 0;
      do {
        const r = await call(
          'FR',
          'GET',
          `/api/cases?limit=2&receivedFrom=none${next ? `&cursor=${next}` : ''}`,
        );
        expect(r.status, JSON.stringify(r.json)).to.equal(200);
        expect(r.json.cases.length).to.be.at.most(2);
        all.push(...r.json.cases);
        next = r.json.next;
        pages++;
      } while (next);
      expect(pages).to.be.greaterThan(1);
      const ids = all.map((x) => x.id);
      expect(new Set(ids).size, 'no case twice across pages').to.equal(ids.length);
      for (const c of mine) expect(ids).to.include(c.id);
      expect(all.find((x) => x.id === mine[0]!.id)!.version).to.equal(2);
      expect(all.every((x) => x.receivedFrom === null && x.origin.country === 'FR')).to.equal(true);

      const first = all.find((x) => x.id === mine[1]!.id)!;
      expect(first).to.have.keys(
        'id',
        'version',
        'origin',
        'receivedFrom',
        'handling',
        'digest',
        'createdAt',
        'withdrawnAt',
        'erased',
      );
      const withdrawn = await call('FR', 'GET', '/api/cases?withdrawn=true');
      expect(
        withdrawn.json.cases.every((x: { withdrawnAt: string | null }) => x.withdrawnAt !== null),
      ).to.equal(true);
      expect(withdrawn.json.cases.length).to.be.greaterThan(0);
      const future = await call('FR', 'GET', '/api/cases?since=2999-01-01T00:00:00Z');
      expect(future.json).to.deep.equal({ cases: [], next: null });
      const atDe = await call('DE', 'GET', '/api/cases?origin=FR&receivedFrom=FR');
      expect(atDe.json.cases.length).to.be.greaterThan(0);
      expect(atDe.json.cases.every((x: { receivedFrom: string }) => x.receivedFrom === 'FR')).to.equal(true);
      expect((await call('DE', 'GET', '/api/cases?origin=BE')).json.cases).to.deep.equal([]);

      for (const bad of [
        'colour=red',
        'origin=fr',
        'withdrawn=yes',
        'since=yesterday',
        'limit=0',
        'cursor=abc',
      ]) {
        const r = await call('FR', 'GET', `/api/cases?${bad}`);
        expect(r.status, bad).to.equal(400);
        expect(r.json.code, bad).to.equal('REQUEST_INVALID');
        expect(r.json.errors[0].location, bad).to.equal(`?${bad.split('=')[0]}`);
      }
      const auditor = await admin(url('FR'), t('FR', 'auditor'), 'GET', '/api/cases');
      expect(auditor.json.code).to.equal('ROLE_FORBIDDEN');

      const events = await admin(url('DE'), t('DE', 'auditor'), 'GET', '/api/audit?action=case.listed');
      const last = events.json.events.at(-1);
      expect(last.actor.kind).to.equal('user');
      expect(last.detail).to.deep.equal({ filters: { origin: 'BE' }, count: 0 });
    });
  });
}
