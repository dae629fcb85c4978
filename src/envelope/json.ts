/**
 * JSON as it crosses a trust boundary: canonical bytes out (RFC 8785), strict parsing in.
 */
import canonicalizeModule from 'canonicalize';
import { IcrosError } from '../errors.js';

// canonicalize 2 is CommonJS (`module.exports = fn`) while its types declare a default
// export; 3+ is ESM-only and cannot be loaded by mocha's require path on Node 20.
const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ??
  canonicalizeModule) as unknown as (value: unknown) => string | undefined;

/** RFC 8785 (JCS) canonical JSON: what we sign and what audit hashes are computed over. */
export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new IcrosError('INTERNAL', 'value has no JSON form');
  return s;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Parse untrusted JSON bytes. Invalid UTF-8 is an error (not U+FFFD), and the keys
 * `__proto__`, `constructor` and `prototype` are rejected anywhere: `JSON.parse` keeps
 * `__proto__` as an own key that turns into a prototype on spread or `Object.assign`.
 * secure-json-parse only rejects `constructor.prototype`; the rule here is stricter, so the
 * check is a reviver, and the fast path skips it when no such key can be present.
 */
export function parseUntrustedJson(bytes: Uint8Array | string, what: string): unknown {
  let text: string;
  try {
    text = typeof bytes === 'string' ? bytes : utf8.decode(bytes);
  } catch (cause) {
    throw new IcrosError('BODY_MALFORMED', `${what} is not valid UTF-8`, { cause });
  }
  const suspicious =
    text.includes('\\u') ||
    text.includes('__proto__') ||
    text.includes('constructor') ||
    text.includes('prototype');
  try {
    if (!suspicious) return JSON.parse(text);
    return JSON.parse(text, (key, value) => {
      if (FORBIDDEN_KEYS.has(key)) throw new ForbiddenKey(key);
      return value;
    });
  } catch (cause) {
    if (cause instanceof ForbiddenKey) {
      throw new IcrosError('PAYLOAD_FORBIDDEN_KEY', `${what} contains the forbidden key "${cause.key}"`, {
        errors: [{ location: what, rule: 'forbidden-key', message: `the key "${cause.key}" is not allowed` }],
      });
    }
    throw new IcrosError('BODY_MALFORMED', `${what} is not valid JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
}

class ForbiddenKey {
  constructor(readonly key: string) {}
}
