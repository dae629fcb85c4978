/**
 * Cut a file of many reports into uploads of at most `maxRecords` reports and about
 * `maxBytes` each, in the file's own format, so that `icros ingest` can show progress and
 * stay under the admin listener's body limit. Each chunk says at which report it starts; the
 * server numbers rows and indexes from there (`POST /api/reports?offset=N`), so every error
 * names its place in the whole file. The whole file is read and split before anything is
 * sent: a file that cannot be read at all stores nothing.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { IcrosError } from '../errors.js';
import { decodeText, type ParserSpec, parseRecords } from './parse.js';
import { serializeRecords } from './serialize.js';

export interface Chunk {
  body: Buffer;
  /** Index in the file of the chunk's first report. */
  offset: number;
  count: number;
}

export interface Split {
  total: number;
  chunks: Chunk[];
}

export function splitForUpload(
  parser: ParserSpec,
  mediaType: string,
  bytes: Uint8Array,
  { maxRecords = 500, maxBytes = 4 * 1024 * 1024 } = {},
): Split {
  if (parser.type === 'csv') return splitCsv(parser, bytes, maxRecords, maxBytes);
  const { records, locate } = parseRecords(parser, bytes, 'the file');
  // One report that is the whole document goes as it is.
  if (records.length === 1 && parser.type === 'json' && locate(0) === '') {
    return { total: 1, chunks: [{ body: Buffer.from(bytes), offset: 0, count: 1 }] };
  }
  // Keep the file's own shape, so that locations (`/signalements/12`) read the same.
  const member = parser.type === 'json' && parser.records && locate(0).startsWith(`/${parser.records}/`);
  const chunks: Chunk[] = [];
  let start = 0;
  let size = 0;
  const flush = (end: number) => {
    if (end === start) return;
    const slice = records.slice(start, end);
    const body =
      parser.type === 'json'
        ? Buffer.from(JSON.stringify(member ? { [parser.records!]: slice } : slice))
        : serializeRecords(parser, mediaType, slice).body;
    chunks.push({ body, offset: start, count: end - start });
    start = end;
    size = 0;
  };
  for (const [i, record] of records.entries()) {
    const bytesOf = JSON.stringify(record)?.length ?? 0;
    if (i > start && (i - start >= maxRecords || size + bytesOf > maxBytes)) flush(i);
    size += bytesOf;
  }
  flush(records.length);
  return { total: records.length, chunks };
}

/** CSV chunks are slices of the file's own text (header repeated), so nothing is re-encoded. */
function splitCsv(
  parser: Extract<ParserSpec, { type: 'csv' }>,
  bytes: Uint8Array,
  maxRecords: number,
  maxBytes: number,
): Split {
  const text = decodeText(bytes, parser.encodings, 'the file')
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n');
  let rows: { raw: string }[];
  try {
    rows = parseCsv(text, {
      delimiter: parser.delimiter,
      relax_column_count: true,
      skip_empty_lines: true,
      record_delimiter: '\n',
      raw: true,
    }) as unknown as { raw: string }[];
  } catch (cause) {
    throw new IcrosError('BODY_MALFORMED', `the file is not valid CSV: ${(cause as Error).message}`, {
      cause,
    });
  }
  const header = rows.shift();
  if (!header) throw new IcrosError('REPORT_INVALID', 'the file has no header row');
  const line = (raw: string) => (raw.endsWith('\n') ? raw : `${raw}\n`);
  const chunks: Chunk[] = [];
  let parts: string[] = [];
  let start = 0;
  let size = 0;
  const flush = (end: number) => {
    if (end === start) return;
    chunks.push({ body: Buffer.from(line(header.raw) + parts.join('')), offset: start, count: end - start });
    parts = [];
    start = end;
    size = 0;
  };
  for (const [i, row] of rows.entries()) {
    if (i > start && (i - start >= maxRecords || size + row.raw.length > maxBytes)) flush(i);
    parts.push(line(row.raw));
    size += row.raw.length;
  }
  flush(rows.length);
  return { total: rows.length, chunks };
}
