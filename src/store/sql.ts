/**
 * Named SQL statements, loaded once from `queries/*.sql`. Each statement starts with a
 * `-- name: camelCaseName` line; the comment lines after it say what it does. TypeScript
 * refers to statements by name, so the SQL stays in one place and reads as SQL.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { IcrosError } from '../errors.js';

const dir = new URL('./queries/', import.meta.url);

function load(): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql'))) {
    const text = readFileSync(new URL(file, dir), 'utf8');
    for (const block of text.split(/^-- name: /m).slice(1)) {
      const name = block.slice(0, block.indexOf('\n')).trim();
      if (out.has(name)) throw new IcrosError('INTERNAL', `query ${name} is defined twice (${file})`);
      out.set(
        name,
        block
          .slice(block.indexOf('\n') + 1)
          .trim()
          .replace(/;$/, ''),
      );
    }
  }
  return out;
}

const statements = load();

/** The SQL of a named statement; an unknown name is a programming error caught by every test. */
export function sql(name: string): string {
  const s = statements.get(name);
  if (s === undefined) throw new IcrosError('INTERNAL', `no SQL statement named ${name}`);
  return s;
}

export function statementNames(): string[] {
  return [...statements.keys()];
}
