/**
 * National records → bytes in the format's own syntax, the inverse of `parse.ts`: JSON, CSV
 * (the declared columns in order, list cells joined, formula-like cells made inert) or XML.
 */
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { XMLBuilder } from 'fast-xml-parser';
import { neutralizeCell, type ParserSpec } from './parse.js';

export interface Serialized {
  body: Buffer;
  mediaType: string;
}

export function serializeRecords(parser: ParserSpec, mediaType: string, records: unknown[]): Serialized {
  switch (parser.type) {
    case 'json': {
      const doc =
        records.length === 1 ? records[0] : parser.records ? { [parser.records]: records } : records;
      return { body: Buffer.from(`${JSON.stringify(doc, null, 2)}\n`), mediaType };
    }
    case 'csv': {
      const rows = records.map((r) =>
        parser.columns.map((name) => {
          const v = (r as Record<string, unknown>)[name];
          const cell = Array.isArray(v)
            ? v.map(String).join(`${parser.lists?.[name] ?? ','}`)
            : v === undefined || v === null
              ? ''
              : String(v);
          return neutralizeCell(cell);
        }),
      );
      const text = stringifyCsv([parser.columns, ...rows], {
        delimiter: parser.delimiter,
        record_delimiter: '\r\n',
        // A line break of any kind inside a cell must be quoted, not only the record's CRLF.
        quoted_match: /[\r\n]/,
      });
      // UTF-8 with a BOM: what spreadsheet programs need to read accents right.
      return { body: Buffer.from(`\uFEFF${text}`, 'utf8'), mediaType };
    }
    case 'xml': {
      const path = parser.records.split('/');
      let doc: unknown = records;
      for (const step of path.reverse()) doc = { [step]: doc };
      const xml = new XMLBuilder({
        ignoreAttributes: false,
        attributeNamePrefix: '@',
        format: true,
        indentBy: '  ',
        suppressEmptyNode: true,
      });
      return {
        body: Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${xml.build(doc)}`),
        mediaType,
      };
    }
  }
}
