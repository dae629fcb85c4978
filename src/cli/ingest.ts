/**
 * `icros ingest --format <fmt> FILE…`: bulk ingest through the admin API. Each file is read
 * and split locally into uploads of `--batch` reports in its own format (src/convert/chunk.ts),
 * then sent in order to `POST /api/reports?format=<fmt>&offset=<n>`, so the server converts,
 * validates and stores each report and every error names its row or index in the whole file.
 * A progress bar runs on stderr when it is a terminal. Re-sending is safe: a report already
 * stored with the same content comes back `unchanged`, so a chunk that failed in transit is
 * retried.
 *
 * Exit: 0 every report stored; 1 some report rejected or a file unreadable; 2 usage.
 */
import { SingleBar } from 'cli-progress';
import { splitForUpload } from '../convert/chunk.js';
import { nationalFormat, SHARED_FORMAT } from '../convert/registry.js';
import { IcrosError, type ProblemItem } from '../errors.js';
import { resolveApi } from './api.js';
import { readInput } from './convert.js';
import { UsageError } from './usage.js';

export interface IngestOptions {
  format: string;
  server?: string;
  token?: string;
  /** CLI profile file (src/cli/api.ts). */
  profile?: string;
  batch: number;
  json: boolean;
}

interface FileOutcome {
  file: string;
  format: string;
  total: number;
  created: number;
  unchanged: number;
  /** How many reports were rejected. */
  rejectedCount: number;
  /** Rejections: one per report, or one per upload the server refused whole (`count` reports). */
  rejected: { index: number; count?: number; errors: ProblemItem[] }[];
  error?: string;
}

const RETRIES = 4;

export async function runIngest(files: string[], opts: IngestOptions): Promise<void> {
  const { server, token } = resolveApi(opts);
  if (!Number.isInteger(opts.batch) || opts.batch < 1 || opts.batch > 100_000) {
    throw new UsageError('--batch must be a whole number of reports from 1 to 100000');
  }
  const { parser, mediaType } =
    opts.format === SHARED_FORMAT
      ? { parser: { type: 'json', records: 'cases' } as const, mediaType: 'application/json' }
      : nationalFormat(opts.format).spec;

  let failed = false;
  for (const file of files) {
    const outcome = await ingestFile(file, { ...opts, server, token }, parser, mediaType);
    if (outcome.error || outcome.rejectedCount) failed = true;
    report(outcome, opts.json);
  }
  if (failed) process.exitCode = 1;
}

async function ingestFile(
  file: string,
  opts: IngestOptions & { server: string; token: string },
  parser: Parameters<typeof splitForUpload>[0],
  mediaType: string,
): Promise<FileOutcome> {
  const outcome: FileOutcome = {
    file,
    format: opts.format,
    total: 0,
    created: 0,
    unchanged: 0,
    rejectedCount: 0,
    rejected: [],
  };
  let split: ReturnType<typeof splitForUpload>;
  try {
    split = splitForUpload(parser, mediaType, await readInput(file), { maxRecords: opts.batch });
  } catch (err) {
    if (!(err instanceof IcrosError)) throw err;
    outcome.error = `${err.code}: ${err.message}`;
    for (const e of err.errors ?? []) outcome.error += `\n  at ${e.location}: ${e.message}`;
    return outcome;
  }
  outcome.total = split.total;
  const bar =
    process.stderr.isTTY && !opts.json
      ? new SingleBar({
          stream: process.stderr,
          format: `${file} [{bar}] {value}/{total} reports | {stored} stored, {rejected} rejected | {eta_formatted} left`,
          hideCursor: true,
        })
      : undefined;
  bar?.start(split.total, 0, { stored: 0, rejected: 0 });
  let done = 0;
  try {
    for (const chunk of split.chunks) {
      const url = `${opts.server}/api/reports?format=${encodeURIComponent(opts.format)}&offset=${chunk.offset}`;
      const res = await send(url, chunk.body, mediaType, opts.token);
      if (res.status === 201) {
        const body = res.body as {
          accepted: { status: 'created' | 'unchanged' }[];
          rejected: { index: number; errors: ProblemItem[] }[];
        };
        for (const a of body.accepted) outcome[a.status] += 1;
        outcome.rejected.push(...body.rejected);
        outcome.rejectedCount += body.rejected.length;
      } else {
        const problem = res.body as { code?: string; detail?: string; errors?: ProblemItem[] };
        if (res.status === 401 || res.status === 403) {
          throw new IcrosError(
            'AUTH_INVALID',
            `the server refused the token (${res.status} ${problem.code}): ${problem.detail}`,
          );
        }
        if (res.status === 413) {
          throw new IcrosError(
            'PAYLOAD_TOO_LARGE',
            `an upload of ${chunk.count} reports (${chunk.body.length} bytes) is over the server's body limit; use a smaller --batch`,
          );
        }
        // The server refused the upload whole: none of its reports is stored.
        outcome.rejectedCount += chunk.count;
        outcome.rejected.push({
          index: chunk.offset,
          count: chunk.count,
          errors: problem.errors?.length
            ? problem.errors
            : [
                {
                  location: `reports ${chunk.offset + 1}–${chunk.offset + chunk.count}`,
                  rule: String(problem.code),
                  message: String(problem.detail),
                },
              ],
        });
      }
      done += chunk.count;
      bar?.update(done, {
        stored: outcome.created + outcome.unchanged,
        rejected: outcome.rejectedCount,
      });
    }
  } catch (err) {
    if (!(err instanceof IcrosError)) throw err;
    outcome.error = `${err.code}: ${err.message} (${done} of ${split.total} reports were sent before this)`;
  } finally {
    bar?.stop();
  }
  return outcome;
}

/** POST with retries on what a retry can fix: no connection, 429, 502–504. */
async function send(url: string, body: Buffer, mediaType: string, token: string) {
  for (let attempt = 1; ; attempt++) {
    let res: Response | undefined;
    let cause: unknown;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': mediaType, authorization: `Bearer ${token}` },
        body: new Uint8Array(body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (err) {
      cause = err;
    }
    const retryable = !res || [429, 502, 503, 504].includes(res.status);
    if (!retryable || attempt > RETRIES) {
      if (!res) {
        const reason = (cause as { cause?: { code?: string } })?.cause?.code ?? (cause as Error)?.message;
        throw new IcrosError('SERVER_UNREACHABLE', `cannot reach ${new URL(url).origin} (${reason})`, {
          cause,
        });
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { detail: text.slice(0, 200) };
      }
      return { status: res.status, body: parsed };
    }
    await res?.body?.cancel();
    await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
  }
}

function report(o: FileOutcome, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(o)}\n`);
    return;
  }
  for (const r of o.rejected) {
    const which = r.count ? `reports ${r.index + 1} to ${r.index + r.count}` : `report ${r.index + 1}`;
    process.stderr.write(`✗ ${o.file}: ${which} rejected\n`);
    for (const e of r.errors) process.stderr.write(`  at ${e.location}: ${e.message} [${e.rule}]\n`);
  }
  if (o.error) process.stderr.write(`icros: ${o.file}: ${o.error}\n`);
  process.stdout.write(
    `${o.file}: ${o.total} reports, ${o.created + o.unchanged} stored (${o.created} new, ${o.unchanged} unchanged), ${o.rejectedCount} rejected\n`,
  );
}
