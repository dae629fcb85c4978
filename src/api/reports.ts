/**
 * `POST /api/reports?format=<id>`: ingest reports in the shared format (one case, an array,
 * or `{ "cases": [...] }`) or a national format (`schemas/national/<id>/`). Each report is
 * converted and validated on its own: valid ones are stored (each with its audit event),
 * invalid ones are reported by index with every located error; nothing is half-stored.
 */
import type { GatewayContext } from '../context.js';
import { convertReport } from '../convert/registry.js';
import { sha256Hex } from '../envelope/digest.js';
import { canonicalJson } from '../envelope/json.js';
import { IcrosError, type ProblemItem } from '../errors.js';
import type { CaseV1 } from '../schema/validators.js';
import { sql } from '../store/sql.js';

export interface IngestResult {
  accepted: { index: number; id: string; version: number; status: 'created' | 'unchanged' }[];
  rejected: { index: number; errors: ProblemItem[] }[];
}

export async function ingestReports(
  ctx: GatewayContext,
  format: string,
  body: Buffer,
  actor: string,
  offset = 0,
): Promise<IngestResult> {
  const conversion = await convertReport(
    format,
    body,
    { country: ctx.config.country, agency: ctx.config.agency },
    offset,
  );
  const result: IngestResult = {
    accepted: [],
    rejected: conversion.rejected.map(({ index, errors }) => ({ index, errors })),
  };
  for (const { index, location, case: c } of conversion.cases) {
    if (c.origin.country !== ctx.config.country) {
      result.rejected.push({
        index,
        errors: [
          {
            // A JSON pointer extends; a row or an XML path names the case field after it.
            location:
              location === '' || (location.startsWith('/') && !location.includes('['))
                ? `${location}/origin/country`
                : `${location}, case /origin/country`,
            rule: 'origin',
            message: `a case ingested here must originate from ${ctx.config.country}, not ${c.origin.country}`,
          },
        ],
      });
      continue;
    }
    try {
      const status = await storeLocalCase(ctx, c, actor, location, format);
      result.accepted.push({ index, id: c.id, version: c.version, status });
    } catch (err) {
      if (!(err instanceof IcrosError) || err.code !== 'REPORT_INVALID') throw err;
      result.rejected.push({ index, errors: err.errors ?? [] });
    }
  }
  result.rejected.sort((a, b) => a.index - b.index);
  return result;
}

async function storeLocalCase(
  ctx: GatewayContext,
  c: CaseV1,
  actor: string,
  at: string,
  format: string,
): Promise<'created' | 'unchanged'> {
  const digest = `sha256:${sha256Hex(canonicalJson(c))}`;
  const json = JSON.stringify(c);
  const status = await ctx.tx(async (q) => {
    const inserted = await q.query(sql('insertCase'), [
      c.id,
      c.version,
      c.origin.country,
      null,
      null,
      json,
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
      detail: { version: c.version, digest, format },
    });
    return 'created' as const;
  });
  // Committed: an analyst who forwards it next is spared the read (outbound/case-cache.ts).
  if (status === 'created') {
    ctx.cases.put(
      { id: c.id, version: c.version, received_from: null, handling: null, doc: c, withdrawn_at: null },
      json.length,
    );
  }
  return status;
}
