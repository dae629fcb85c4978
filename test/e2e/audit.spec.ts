/**
 * The auditor's side end to end: roles (an analyst cannot read the log, an auditor cannot read
 * cases or change anything), search and paging, export and verification through the API,
 * the `icros audit` commands, and the Python verifier of docs/audit.md run on a real export.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { icros, runCommand } from '../helpers/cli.js';
import { admin, HANDLING, sampleCase, token } from '../helpers/clients.js';
import { type ConformingProxy, conformingProxy } from '../helpers/conforming-proxy.js';
import { type Federation, startFederation } from '../helpers/federation.js';
import { warmConformance } from '../helpers/openapi.js';

describe('e2e audit log: roles, API, export, verify (pglite)', function () {
  this.timeout(120_000);
  let fed: Federation;
  /** FR's admin API behind a proxy that holds every exchange to the OpenAPI document. */
  let proxy: ConformingProxy;
  let url: string;
  let caseId: string;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'icros-audit-'));
  const auditor = () => token(fed.pki, 'FR', 'auditor');
  const analyst = () => token(fed.pki, 'FR', 'analyst');

  before(async () => {
    fed = await startFederation('pglite', ['FR', 'DE']);
    warmConformance();
    proxy = await conformingProxy(fed.gateways.FR!.adminUrl);
    url = proxy.url;
    for (let i = 0; i < 5; i++) {
      const c = sampleCase();
      caseId = c.id;
      await admin(url, analyst(), 'POST', '/api/reports', c);
      await admin(url, analyst(), 'GET', `/api/cases/${c.id}`);
      await admin(url, analyst(), 'POST', `/api/cases/${c.id}/forward`, { to: ['DE'], handling: HANDLING });
    }
  });
  after(async () => {
    await proxy?.close();
    await fed?.stop();
  });
  afterEach(() => {
    expect(proxy.violations, 'exchanges off the OpenAPI document').to.deep.equal([]);
  });

  it('roles: an analyst cannot read the log; an auditor cannot read cases or change anything', async () => {
    for (const p of ['/api/audit', '/api/audit/export', '/api/audit/verify', '/api/audit/checkpoints']) {
      const r = await admin(url, analyst(), 'GET', p);
      expect(r.status, p).to.equal(403);
      expect(r.json.code).to.equal('ROLE_FORBIDDEN');
    }
    expect((await admin(url, auditor(), 'GET', `/api/cases/${caseId}`)).status).to.equal(403);
    expect((await admin(url, auditor(), 'GET', `/api/cases/${caseId}/export`)).status).to.equal(403);
    expect((await admin(url, auditor(), 'POST', '/api/reports', sampleCase())).status).to.equal(403);
    expect(
      (
        await admin(url, auditor(), 'POST', `/api/cases/${caseId}/forward`, {
          to: ['DE'],
          handling: HANDLING,
        })
      ).status,
    ).to.equal(403);
    expect((await admin(url, undefined, 'GET', '/api/audit')).status).to.equal(401);
    // A refused token is itself an audit event, without the token.
    expect((await admin(url, 'icros_not-a-token-secret', 'GET', '/api/messages?x=1')).status).to.equal(401);
    const failed = await admin(url, auditor(), 'GET', '/api/audit?action=auth.failed');
    expect(failed.json.events.at(-1).detail).to.deep.equal({
      method: 'GET',
      path: '/api/messages',
      reason: 'unknown-token',
    });
    expect(JSON.stringify(failed.json)).to.not.contain('not-a-token-secret');
  });

  it('finds events by action, case, actor and partner, and pages with a cursor', async () => {
    const forwarded = await admin(url, auditor(), 'GET', '/api/audit?action=case.forwarded&partner=DE');
    expect(forwarded.status).to.equal(200);
    expect(forwarded.json.events).to.have.length(5);
    expect(forwarded.json.events[0].detail).to.include({ purpose: HANDLING.purpose });
    const ofCase = await admin(url, auditor(), 'GET', `/api/audit?case=${caseId}`);
    expect(ofCase.json.events.map((e: { action: string }) => e.action)).to.include.members([
      'case.created',
      'case.read',
      'case.forwarded',
    ]);
    // No event carries case content: the summary text of the sample never appears.
    expect(JSON.stringify(ofCase.json)).to.not.contain(sampleCase().summary.text.slice(0, 30));
    const page1 = await admin(url, auditor(), 'GET', '/api/audit?limit=3');
    const page2 = await admin(url, auditor(), 'GET', `/api/audit?limit=3&cursor=${page1.json.next}`);
    expect(page2.json.events[0].seq).to.equal(page1.json.events[2].seq + 1);
    const bad = await admin(url, auditor(), 'GET', '/api/audit?colour=blue');
    expect(bad.json.code).to.equal('REQUEST_INVALID');
  });

  it('verifies the chain through the API, and audits the verification', async () => {
    const r = await admin(url, auditor(), 'GET', '/api/audit/verify');
    expect(r.json).to.deep.include({ ok: true, firstBadSeq: null });
    expect(r.json.checked).to.be.greaterThan(15);
    const after = await admin(url, auditor(), 'GET', '/api/audit?action=audit.verified');
    expect(after.json.events.at(-1).actor.id).to.be.a('string');
  });

  it('exports JSON Lines that verify with icros audit verify and with the Python verifier; a tampered copy does not', async () => {
    const file = path.join(dir, 'fr.jsonl');
    const cert = path.join(dir, 'fr-sign.crt');
    const env = { ICROS_SERVER: url, ICROS_TOKEN: auditor() };
    const exp = await icros(['audit', 'export', '--out', file], env);
    expect(exp.status, exp.stderr).to.equal(0);
    const cps = await admin(url, auditor(), 'GET', '/api/audit/checkpoints');
    writeFileSync(cert, cps.json.signingCertificate);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(JSON.parse(lines.at(-1)!)).to.have.key('checkpoint');

    const ok = await icros(['audit', 'verify', '--file', file, '--cert', cert, '--json']);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(JSON.parse(ok.stdout)).to.deep.include({ ok: true, firstBadSeq: null });
    expect(JSON.parse(ok.stdout).checkpoints).to.be.greaterThan(0);

    // The Python verifier, exactly as docs/audit.md prints it.
    const doc = readFileSync('docs/audit.md', 'utf8');
    const py = /```python\n([\s\S]*?)```/.exec(doc)![1]!;
    const script = path.join(dir, 'verify.py');
    writeFileSync(script, py);
    const pyOk = await runCommand('python3', [script, file]);
    expect(pyOk.status, pyOk.stdout + pyOk.stderr).to.equal(0);
    expect(pyOk.stdout).to.match(/^ok: \d+ events/);

    // Tamper: change an actor in the middle, keep the line valid JSON.
    const seqOf = (l: string) => JSON.parse(l).seq as number;
    const i = lines.findIndex((l) => !l.includes('"checkpoint"') && seqOf(l) === 7);
    const tampered = [...lines];
    tampered[i] = tampered[i]!.replace(/"id":"[^"]*"/, '"id":"someone-else"');
    const bad = path.join(dir, 'tampered.jsonl');
    writeFileSync(bad, `${tampered.join('\n')}\n`);
    const no = await icros(['audit', 'verify', '--file', bad, '--cert', cert]);
    expect(no.status).to.equal(1);
    expect(no.stderr).to.contain('first bad seq 7');
    const pyNo = await runCommand('python3', [script, bad]);
    expect(pyNo.status).to.equal(1);
    expect(pyNo.stdout).to.contain('first bad seq 7');

    // A cut export (last lines dropped) no longer ends at its checkpoint.
    const cut = path.join(dir, 'cut.jsonl');
    writeFileSync(cut, `${lines.slice(0, -3).join('\n')}\n`);
    const noCut = await icros(['audit', 'verify', '--file', cut, '--cert', cert]);
    expect(noCut.status).to.equal(1);
    // Without --cert the checkpoints cannot be trusted: a usage error, not a pass.
    expect((await icros(['audit', 'verify', '--file', file])).status).to.equal(2);
  });

  it('exports CSV for reading, formula-safe', async () => {
    const res = await fetch(`${url}/api/audit/export?format=csv`, {
      headers: { authorization: `Bearer ${auditor()}` },
    });
    expect(res.headers.get('content-type')).to.contain('text/csv');
    const text = await res.text();
    expect(text.split('\n')[0]).to.equal(
      'seq,at,actor_kind,actor_id,action,case,message,partner,detail,prev_hash,hash',
    );
    expect(text).to.contain('case.forwarded');
  });

  it('icros audit witness: DE acknowledged heads of its chain, which match its own export', async () => {
    // Let the deliveries finish, then give FR's witness DE's export.
    const end = Date.now() + 20_000;
    for (;;) {
      const m = await admin(url, analyst(), 'GET', '/api/messages?state=delivered');
      if (m.json.messages.length >= 5 || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const deExport = path.join(dir, 'de.jsonl');
    const env = { ICROS_SERVER: fed.gateways.DE!.adminUrl, ICROS_TOKEN: token(fed.pki, 'DE', 'auditor') };
    expect((await icros(['audit', 'export', '--out', deExport], env)).status).to.equal(0);
    const { witness } = await import('../../src/cli/audit.js');
    const [de] = await witness(fed.gateways.FR!.ctx, new Map([['DE', deExport]]));
    expect(de!.partner).to.equal('DE');
    expect(de!.acknowledgedHead!.seq).to.be.greaterThan(0);
    expect(de!.log!.matched).to.be.greaterThan(0);
    expect(de!.log!.conflicts).to.deep.equal([]);
    // DE's log rewritten after the fact: the heads FR holds no longer match.
    const rewritten = path.join(dir, 'de-rewritten.jsonl');
    writeFileSync(
      rewritten,
      readFileSync(deExport, 'utf8').replaceAll(
        `"hash":"${de!.acknowledgedHead!.hash}"`,
        `"hash":"${'f'.repeat(64)}"`,
      ),
    );
    const [again] = await witness(fed.gateways.FR!.ctx, new Map([['DE', rewritten]]));
    expect(again!.log!.conflicts.map((c) => c.seq)).to.include(de!.acknowledgedHead!.seq);
  });
});
