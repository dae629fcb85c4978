/**
 * `icros cases …` through the admin API:
 *   icros cases list [--origin FR] [--received-from DE|none] [--withdrawn true|false] [--since T] [--limit N] [--all]
 *   icros cases show ID
 *   icros cases export ID… --format F --purpose P [--out DIR|FILE]
 * Every read is audited by the gateway. An export of several ids shows a progress bar on a
 * terminal, writes one file per case, goes on past a refused case, and exits 1 if any was.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SingleBar } from 'cli-progress';
import { type ApiOptions, ApiProblem, apiFetch, apiJson, resolveApi } from './api.js';
import { UsageError } from './usage.js';

interface CaseItem {
  id: string;
  version: number;
  origin: { country: string; agency: string | null };
  receivedFrom: string | null;
  handling: { tlp: string; code: string } | null;
  createdAt: string;
  withdrawnAt: string | null;
  erased: boolean;
}

export interface ListOptions extends ApiOptions {
  origin?: string;
  receivedFrom?: string;
  withdrawn?: string;
  since?: string;
  limit?: string;
  all?: boolean;
  json: boolean;
}

export async function runCasesList(opts: ListOptions): Promise<void> {
  const api = resolveApi(opts);
  if (opts.withdrawn !== undefined && !['true', 'false'].includes(opts.withdrawn))
    throw new UsageError('--withdrawn is true or false');
  if (opts.limit !== undefined && !/^[0-9]{1,4}$/.test(opts.limit))
    throw new UsageError('--limit is a number from 1 to 1000');
  const q = new URLSearchParams();
  if (opts.origin) q.set('origin', opts.origin.toUpperCase());
  if (opts.receivedFrom)
    q.set('receivedFrom', opts.receivedFrom === 'none' ? 'none' : opts.receivedFrom.toUpperCase());
  if (opts.withdrawn) q.set('withdrawn', opts.withdrawn);
  if (opts.since) q.set('since', opts.since);
  if (opts.limit) q.set('limit', opts.limit);
  const cases: CaseItem[] = [];
  let next: string | null = null;
  do {
    if (next) q.set('cursor', next);
    const page: { cases: CaseItem[]; next: string | null } = await apiJson(api, 'GET', `/api/cases?${q}`);
    cases.push(...page.cases);
    next = page.next;
  } while (opts.all && next);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ cases, next })}\n`);
    return;
  }
  for (const c of cases) {
    const from = c.receivedFrom ? `from ${c.receivedFrom}` : 'local  ';
    const handling = c.handling ? `${c.handling.code} TLP:${c.handling.tlp}` : '-';
    const state = c.erased ? 'erased' : c.withdrawnAt ? `withdrawn ${c.withdrawnAt}` : '';
    process.stdout.write(
      `${c.id}  v${c.version}  ${c.origin.country}/${c.origin.agency ?? '?'}  ${from}  ${handling.padEnd(15)} ${c.createdAt}  ${state}\n`.replace(
        /\s+\n$/,
        '\n',
      ),
    );
  }
  if (cases.length === 0) process.stderr.write('no cases match\n');
  if (next) process.stdout.write(`… more: --all, or --limit (next cursor ${next})\n`);
}

export async function runCasesShow(id: string, opts: ApiOptions & { json: boolean }): Promise<void> {
  const api = resolveApi(opts);
  const c = await apiJson<Record<string, unknown>>(api, 'GET', `/api/cases/${encodeURIComponent(id)}`);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(c)}\n`);
    return;
  }
  const h = c.handling as { tlp: string; code: string; purpose?: string } | null;
  const lines = [
    `case ${c.id} version ${c.version}, origin ${c.origin_country}`,
    c.received_from ? `received from ${c.received_from} (message ${c.message_id})` : 'created here',
    h ? `received under ${h.code} TLP:${h.tlp}${h.purpose ? `, purpose: ${h.purpose}` : ''}` : undefined,
    c.withdrawn_at ? `withdrawn at ${c.withdrawn_at}` : undefined,
    `digest ${c.digest}, stored ${c.created_at}`,
  ].filter(Boolean);
  process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(c.doc, null, 2)}\n`);
}

export interface ExportOptions extends ApiOptions {
  format: string;
  purpose: string;
  out?: string;
  json: boolean;
}

const EXTENSIONS: [RegExp, string][] = [
  [/xml/, 'xml'],
  [/csv/, 'csv'],
  [/json/, 'json'],
];

export async function runCasesExport(ids: string[], opts: ExportOptions): Promise<void> {
  const api = resolveApi(opts);
  const unique = [...new Set(ids)];
  const isDir =
    opts.out !== undefined &&
    (/[/\\]$/.test(opts.out) || (existsSync(opts.out) && statSync(opts.out).isDirectory()));
  if (unique.length > 1 && !opts.out) throw new UsageError('exporting several cases needs --out DIR');
  if (opts.out && (isDir || unique.length > 1))
    writable(() => mkdirSync(opts.out!, { recursive: true }), opts.out);
  const intoDir = unique.length > 1 || isDir;

  const bar =
    unique.length > 1 && process.stderr.isTTY && !opts.json
      ? new SingleBar({
          stream: process.stderr,
          format: 'export [{bar}] {value}/{total} cases | {failed} refused | {eta_formatted} left',
          hideCursor: true,
        })
      : undefined;
  bar?.start(unique.length, 0, { failed: 0 });
  const results: {
    id: string;
    file?: string;
    handling?: string;
    tlp?: string;
    code?: string;
    detail?: string;
  }[] = [];
  let failed = 0;
  try {
    for (const id of unique) {
      const q = new URLSearchParams({ format: opts.format, purpose: opts.purpose });
      try {
        const res = await apiFetch(api, 'GET', `/api/cases/${encodeURIComponent(id)}/export?${q}`);
        const body = Buffer.from(await res.arrayBuffer());
        const type = res.headers.get('content-type') ?? '';
        const ext = EXTENSIONS.find(([re]) => re.test(type))?.[1] ?? 'out';
        const handling = res.headers.get('icros-handling') ?? undefined;
        const tlp = res.headers.get('icros-tlp') ?? undefined;
        let file: string | undefined;
        if (!opts.out) process.stdout.write(body);
        else {
          file = intoDir ? path.join(opts.out, `${id}.${opts.format}.${ext}`) : opts.out;
          const target = file;
          writable(() => writeFileSync(target, body), target);
        }
        results.push({
          id,
          ...(file ? { file } : {}),
          ...(handling ? { handling } : {}),
          ...(tlp ? { tlp } : {}),
        });
      } catch (err) {
        if (!(err instanceof ApiProblem)) throw err;
        // One case refused (not found, erased, no rights) does not stop the others.
        failed++;
        results.push({ id, code: err.code, detail: err.message });
        if (unique.length === 1) throw err;
      }
      bar?.increment(1, { failed });
    }
  } finally {
    bar?.stop();
  }
  if (opts.json && opts.out) process.stdout.write(`${JSON.stringify({ exported: results })}\n`);
  else if (opts.out) {
    for (const r of results) {
      if (r.code) process.stderr.write(`✗ ${r.id}: ${r.code}: ${r.detail}\n`);
      else
        process.stderr.write(
          `${r.id} → ${r.file}${r.handling ? `  (marked ${r.handling}${r.tlp ? ` TLP:${r.tlp}` : ''})` : ''}\n`,
        );
    }
  }
  if (failed) {
    process.stderr.write(`icros: ${failed} of ${unique.length} case(s) not exported\n`);
    process.exitCode = 1;
  }
}

/** A file or folder that cannot be written is a bad --out: exit 2 with the system's reason. */
function writable(fn: () => void, where: string): void {
  try {
    fn();
  } catch (err) {
    throw new UsageError(
      `cannot write ${where} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check --out`,
    );
  }
}
