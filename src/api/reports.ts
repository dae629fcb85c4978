/**
 * `POST /api/reports?format=icros-case`: ingest cases in the shared format (one case, an
 * array, or `{ "cases": [...] }`). Each case is validated on its own: valid ones are stored
 * (with their audit event, in one transaction each), invalid ones are reported by index
 * with every located error. National formats arrive with issue #3.
 */
import type { GatewayContext } from '../context.js';
import { sha256Hex } from '../envelope/digest.js';
import { canonicalJson, parseUntrustedJson } from '../envelope/json.js';
import { IcrosError, type ProblemItem } from '../errors.js';
import { type CaseV1, validateCase } from '../schema/validators.js';
import { sql } from '../store/sql.js';

export const FORMATS = ['icros-case'] as const;
const MAX_CASES_PER_REQUEST = 10_000;

export interface IngestResult {
  accepted: { index: number; id: string; version: number; status: 'created' | 'unchanged' }[];
  rejected: { index: number; errors: ProblemItem[] }[];
}

export async function ingestReports(
  ctx: GatewayContext,
  format: string,
  body: Buffer,
  actor: string,
): Promise<IngestResult> {
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new IcrosError(
      'FORMAT_UNSUPPORTED',
      `format ${JSON.stringify(format)} is not supported; use one of ${FORMATS.join(', ')}`,
    );
  }
  const doc = parseUntrustedJson(body, 'the report');
  const list: unknown[] = Array.isArray(doc) ? doc : isCasesWrapper(doc) ? doc.cases : [doc];
  if (list.length > MAX_CASES_PER_REQUEST) {
    throw new IcrosError(
      'REPORT_INVALID',
      `at most ${MAX_CASES_PER_REQUEST} cases per request, got ${list.length}`,
    );
  }
  const prefix = Array.isArray(doc)
    ? (i: number) => `/${i}`
    : isCasesWrapper(doc)
      ? (i: number) => `/cases/${i}`
      : () => '';
  const result: IngestResult = { accepted: [], rejected: [] };
  for (const [index, c] of list.entries()) {
    const errors = validateCase(c) ? ownOrigin(ctx, c) : validateCase.problems(c);
    if (errors.length) {
      result.rejected.push({
        index,
        errors: errors.map((e) => ({
          ...e,
          location: `${prefix(index)}${e.location === '/' ? '' : e.location}` || '/',
        })),
      });
      continue;
    }
    try {
      const status = await storeLocalCase(ctx, c as CaseV1, actor, prefix(index));
      result.accepted.push({ index, id: (c as CaseV1).id, version: (c as CaseV1).version, status });
    } catch (err) {
      if (!(err instanceof IcrosError) || err.code !== 'REPORT_INVALID') throw err;
      result.rejected.push({ index, errors: err.errors ?? [] });
    }
  }
  return result;
}

function isCasesWrapper(doc: unknown): doc is { cases: unknown[] } {
  return typeof doc === 'object' && doc !== null && Array.isArray((doc as { cases?: unknown }).cases);
}

function ownOrigin(ctx: GatewayContext, c: CaseV1): ProblemItem[] {
  if (c.origin.country === ctx.config.country) return [];
  return [
    {
      location: '/origin/country',
      rule: 'origin',
      message: `a case ingested here must originate from ${ctx.config.country}, not ${c.origin.country}`,
    },
  ];
}

async function storeLocalCase(
  ctx: GatewayContext,
  c: CaseV1,
  actor: string,
  at: string,
): Promise<'created' | 'unchanged'> {
  const digest = `sha256:${sha256Hex(canonicalJson(c))}`;
  return ctx.tx(async (q) => {
    const inserted = await q.query(sql('insertCase'), [
      c.id,
      c.version,
      c.origin.country,
      null,
      null,
      JSON.stringify(c),
      digest,
      null,
    ]);
    if (inserted.length === 0) {
      const [existing] = await q.query<{ digest: string }>(sql('getCaseVersion'), [c.id, c.version]);
      if (existing?.digest === digest) return 'unchanged';
      throw new IcrosError(
        'REPORT_INVALID',
        `case ${c.id} version ${c.version} already exists with other content; raise the version`,
        {
          errors: [
            {
              location: `${at}/version`,
              rule: 'unique',
              message: 'this version already exists with other content',
            },
          ],
        },
      );
    }
    q.audit({
      actor: { kind: 'user', id: actor },
      action: 'case.created',
      subject: { case: c.id },
      detail: { version: c.version, digest, format: 'icros-case' },
    });
    return 'created';
  });
}
