/**
 * `icros convert --from <fmt> --to <fmt> FILE`: offline conversion through the shared case.
 * Prints the converted document on stdout in the target format's syntax (JSON, CSV, XML); rejected reports go to stderr with their
 * locations and make the exit code 1. Nothing is sent anywhere.
 */
import { readFile } from 'node:fs/promises';
import { convertReport, exportReport, nationalFormat, SHARED_FORMAT } from '../convert/registry.js';
import { IcrosError } from '../errors.js';

export async function runConvert(
  file: string,
  opts: { from: string; to: string; origin?: string },
): Promise<void> {
  // Unknown formats fail before anything is read.
  for (const id of [opts.from, opts.to]) if (id !== SHARED_FORMAT) nationalFormat(id);
  const conversion = await convertReport(opts.from, await readInput(file), parseOrigin(opts.origin));
  for (const r of conversion.rejected) {
    process.stderr.write(`✗ report ${r.location || '/'} (index ${r.index}) rejected:\n`);
    for (const e of r.errors) process.stderr.write(`  ${e.location}  ${e.message}  [${e.rule}]\n`);
  }
  const { body } = await exportReport(
    opts.to,
    conversion.cases.map((c) => c.case),
  );
  process.stdout.write(body);
  if (conversion.rejected.length) process.exitCode = 1;
}

export async function readInput(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new IcrosError(
      'FILE_UNREADABLE',
      `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause,
      },
    );
  }
}

/** `FR:PHAROS` → {country: 'FR', agency: 'PHAROS'}; the agency defaults to the country. */
function parseOrigin(origin: string | undefined): { country: string; agency: string } | undefined {
  if (origin === undefined) return undefined;
  const m = /^([A-Z]{2})(?::(.+))?$/.exec(origin);
  if (!m) {
    throw new IcrosError(
      'REQUEST_INVALID',
      `--origin ${JSON.stringify(origin)}: expected COUNTRY[:AGENCY], e.g. FR:PHAROS`,
    );
  }
  return { country: m[1]!, agency: m[2] ?? m[1]! };
}
