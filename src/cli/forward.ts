/**
 * `icros forward` and `icros withdraw` through the admin API:
 *   icros forward CASE_ID --to DE,BE --purpose P [--tlp T --code H --legal-basis L --restrictions R]
 *   icros withdraw CASE_ID --purpose P [--reason R] [--legal-basis L]
 *
 * Without --tlp/--code a forward keeps the case's handling (the one it was received under,
 * or its own default); without --legal-basis it takes the CLI profile's `legalBasis`.
 * Exit: 0 queued; 1 the API refused (its code is printed); 2 usage.
 */
import { type ApiOptions, apiJson, readProfile, resolveApi } from './api.js';
import { UsageError } from './usage.js';

const TLPS = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'];
const CODES = ['H0', 'H1', 'H2', 'H3'];

interface Queued {
  messages: { id: string; to: string; digest: string; state: string }[];
}

export interface ForwardOptions extends ApiOptions {
  to: string;
  purpose: string;
  tlp?: string;
  code?: string;
  legalBasis?: string;
  restrictions?: string;
  json: boolean;
}

export async function runForward(caseId: string, opts: ForwardOptions): Promise<void> {
  const api = resolveApi(opts);
  const to = opts.to
    .split(',')
    .map((c) => c.trim().toUpperCase())
    .filter(Boolean);
  if (to.length === 0 || !to.every((c) => /^[A-Z]{2}$/.test(c)))
    throw new UsageError(`--to must list partner countries like DE,BE (got ${JSON.stringify(opts.to)})`);
  if (opts.tlp && !TLPS.includes(opts.tlp.toUpperCase()))
    throw new UsageError(`--tlp must be one of ${TLPS.join(', ')}`);
  if (opts.code && !CODES.includes(opts.code.toUpperCase()))
    throw new UsageError(`--code must be one of ${CODES.join(', ')}`);
  const legalBasis = opts.legalBasis ?? readProfile(opts).legalBasis;
  if (!legalBasis) throw new UsageError('give --legal-basis (or "legalBasis" in the CLI profile)');

  let tlp = opts.tlp?.toUpperCase();
  let code = opts.code?.toUpperCase();
  if (!tlp || !code) {
    const c = await apiJson<{
      handling: { tlp?: string; code?: string } | null;
      doc: { handling?: { tlp?: string; code?: string } };
    }>(api, 'GET', `/api/cases/${encodeURIComponent(caseId)}`);
    const h = c.handling ?? c.doc?.handling;
    tlp ??= h?.tlp;
    code ??= h?.code;
    if (!tlp || !code)
      throw new UsageError(`case ${caseId} has no handling of its own: give --tlp and --code`);
  }
  const r = await apiJson<Queued>(api, 'POST', `/api/cases/${encodeURIComponent(caseId)}/forward`, {
    to,
    handling: {
      tlp,
      code,
      purpose: opts.purpose,
      legalBasis,
      ...(opts.restrictions ? { restrictions: opts.restrictions } : {}),
    },
  });
  printQueued(r, opts.json, `forwarded (${tlp}, ${code})`);
}

export interface WithdrawOptions extends ApiOptions {
  purpose: string;
  reason?: string;
  legalBasis?: string;
  json: boolean;
}

export async function runWithdraw(caseId: string, opts: WithdrawOptions): Promise<void> {
  const api = resolveApi(opts);
  const legalBasis = opts.legalBasis ?? readProfile(opts).legalBasis;
  const r = await apiJson<Queued>(api, 'POST', `/api/cases/${encodeURIComponent(caseId)}/withdraw`, {
    purpose: opts.purpose,
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(legalBasis ? { legalBasis } : {}),
  });
  if (!opts.json && r.messages.length === 0)
    process.stdout.write(`${caseId}: withdrawn locally; it was never sent to a partner\n`);
  printQueued(r, opts.json, 'withdrawal');
}

function printQueued(r: Queued, json: boolean, what: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  for (const m of r.messages) process.stdout.write(`${m.id} → ${m.to}: ${what} queued (${m.digest})\n`);
}
