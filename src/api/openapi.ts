/**
 * The OpenAPI 3.1 document of the admin listener (DESIGN §5), served without a token at
 * `GET /api/openapi.json`. It is built once, on first request, from the same sources the
 * gateway checks against: the JSON Schemas in `schemas/` (OpenAPI 3.1 Schema Objects are
 * JSON Schema 2020-12, so they are embedded as they are, their `$defs` hoisted into
 * `components.schemas`), the error registry (every `code` a problem can carry) and the format
 * registry (every `format` a report or an export can take). The operations are in
 * ./openapi-paths.ts, the routes' own body schemas in ./openapi-schemas.ts; this file
 * assembles them and renders each operation (roles, error responses, request id header).
 */
import { readFileSync } from 'node:fs';
import type { RequestHandler } from 'express';
import { ERRORS, type ErrorCode } from '../errors.js';
import { readSchema } from '../schema/validators.js';
import { type Operation, operationTable } from './openapi-paths.js';
import { type JsonSchema, ROUTE_SCHEMAS, ref } from './openapi-schemas.js';

export type OpenApiDocument = Record<string, unknown> & {
  openapi: string;
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: { schemas: Record<string, JsonSchema> } & Record<string, unknown>;
};

let cached: { doc: OpenApiDocument; json: string } | undefined;

/** The document, built on first use and then the same object (callers must not change it). */
export function openApiDocument(): OpenApiDocument {
  cached ??= build();
  return cached.doc;
}

/** `GET /api/openapi.json`: public, like the schemas it is made of (it holds no secret). */
export const serveOpenApi: RequestHandler = (_req, res) => {
  openApiDocument();
  res.type('application/json').send(cached!.json);
};

function build(): { doc: OpenApiDocument; json: string } {
  const schemas: Record<string, JsonSchema> = {};
  for (const part of [
    embed(readSchema('icros-case/1.0.json'), 'Case'),
    embed(readSchema('envelope/1.0.json'), 'Envelope'),
    sharedSchemas(),
    ROUTE_SCHEMAS,
  ]) {
    for (const [name, schema] of Object.entries(part)) {
      // A `$defs` entry of a schema file can take the name of a route schema: fail, never shadow.
      if (schemas[name]) throw new TypeError(`OpenAPI component ${name} is defined twice`);
      schemas[name] = schema;
    }
  }
  const doc: OpenApiDocument = {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'icros-gateway admin API',
      version: packageVersion(),
      summary: 'Analysts ingest, read, export, forward and withdraw cases; auditors review the audit log.',
      description:
        'The admin listener of an icros-gateway (DESIGN §5). Every `/api/` route except this document ' +
        'needs `Authorization: Bearer <token>` (a local token or an OIDC JWT; docs/operations.md). ' +
        'The roles allowed on each operation are in its description and in `x-icros-roles` (admin ' +
        'passes everywhere). Errors are RFC 9457 problem details with a stable `code` (docs/errors.md). ' +
        'Lists page with an opaque `cursor`: pass the `next` of one page to get the following one; ' +
        '`next` is null on the last page. Every response carries `X-Request-Id`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'this gateway (demo: http://127.0.0.1:8080)' }],
    security: [{ bearer: [] }],
    tags: [
      { name: 'cases', description: 'Reports and cases (analysts)' },
      { name: 'messages', description: 'Delivery state of partner messages (analysts)' },
      { name: 'partners', description: 'The partner registry and its health' },
      { name: 'audit', description: 'The tamper-evident audit log (auditors)' },
      { name: 'users', description: 'Local API tokens (admins)' },
      { name: 'operations', description: 'Liveness, readiness, metrics and this document' },
    ],
    paths: operations(),
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A local token (`icros users add NAME --role ROLE` shows it once) or, when configured, ' +
            "an OIDC access token (JWT) from the gateway's issuer carrying the role claim.",
        },
      },
      headers: {
        RequestId: {
          description:
            "The request's id: the caller's `X-Request-Id` when it is sane, else a new UUIDv7. " +
            "Problems name it in `instance`, and the gateway's log lines carry it.",
          required: true,
          schema: { type: 'string', maxLength: 100, pattern: '^[A-Za-z0-9._:-]{1,100}$' },
        },
      },
    },
  };
  return { doc, json: JSON.stringify(doc) };
}

/**
 * A schema file as components: the root under `name`, each `$defs` entry under `name` +
 * its capitalized key, and every `#/$defs/x` reference rewritten to point there. `$id` and
 * `$schema` go (the document's `jsonSchemaDialect` says 2020-12). Any other reference form
 * fails the build: it would dangle in the document.
 */
export function embed(schema: Record<string, unknown>, name: string): Record<string, JsonSchema> {
  const {
    $defs,
    $id: _id,
    $schema: _s,
    ...root
  } = schema as Record<string, unknown> & {
    $defs?: Record<string, unknown>;
  };
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref') {
        const m = typeof x === 'string' ? /^#\/\$defs\/([A-Za-z0-9_]+)$/.exec(x) : null;
        if (!m) throw new TypeError(`schema ${name}: cannot embed the reference ${String(x)}`);
        out.$ref = `#/components/schemas/${defName(name, m[1]!)}`;
      } else out[k] = rewrite(x);
    }
    return out;
  };
  const out: Record<string, JsonSchema> = { [name]: rewrite(root) as JsonSchema };
  for (const [k, v] of Object.entries($defs ?? {})) out[defName(name, k)] = rewrite(v) as JsonSchema;
  return out;
}

function defName(prefix: string, key: string): string {
  return `${prefix}${key[0]!.toUpperCase()}${key.slice(1)}`;
}

/** Schemas every route shares: problem details and their located items. */
function sharedSchemas(): Record<string, JsonSchema> {
  return {
    Problem: {
      description:
        'RFC 9457 problem details (`application/problem+json`) with the registered `code` (docs/errors.md).',
      type: 'object',
      required: ['type', 'title', 'status', 'code', 'detail'],
      properties: {
        type: {
          description: 'A URN naming the code, e.g. urn:icros:problem:case-not-found',
          type: 'string',
          maxLength: 200,
          pattern: '^urn:icros:problem:[a-z0-9-]+$',
        },
        title: { description: "The code's fixed title", type: 'string' },
        status: { type: 'integer', minimum: 400, maximum: 599 },
        code: { description: 'Switch on this, never on the text', enum: Object.keys(ERRORS) },
        detail: { description: 'What is wrong and where, for a person', type: 'string' },
        instance: {
          description: 'urn:icros:request:<X-Request-Id>',
          type: 'string',
          maxLength: 200,
          pattern: '^urn:icros:request:',
        },
        errors: { type: 'array', items: { $ref: '#/components/schemas/ProblemItem' } },
      },
    },
    ProblemItem: {
      description: 'One located problem inside a larger one (a schema error, a bad CSV cell).',
      type: 'object',
      required: ['location', 'rule', 'message'],
      properties: {
        location: {
          description: 'JSON pointer, `row 3, column "iban"`, an XML path or `query x`',
          type: 'string',
        },
        rule: { description: 'The rule broken (e.g. the JSON Schema keyword)', type: 'string' },
        message: { description: 'A sentence a person understands', type: 'string' },
      },
    },
  };
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Authentication answers of every operation that needs a token. */
const AUTH_ERRORS: ErrorCode[] = ['AUTH_REQUIRED', 'AUTH_INVALID', 'ROLE_FORBIDDEN', 'RATE_LIMITED'];
/** Answers of every operation that reads a body. */
const BODY_ERRORS: ErrorCode[] = ['BODY_MALFORMED', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

/** The `paths` object of the document. */
export function operations(): Record<string, Record<string, Record<string, unknown>>> {
  const paths: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [p, methods] of Object.entries(operationTable())) {
    paths[p] = {};
    for (const [method, op] of Object.entries(methods)) paths[p][method] = render(method, p, op);
  }
  return paths;
}

function render(method: string, p: string, op: Operation): Record<string, unknown> {
  const secured = op.roles !== undefined;
  const roles = secured ? [...op.roles!, 'admin'] : [];
  const codes = [
    ...(secured ? AUTH_ERRORS : []),
    ...(op.body ? BODY_ERRORS : []),
    ...(op.errors ?? []),
    'INTERNAL' as const,
  ];
  const byStatus = new Map<number, string[]>();
  for (const c of new Set(codes)) {
    const s = ERRORS[c].status;
    byStatus.set(s, [...(byStatus.get(s) ?? []), `\`${c}\`: ${ERRORS[c].title}`]);
  }
  for (const [s, text] of Object.entries(op.more ?? {}))
    byStatus.set(Number(s), [...(byStatus.get(Number(s)) ?? []), text]);
  const responses: Record<string, unknown> = {};
  for (const [s, r] of Object.entries(op.ok)) {
    responses[s] = {
      description: r.description,
      headers: { 'X-Request-Id': { $ref: '#/components/headers/RequestId' }, ...r.headers },
      ...(r.content
        ? { content: Object.fromEntries(Object.entries(r.content).map(([t, schema]) => [t, { schema }])) }
        : {}),
    };
  }
  for (const [s, lines] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    responses[String(s)] = {
      description: lines.join('; '),
      headers: { 'X-Request-Id': { $ref: '#/components/headers/RequestId' } },
      content: { 'application/problem+json': { schema: ref('Problem') } },
    };
  }
  const parameters = [
    ...(op.path ?? []).map((x) => ({ in: 'path', required: true, ...x })),
    ...(op.query ?? []).map((x) => ({ in: 'query', required: x.required ?? false, ...x })),
  ];
  return {
    tags: [op.tag],
    summary: op.summary,
    description: [op.description, secured ? `Roles: ${roles.join(', ')}.` : 'No token needed.']
      .filter(Boolean)
      .join('\n\n'),
    operationId: operationId(method, p),
    ...(secured ? { 'x-icros-roles': roles } : { security: [] }),
    ...(parameters.length ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: true,
            description: op.body.description,
            content: Object.fromEntries(
              Object.entries(op.body.content).map(([t, schema]) => [t, { schema }]),
            ),
          },
        }
      : {}),
    responses,
  };
}

/** `post /api/cases/{id}/forward` → `postCasesIdForward`. */
function operationId(method: string, p: string): string {
  const words = p
    .replace(/^\/api/, '')
    .split(/[/{}.]+/)
    .filter(Boolean);
  return method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}
