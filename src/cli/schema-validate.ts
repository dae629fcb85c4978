/**
 * `icros schema validate FILE…`: check cases or envelopes offline against the shared
 * schemas. The kind is taken from the document: an object with `v`, `type`, `from` and `to`
 * is an envelope (its case is checked too), anything else a case. Exit 1 with every located
 * error when a file is not valid.
 */
import { readFile } from 'node:fs/promises';
import { parseUntrustedJson } from '../envelope/json.js';
import { IcrosError, type ProblemItem } from '../errors.js';
import { validateCase, validateEnvelope } from '../schema/validators.js';

export interface FileReport {
  file: string;
  kind: 'case' | 'envelope' | 'unreadable';
  valid: boolean;
  errors: ProblemItem[];
}

export async function validateFile(file: string): Promise<FileReport> {
  let doc: unknown;
  try {
    doc = parseUntrustedJson(await readFile(file), file);
  } catch (err) {
    const message =
      err instanceof IcrosError ? err.message : `cannot read ${file}: ${(err as Error).message}`;
    return { file, kind: 'unreadable', valid: false, errors: [{ location: '/', rule: 'json', message }] };
  }
  const o = doc as Record<string, unknown>;
  const isEnvelope =
    typeof o === 'object' && o !== null && 'v' in o && 'type' in o && 'from' in o && 'to' in o;
  if (!isEnvelope) {
    const errors = validateCase.problems(doc);
    return { file, kind: 'case', valid: errors.length === 0, errors };
  }
  const errors = validateEnvelope.problems(doc);
  if (errors.length === 0 && o.case !== undefined) {
    for (const p of validateCase.problems(o.case))
      errors.push({ ...p, location: `/case${p.location === '/' ? '' : p.location}` });
  }
  return { file, kind: 'envelope', valid: errors.length === 0, errors };
}

export async function runSchemaValidate(files: string[], opts: { json: boolean }): Promise<void> {
  const reports = await Promise.all(files.map(validateFile));
  if (opts.json) {
    for (const r of reports) process.stdout.write(`${JSON.stringify(r)}\n`);
  } else {
    for (const r of reports) {
      if (r.valid) process.stdout.write(`✓ ${r.file}: valid ${r.kind}\n`);
      else {
        const what =
          r.kind === 'unreadable' ? 'not readable as JSON' : `${r.errors.length} error(s) in this ${r.kind}`;
        process.stdout.write(`✗ ${r.file}: ${what}\n`);
        for (const e of r.errors) process.stdout.write(`  ${e.location}  ${e.message}  [${e.rule}]\n`);
      }
    }
  }
  if (reports.some((r) => !r.valid)) process.exitCode = 1;
}
