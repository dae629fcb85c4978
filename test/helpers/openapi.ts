/**
 * Conformance of HTTP exchanges with the admin API's OpenAPI 3.1 document: given a request
 * and the response it got, the list of ways they differ from the document (an empty list is
 * conformance). Schemas are checked with ajv's 2020-12 validator — the dialect OpenAPI 3.1
 * declares — with the gateway's own formats, compiled from the document itself.
 *
 * Rules: the route and method must be documented (a 404 NOT_FOUND problem for an unknown
 * route is the API saying so, and conforms); the status must be documented for the
 * operation; documented response headers marked required must be present and valid; the
 * Content-Type must be one the response lists; JSON bodies must match their schema. A
 * request that breaks the document (unknown query parameter, bad path parameter, body off
 * its schema) is fine when the API refused it (4xx) — that is what negative tests do — and a
 * violation when it was accepted.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { type OpenApiDocument, openApiDocument } from '../../src/api/openapi.js';
import { registerVocabulary } from '../../src/schema/vocab.js';

export interface Exchange {
  method: string;
  /** Path with or without its query string, e.g. `/api/messages?limit=1`. */
  path: string;
  requestContentType?: string;
  /** The request body as sent (text), if any. */
  requestBody?: string;
  status: number;
  responseHeaders: Headers | Record<string, string>;
  /** The response body as received (text). */
  responseBody: string;
}

type Json = Record<string, unknown>;
interface Operation {
  parameters?: (Json & { name: string; in: string; required?: boolean; schema: Json })[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Json }> };
  responses: Record<string, { headers?: Record<string, Json>; content?: Record<string, { schema: Json }> }>;
}

const ROOT = 'urn:icros:openapi';

/** A checker for `doc` (the gateway's own document by default). */
export function openApiChecker(doc: OpenApiDocument = openApiDocument()) {
  const ajv = makeAjv(doc);
  const compiled = new Map<string, ValidateFunction>();
  const compile = (schema: Json): ValidateFunction => {
    const key = JSON.stringify(schema);
    let fn = compiled.get(key);
    if (!fn) {
      fn = ajv.compile(absolute(schema) as Json);
      compiled.set(key, fn);
    }
    return fn;
  };
  // Everything compiled now, once, so that checking an exchange later takes well under a millisecond.
  for (const [, schema] of everySchema(doc)) compile(schema);
  const validate = (schema: Json, value: unknown): string[] => {
    const fn = compile(schema);
    return fn(value) ? [] : (fn.errors ?? []).slice(0, 10).map(describe);
  };
  const routes = Object.keys(doc.paths).map((template) => ({
    template,
    names: [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
    re: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '([^/]+)')}$`),
  }));

  return function check(x: Exchange): string[] {
    const url = new URL(x.path, 'http://gateway.invalid');
    const method = x.method.toLowerCase();
    const where = `${x.method.toUpperCase()} ${url.pathname}${url.search} → ${x.status}`;
    const body = parseBody(x.responseBody);
    // Concrete paths before templated ones (OpenAPI 3.1 §4.8.8.2), then fewer parameters.
    const hits = routes
      .map((r) => ({ r, m: r.re.exec(url.pathname) }))
      .filter((h) => h.m)
      .sort((a, b) => a.r.names.length - b.r.names.length);
    const hit = hits.find((h) => doc.paths[h.r.template]![method]);
    const isNotFound = x.status === 404 && (body as Json | undefined)?.code === 'NOT_FOUND';
    if (!hit) {
      if (isNotFound) return [];
      return [`${where}: ${hits.length ? 'method' : 'route'} not in the OpenAPI document`];
    }
    const op = doc.paths[hit.r.template]![method] as unknown as Operation;
    const request = requestProblems(op, hit.r.names, hit.m!, url, x, validate);
    const out: string[] = [];
    if (request.length && x.status < 400) {
      out.push(...request.map((p) => `accepted a request the document forbids: ${p}`));
    }
    const res = op.responses[String(x.status)];
    if (!res) {
      out.push(`status ${x.status} is not documented (documented: ${Object.keys(op.responses).join(', ')})`);
      return out.map((v) => `${where}: ${v}`);
    }
    for (const [name, h] of Object.entries(res.headers ?? {})) {
      const header = resolve(doc, h) as { required?: boolean; schema?: Json };
      const value = headerOf(x.responseHeaders, name);
      if (value === null) {
        if (header.required) out.push(`response header ${name} is missing`);
      } else if (header.schema) {
        out.push(...validate(header.schema, value).map((e) => `response header ${name}${e}`));
      }
    }
    const type = baseType(headerOf(x.responseHeaders, 'content-type'));
    if (!res.content) {
      if (x.responseBody.length > 0) out.push(`a body was sent where the document has none (${type})`);
    } else if (!type || !res.content[type]) {
      out.push(`Content-Type ${type ?? '(none)'} is not one of ${Object.keys(res.content).join(', ')}`);
    } else if (isJsonType(type)) {
      if (body === undefined) out.push(`the ${type} body is not JSON`);
      else out.push(...validate(res.content[type].schema, body).map((e) => `response body${e}`));
    } else {
      out.push(...validate(res.content[type].schema, x.responseBody).map((e) => `response body${e}`));
    }
    return out.map((v) => `${where}: ${v}`);
  };
}

/** ajv 2020-12 in strict mode, with the gateway's formats and the document's components. */
function makeAjv(doc: OpenApiDocument): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
    discriminator: true,
  });
  addFormats.default(ajv);
  registerVocabulary(ajv);
  ajv.addSchema({ $id: ROOT, $defs: absolute(doc.components.schemas) });
  return ajv;
}

/** Compile every schema of `doc` (components, parameters, bodies, headers): what fails, and why. */
export function compileEverySchema(doc: OpenApiDocument): string[] {
  const ajv = makeAjv(doc);
  const out: string[] = [];
  for (const [where, schema] of everySchema(doc)) {
    try {
      ajv.compile(absolute(schema));
    } catch (err) {
      out.push(`${where}: ${(err as Error).message}`);
    }
  }
  return out;
}

/** Every schema of `doc`, each with where it is. */
function everySchema(doc: OpenApiDocument): [string, Json][] {
  const out: [string, Json][] = Object.keys(doc.components.schemas).map((name) => [
    name,
    { $ref: `#/components/schemas/${name}` },
  ]);
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(item)) {
      const op = raw as unknown as Operation;
      const at = `${method} ${p}`;
      for (const q of op.parameters ?? []) out.push([`${at} parameter ${q.name}`, q.schema]);
      for (const [t, m] of Object.entries(op.requestBody?.content ?? {}))
        out.push([`${at} request ${t}`, m.schema]);
      for (const [s, r] of Object.entries(op.responses)) {
        for (const [t, m] of Object.entries(r.content ?? {})) out.push([`${at} ${s} ${t}`, m.schema]);
        for (const [h, v] of Object.entries(r.headers ?? {})) {
          out.push([`${at} ${s} header ${h}`, resolve(doc, v).schema as Json]);
        }
      }
    }
  }
  return out;
}

function requestProblems(
  op: Operation,
  names: string[],
  m: RegExpExecArray,
  url: URL,
  x: Exchange,
  validate: (schema: Json, value: unknown) => string[],
): string[] {
  const out: string[] = [];
  const params = op.parameters ?? [];
  names.forEach((name, i) => {
    const p = params.find((q) => q.in === 'path' && q.name === name);
    if (!p) out.push(`path parameter ${name} is not documented`);
    else
      out.push(...validate(p.schema, decodeURIComponent(m[i + 1]!)).map((e) => `path parameter ${name}${e}`));
  });
  for (const p of params.filter((q) => q.in === 'query')) {
    const values = url.searchParams.getAll(p.name);
    if (values.length === 0) {
      if (p.required) out.push(`query parameter ${p.name} is required`);
    } else if (values.length > 1) out.push(`query parameter ${p.name} is repeated`);
    else
      out.push(
        ...validate(p.schema, coerce(p.schema, values[0]!)).map((e) => `query parameter ${p.name}${e}`),
      );
  }
  for (const name of new Set(url.searchParams.keys())) {
    if (!params.some((q) => q.in === 'query' && q.name === name))
      out.push(`query parameter ${name} is not documented`);
  }
  const sent = x.requestBody !== undefined && x.requestBody.length > 0;
  if (!op.requestBody) {
    if (sent) out.push('a request body was sent where the document has none');
  } else if (!sent) {
    if (op.requestBody.required) out.push('the request body is required');
  } else {
    const type = baseType(x.requestContentType ?? null);
    const media = type ? op.requestBody.content[type] : undefined;
    if (!media)
      out.push(
        `request Content-Type ${type ?? '(none)'} is not one of ${Object.keys(op.requestBody.content).join(', ')}`,
      );
    else if (isJsonType(type!) && Object.keys(media.schema).length > 0) {
      const value = parseBody(x.requestBody!);
      if (value === undefined) out.push('the request body is not JSON');
      else out.push(...validate(media.schema, value).map((e) => `request body${e}`));
    }
  }
  return out;
}

/** Query values are text; a parameter typed integer or boolean is compared as one. */
function coerce(schema: Json, v: string): unknown {
  if (schema.type === 'integer' && /^-?[0-9]{1,15}$/.test(v)) return Number(v);
  if (schema.type === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
  return v;
}

/** Every `#/components/schemas/X` made absolute, so ajv resolves it in the registered root. */
function absolute<T>(v: T): T {
  return JSON.parse(JSON.stringify(v).replaceAll('"#/components/schemas/', `"${ROOT}#/$defs/`)) as T;
}

/** A `$ref` to a component (headers) followed inside the document. */
function resolve(doc: OpenApiDocument, v: Json): Json {
  const target = v.$ref;
  if (typeof target !== 'string') return v;
  let node: unknown = doc;
  for (const part of target.replace(/^#\//, '').split('/')) node = (node as Json)[part];
  return node as Json;
}

function describe(e: ErrorObject): string {
  const extra = e.keyword === 'additionalProperties' ? ` (${(e.params as Json).additionalProperty})` : '';
  return `${e.instancePath || ''} ${e.message ?? e.keyword}${extra}`;
}

function headerOf(h: Headers | Record<string, string>, name: string): string | null {
  if (h instanceof Headers) return h.get(name);
  const k = Object.keys(h).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? null : (h[k] ?? null);
}

function baseType(contentType: string | null): string | null {
  return contentType ? contentType.split(';')[0]!.trim().toLowerCase() : null;
}

function isJsonType(type: string): boolean {
  return type === 'application/json' || type.endsWith('+json');
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

let shared: ReturnType<typeof openApiChecker> | undefined;

/** The violations of `x` against the gateway's document (one checker per test process). */
export function conformance(x: Exchange): string[] {
  shared ??= openApiChecker();
  return shared(x);
}

/** Build the shared checker now (about 3 s, once per process), so no test pays for it. */
export function warmConformance(): void {
  shared ??= openApiChecker();
}
