/**
 * How a national format's bytes become records, and where each record and each field is in
 * the format's own terms: a JSON pointer for JSON, a spreadsheet row and column for CSV, an
 * XPath-like path for XML. The parser type and its options come from `format.json`.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import iconv from 'iconv-lite';
import { parseUntrustedJson } from '../envelope/json.js';
import { IcrosError } from '../errors.js';

export interface JsonParser {
  type: 'json';
  /** The member of the top-level object holding an array of records (else one record or an array). */
  records?: string;
}

export interface CsvParser {
  type: 'csv';
  /** Cell separator; French spreadsheets use `;`. */
  delimiter: string;
  /** Accepted encodings in the order tried; the first that decodes without error wins. */
  encodings: string[];
  /** Every column in export order; a header naming any other column is an error. */
  columns: string[];
  /** Columns holding several values in one cell, with the separator between them. */
  lists?: Record<string, string>;
}

export interface XmlParser {
  type: 'xml';
  /** Path of the repeated record element, e.g. `Meldungen/Meldung`. */
  records: string;
  /** Element paths under a record that are always lists, e.g. `Elemente/Element`. */
  arrays?: string[];
  /**
   * Element paths under a record that carry attributes: always read as objects, so that
   * `<Merkmal>x</Merkmal>` (attribute forgotten) reads as `{"#text": "x"}` and the input
   * schema can say which attribute is missing, not that a string is not an object.
   */
  attributed?: string[];
}

export type ParserSpec = JsonParser | CsvParser | XmlParser;

export interface Parsed {
  records: unknown[];
  /** Where record `i` is. */
  locate(i: number): string;
  /** Where the JSON pointer `pointer` inside record `i` is. */
  locateIn(i: number, pointer: string): string;
}

export const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function parseRecords(parser: ParserSpec, bytes: Uint8Array, what = 'the report'): Parsed {
  switch (parser.type) {
    case 'json':
      return parseJson(parser, bytes, what);
    case 'csv':
      return parseCsvRecords(parser, bytes, what);
    case 'xml':
      return parseXml(parser, bytes, what);
  }
}

function parseJson(parser: JsonParser, bytes: Uint8Array, what: string): Parsed {
  const doc = parseUntrustedJson(bytes, what);
  const member = parser.records;
  let records: unknown[];
  let base: (i: number) => string;
  if (Array.isArray(doc)) {
    records = doc;
    base = (i) => `/${i}`;
  } else if (member && isObject(doc) && Array.isArray(doc[member])) {
    records = doc[member] as unknown[];
    base = (i) => `/${member}/${i}`;
  } else {
    records = [doc];
    base = () => '';
  }
  return { records, locate: base, locateIn: (i, p) => `${base(i)}${p}` || '/' };
}

// ---------------------------------------------------------------------------------------------
// CSV

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text from bytes in the first of `encodings` that decodes them; a BOM is dropped. */
export function decodeText(bytes: Uint8Array, encodings: string[], what: string): string {
  for (const encoding of encodings) {
    if (/^utf-?8$/i.test(encoding)) {
      try {
        return utf8.decode(bytes);
      } catch {
        continue; // not UTF-8: try the next
      }
    }
    // Node 20's TextDecoder reads windows-1252 as ISO-8859-1 (0x80 is not €), hence iconv-lite.
    // Single-byte encodings decode any bytes, so they belong last in the list.
    if (!iconv.encodingExists(encoding)) {
      throw new IcrosError(
        'BODY_MALFORMED',
        `${what} is in the unknown encoding ${JSON.stringify(encoding)}`,
      );
    }
    return iconv.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), encoding);
  }
  throw new IcrosError('BODY_MALFORMED', `${what} is not valid ${encodings.join(' or ')}`);
}

/** Spreadsheet column letters: 0 → A, 25 → Z, 26 → AA. */
export function columnLetter(index: number): string {
  let n = index + 1;
  let s = '';
  while (n > 0) {
    const r = (n - 1) % 26;
    s = String.fromCharCode(65 + r) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}

/**
 * A cell a spreadsheet would run as a formula. Phone numbers and signed numbers are not.
 */
export function isFormulaLike(cell: string): boolean {
  if (/^[=@\t\r]/.test(cell)) return true;
  return /^[+-]/.test(cell) && !/^[+-][\d\s().,]*$/.test(cell);
}

/**
 * OWASP CSV injection: an exported cell that is formula-like once its leading `'`s are
 * removed gets one more `'` in front, so no spreadsheet runs it; importing drops exactly
 * that one `'` again. A round trip gives back the same text, `'=x` included.
 */
export function neutralizeCell(cell: string): string {
  return isFormulaLike(cell.replace(/^'+/, '')) ? `'${cell}` : cell;
}

export function unneutralizeCell(cell: string): string {
  return cell.startsWith("'") && isFormulaLike(cell.replace(/^'+/, '')) ? cell.slice(1) : cell;
}

function parseCsvRecords(parser: CsvParser, bytes: Uint8Array, what: string): Parsed {
  const text = decodeText(bytes, parser.encodings, what).replace(/\r\n?/g, '\n');
  let rows: string[][];
  try {
    rows = parseCsv(text, {
      delimiter: parser.delimiter,
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
      record_delimiter: '\n',
    }) as string[][];
  } catch (cause) {
    const e = cause as { message?: string; lines?: number };
    throw new IcrosError('BODY_MALFORMED', `${what} is not valid CSV: ${e.message}`, {
      cause,
      errors: [{ location: `line ${e.lines ?? '?'}`, rule: 'csv', message: e.message ?? 'malformed CSV' }],
    });
  }
  const header = (rows.shift() ?? []).map((h) => h.trim());
  const known = new Set(parser.columns);
  const headerErrors = header.flatMap((name, i) => {
    if (!known.has(name))
      return [
        {
          location: `row 1, column ${columnLetter(i)}`,
          rule: 'header',
          message: `unknown column ${JSON.stringify(name.slice(0, 60))}; the columns are ${parser.columns.join(', ')}`,
        },
      ];
    if (header.indexOf(name) !== i)
      return [
        {
          location: `row 1, column ${columnLetter(i)}`,
          rule: 'header',
          message: `column ${JSON.stringify(name)} appears twice`,
        },
      ];
    return [];
  });
  if (header.length === 0 || headerErrors.length) {
    throw new IcrosError(
      'REPORT_INVALID',
      header.length === 0 ? `${what} has no header row` : `${what} has an invalid header row`,
      { errors: headerErrors.slice(0, 50) },
    );
  }
  const records = rows.map((cells) => {
    const record: Record<string, unknown> = {};
    // A row longer than the header keeps its extra cells under their letters, which the input
    // schema (closed) then reports with their position.
    for (const [i, raw] of cells.entries()) {
      const cell = unneutralizeCell(raw.trim());
      if (cell === '') continue;
      const name = header[i] ?? `column ${columnLetter(i)}`;
      const separator = parser.lists?.[name];
      record[name] = separator
        ? cell
            .split(separator)
            .map((v) => v.trim())
            .filter((v) => v !== '')
        : cell;
    }
    return record;
  });
  const column = (name: string) => {
    const i = header.indexOf(name);
    return i < 0 ? name : `${columnLetter(i)} (${name})`;
  };
  return {
    records,
    locate: (i) => `row ${i + 2}`,
    locateIn: (i, pointer) => {
      const [name, item] = pointer.split('/').slice(1).map(unescapePointer);
      if (name === undefined) return `row ${i + 2}`;
      return `row ${i + 2}, column ${column(name)}${item === undefined ? '' : `, value ${Number(item) + 1}`}`;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// XML

function parseXml(parser: XmlParser, bytes: Uint8Array, what: string): Parsed {
  const declared = /^\uFEFF?<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(
    Buffer.from(bytes.subarray(0, 200)).toString('latin1'),
  )?.[1];
  let text = decodeText(bytes, [declared ?? 'utf-8'], what);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (/<!DOCTYPE/i.test(text)) {
    // No DTDs: entity expansion ("billion laughs") and external entities have no place here.
    throw new IcrosError('BODY_MALFORMED', `${what} has a DOCTYPE; DTDs and entities are not accepted`);
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    throw new IcrosError(
      'BODY_MALFORMED',
      `${what} is not well-formed XML: ${msg} (line ${line}, column ${col})`,
      {
        errors: [{ location: `line ${line}, column ${col}`, rule: 'xml', message: msg }],
      },
    );
  }
  const path = parser.records.split('/');
  const recordName = path.at(-1)!;
  const arrays = new Set([parser.records, ...(parser.arrays ?? []).map((p) => `${parser.records}/${p}`)]);
  const xml = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    processEntities: true,
    htmlEntities: true, // numeric character references (&#233;) too
    ignoreDeclaration: true,
    ignorePiTags: true,
    isArray: (_name, jpath) => arrays.has(String(jpath).replaceAll('.', '/')),
  });
  let doc: unknown;
  try {
    doc = xml.parse(text);
  } catch (cause) {
    // fast-xml-parser refuses element names like __proto__ itself, with a [SECURITY] error.
    const message = (cause as Error).message ?? String(cause);
    throw /SECURITY|reserved/.test(message)
      ? new IcrosError('PAYLOAD_FORBIDDEN_KEY', `${what} uses a forbidden element name: ${message}`, {
          cause,
        })
      : new IcrosError('BODY_MALFORMED', `${what} cannot be read as XML: ${message}`, { cause });
  }
  assertNoForbiddenKeys(doc, what);
  let node: unknown = doc;
  for (const step of path.slice(0, -1)) {
    // An empty container (<Meldungen/>) holds no records.
    node = isObject(node) ? (node[step] === '' ? {} : node[step]) : undefined;
  }
  if (!isObject(node)) {
    throw new IcrosError('REPORT_INVALID', `${what} has no <${path.slice(0, -1).join('/')}> element`, {
      errors: [{ location: `/${path[0]}`, rule: 'xml', message: `the root element must be <${path[0]}>` }],
    });
  }
  const found = node[recordName];
  // Always a list (isArray above), unless the element holds something the parser read otherwise.
  const records: unknown[] = found === undefined ? [] : Array.isArray(found) ? found : [found];
  for (const p of parser.attributed ?? []) {
    for (const record of records) asElementObjects(record, p.split('/'));
  }
  const base = (i: number) => `/${parser.records}[${i + 1}]`;
  return { records, locate: base, locateIn: (i, pointer) => `${base(i)}${pointerToXPath(pointer)}` };
}

/** Turn the text-only elements at `steps` under `node` into `{"#text": …}` objects, in place. */
function asElementObjects(node: unknown, steps: string[]): void {
  if (!isObject(node)) return;
  const [step, ...rest] = steps as [string, ...string[]];
  const wrap = (v: unknown) => (typeof v === 'string' ? (v === '' ? {} : { '#text': v }) : v);
  const child = node[step];
  if (child === undefined) return;
  if (rest.length === 0) node[step] = Array.isArray(child) ? child.map(wrap) : wrap(child);
  else for (const c of Array.isArray(child) ? child : [child]) asElementObjects(c, rest);
}

/** `/Elemente/Element/2/Wert` → `/Elemente/Element[3]/Wert`. */
export function pointerToXPath(pointer: string): string {
  let out = '';
  for (const token of pointer.split('/').slice(1).map(unescapePointer)) {
    if (/^\d+$/.test(token)) out += `[${Number(token) + 1}]`;
    else if (token === '#text') out += '/text()';
    else out += `/${token}`;
  }
  return out;
}

function assertNoForbiddenKeys(value: unknown, what: string, depth = 0): void {
  if (depth > 64) throw new IcrosError('BODY_MALFORMED', `${what} is nested more than 64 levels deep`);
  if (Array.isArray(value)) for (const v of value) assertNoForbiddenKeys(v, what, depth + 1);
  else if (isObject(value)) {
    for (const key of Object.keys(value)) {
      const bare = key.replace(/^@/, '');
      if (FORBIDDEN_KEYS.has(bare)) {
        throw new IcrosError('PAYLOAD_FORBIDDEN_KEY', `${what} contains the forbidden name "${bare}"`, {
          errors: [{ location: what, rule: 'forbidden-key', message: `the name "${bare}" is not allowed` }],
        });
      }
      assertNoForbiddenKeys(value[key], what, depth + 1);
    }
  }
}

function unescapePointer(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
