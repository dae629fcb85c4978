/**
 * The operations of the admin API for the OpenAPI document (./openapi.ts): one entry per
 * route of DESIGN §5, with its roles, parameters, bodies, success responses and the error
 * codes it can answer. Shapes follow what the handlers send (./app.ts, ./audit.ts,
 * ./reports.ts); test/e2e/openapi.spec.ts checks that every route of the app is here and
 * every recorded e2e exchange conforms.
 */
import type { Role } from '../config/load.js';
import { formatIds, nationalFormat, SHARED_FORMAT } from '../convert/registry.js';
import { ERRORS, type ErrorCode } from '../errors.js';

export type JsonSchema = Record<string, unknown>;

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const str = (extra: JsonSchema = {}): JsonSchema => ({ type: 'string', ...extra });
const int = (extra: JsonSchema = {}): JsonSchema => ({ type: 'integer', ...extra });
const nullable = (s: JsonSchema): JsonSchema => ({ anyOf: [s, { type: 'null' }] });
const obj = (required: string[], properties: Record<string, JsonSchema>, extra: JsonSchema = {}) => ({
  type: 'object',
  required,
  properties,
  ...extra,
});
const list = (items: JsonSchema, extra: JsonSchema = {}): JsonSchema => ({ type: 'array', items, ...extra });
const TS = str({ format: 'date-time' });
const UUID = str({ format: 'uuid', maxLength: 36 });
const COUNTRY = str({ maxLength: 2, pattern: '^[A-Z]{2}$' });
/** int8 columns: node-postgres answers them as strings, PGlite as numbers. */
const BIGINT: JsonSchema = { type: ['integer', 'string'], maxLength: 20, pattern: '^[0-9]+$' };
const NEXT = nullable(str({ description: 'Cursor of the next page; null on the last one' }));

/** Components only the routes use (the case and envelope schemas come from schemas/). */
export const ROUTE_SCHEMAS: Record<string, JsonSchema> = {
  IngestResult: obj(['accepted', 'rejected'], {
    accepted: list(
      obj(['index', 'id', 'version', 'status'], {
        index: int({ minimum: 0, description: "The report's position in the upload (plus `offset`)" }),
        id: UUID,
        version: int({ minimum: 1 }),
        status: { enum: ['created', 'unchanged'] },
      }),
    ),
    rejected: list(
      obj(['index', 'errors'], { index: int({ minimum: 0 }), errors: list(ref('ProblemItem')) }),
    ),
  }),
  CaseListItem: obj(
    ['id', 'version', 'origin', 'receivedFrom', 'withdrawnAt', 'createdAt'],
    {
      id: UUID,
      version: int({ minimum: 1 }),
      origin: obj(['country', 'agency'], { country: COUNTRY, agency: str() }),
      receivedFrom: nullable(COUNTRY),
      withdrawnAt: nullable(TS),
      createdAt: TS,
    },
    { description: 'One case of GET /api/cases (its latest version); items may carry more properties.' },
  ),
  ErasedCase: obj(
    ['id', 'version', 'erased'],
    { id: UUID, version: int({ minimum: 1 }), erased: { const: true } },
    { additionalProperties: false, description: 'What is left of a case erased at the end of its retention' },
  ),
  CaseRecord: obj(
    ['id', 'version', 'origin_country', 'received_from', 'doc', 'digest', 'created_at', 'withdrawn_at'],
    {
      id: UUID,
      version: int({ minimum: 1 }),
      origin_country: COUNTRY,
      received_from: nullable(COUNTRY),
      message_id: nullable(UUID),
      doc: { anyOf: [ref('Case'), ref('ErasedCase')] },
      digest: str({ description: 'sha256:<hex> of the RFC 8785 canonical JSON of doc' }),
      handling: nullable(ref('EnvelopeHandling')),
      created_at: TS,
      withdrawn_at: nullable(TS),
    },
    { description: 'The latest stored version of a case, as GET /api/cases/{id} answers it.' },
  ),
  ForwardRequest: obj(
    ['to', 'handling'],
    {
      to: list(COUNTRY, { minItems: 1, maxItems: 50, description: 'Partner countries, e.g. ["DE"]' }),
      handling: ref('EnvelopeHandling'),
    },
    { additionalProperties: false },
  ),
  WithdrawRequest: obj(
    ['purpose'],
    {
      purpose: str({ minLength: 1, maxLength: 500, description: 'Why (recorded in the audit log)' }),
      reason: str({ maxLength: 2000 }),
    },
    { additionalProperties: false },
  ),
  QueuedMessages: obj(['messages'], {
    messages: list(
      obj(['id', 'to', 'digest', 'state'], {
        id: UUID,
        to: COUNTRY,
        digest: str({ description: 'sha256:<base64url> of the exact JWS bytes' }),
        state: { const: 'queued' },
      }),
    ),
  }),
  Message: obj(['id', 'direction', 'peer', 'type', 'digest', 'state', 'attempts', 'created_at'], {
    id: UUID,
    direction: { enum: ['in', 'out'] },
    peer: COUNTRY,
    type: str(),
    case_id: nullable(UUID),
    case_version: nullable(int()),
    digest: str(),
    state: { enum: ['queued', 'sending', 'retrying', 'delivered', 'dead', 'accepted'] },
    attempts: int({ minimum: 0 }),
    next_attempt_at: nullable(TS),
    last_error: nullable({ type: 'object', description: 'The last problem (code, detail, status)' }),
    created_at: TS,
    updated_at: TS,
    delivered_at: nullable(TS),
  }),
  MessageDetail: {
    allOf: [
      ref('Message'),
      obj(['attempts_history', 'receipt'], {
        attempts_history: list(
          obj(['attempt', 'started_at', 'outcome'], {
            attempt: int({ minimum: 1 }),
            started_at: TS,
            ended_at: TS,
            outcome: { enum: ['delivered', 'transient', 'permanent'] },
            http_status: nullable(int()),
            problem: nullable({ type: 'object' }),
          }),
        ),
        receipt: nullable(
          obj(['receipt_id', 'message_digest', 'audit_head_seq', 'audit_head_hash', 'jws'], {
            receipt_id: UUID,
            message_digest: str(),
            audit_head_seq: BIGINT,
            audit_head_hash: str(),
            created_at: TS,
            jws: str({ description: 'The signed receipt, compact JWS (or the batch receipt that lists it)' }),
          }),
        ),
      }),
    ],
  },
  Partner: obj(['country', 'agency', 'url', 'circuit', 'inFlight', 'messages', 'oldestOpenAgeSeconds'], {
    country: COUNTRY,
    agency: str(),
    url: str(),
    circuit: obj(['state', 'consecutiveFailures'], {
      state: { enum: ['closed', 'open'] },
      consecutiveFailures: int({ minimum: 0 }),
      openedAt: TS,
      lastProbeAt: TS,
      lastProbeError: str(),
    }),
    inFlight: int({ minimum: 0 }),
    messages: {
      type: 'object',
      description: 'Outbound messages by state',
      additionalProperties: int({ minimum: 0 }),
    },
    oldestOpenAgeSeconds: nullable(int({ minimum: 0 })),
    delivery: { type: 'object', description: "The partner's delivery policy overrides" },
  }),
  AuditEvent: obj(['seq', 'at', 'actor', 'action', 'subject', 'detail', 'prevHash', 'hash'], {
    seq: int({ minimum: 1 }),
    at: str(),
    actor: obj(['kind', 'id'], { kind: { enum: ['user', 'partner', 'system'] }, id: str() }),
    action: str(),
    subject: obj([], { case: str(), message: str(), partner: str() }),
    detail: { type: 'object' },
    prevHash: str({ maxLength: 64, pattern: '^[0-9a-f]{64}$' }),
    hash: str({ maxLength: 64, pattern: '^[0-9a-f]{64}$' }),
  }),
  AuditVerification: obj(['ok', 'checked', 'head', 'firstBadSeq', 'reason', 'checkpoints'], {
    ok: { type: 'boolean' },
    checked: int({ minimum: 0 }),
    head: nullable(obj(['seq', 'hash'], { seq: int(), hash: str() })),
    firstBadSeq: nullable(int()),
    reason: nullable(str()),
    checkpoints: int({ minimum: 0 }),
  }),
  User: obj(['name', 'role', 'source', 'createdAt', 'createdBy', 'revokedAt'], {
    name: str(),
    role: { enum: ['analyst', 'auditor', 'admin'] },
    source: { enum: ['config', 'local'] },
    createdAt: nullable(TS),
    createdBy: nullable(str()),
    revokedAt: nullable(TS),
  }),
};

interface Param {
  name: string;
  schema: JsonSchema;
  description?: string;
  required?: boolean;
}

interface Operation {
  tag: string;
  summary: string;
  description?: string;
  /** Roles allowed besides admin; absent = no token needed. */
  roles?: Role[];
  path?: Param[];
  query?: Param[];
  body?: { description: string; content: Record<string, JsonSchema> };
  /** Success responses: status → description, media type → schema, headers. */
  ok: Record<
    number,
    { description: string; content?: Record<string, JsonSchema>; headers?: Record<string, JsonSchema> }
  >;
  /** Registered error codes this operation answers besides the authentication ones. */
  errors?: ErrorCode[];
  /** Problems whose code another part of the gateway registers: status → description. */
  more?: Record<number, string>;
}

const json = (schema: JsonSchema) => ({ 'application/json': schema });
const CASE_ID: Param = { name: 'id', schema: UUID, description: 'Case id (UUID)' };
const MESSAGE_ID: Param = { name: 'id', schema: UUID, description: 'Message id (UUIDv7)' };
const LIMIT: Param = {
  name: 'limit',
  schema: int({ minimum: 1, maximum: 1000, default: 100 }),
  description: 'Page size',
};
const pattern = (p: string, extra: JsonSchema = {}) => str({ maxLength: 200, pattern: p, ...extra });
const AUDIT_TIME = pattern('^\\d{4}-\\d{2}-\\d{2}(T[0-9:.]+Z)?$', {
  description: 'YYYY-MM-DD or UTC date-time',
});

/** Media types an export can answer with, base type → the formats that use it. */
function exportMediaTypes(): Record<string, string[]> {
  const out: Record<string, string[]> = { 'application/json': [SHARED_FORMAT] };
  for (const id of formatIds().filter((f) => f !== SHARED_FORMAT)) {
    const base = nationalFormat(id).spec.mediaType.split(';')[0]!.trim();
    out[base] = [...(out[base] ?? []), id];
  }
  return out;
}

function table(): Record<string, Record<string, Operation>> {
  const formats = formatIds();
  const exportTypes = exportMediaTypes();
  return {
    '/healthz': {
      get: {
        tag: 'operations',
        summary: 'Liveness',
        ok: {
          200: {
            description: 'The process answers',
            content: json(obj(['status'], { status: { const: 'ok' } })),
          },
        },
      },
    },
    '/readyz': {
      get: {
        tag: 'operations',
        summary: 'Readiness: database, queue, keys and certificates',
        ok: {
          200: { description: 'Ready to take traffic', content: json(obj(['status'], { status: str() })) },
          503: {
            description: 'Not ready; the body says which dependency',
            content: json(obj(['status'], { status: str() })),
          },
        },
      },
    },
    '/metrics': {
      get: {
        tag: 'operations',
        summary: 'Prometheus metrics (text exposition format)',
        ok: { 200: { description: 'Metrics', content: { 'text/plain': str() } } },
      },
    },
    '/api/openapi.json': {
      get: {
        tag: 'operations',
        summary: 'This document (no token needed)',
        ok: {
          200: {
            description: 'OpenAPI 3.1',
            content: json(obj(['openapi', 'paths'], { openapi: pattern('^3\\.1\\.') })),
          },
        },
      },
    },
    '/api/reports': {
      post: {
        tag: 'cases',
        summary: 'Ingest national reports',
        description:
          'Converts and validates each report of the body on its own: valid ones are stored as cases (each audited), ' +
          'invalid ones come back under `rejected` with every located error. When none is valid: 422 REPORT_INVALID ' +
          'with all errors.',
        roles: ['analyst'],
        query: [
          {
            name: 'format',
            schema: { enum: formats, default: SHARED_FORMAT },
            description: 'Report format id',
          },
          {
            name: 'offset',
            schema: int({ minimum: 0, maximum: 999_999_999 }),
            description: "Index of this upload's first report in the whole file (chunked uploads)",
          },
        ],
        body: {
          description:
            'One report file: shared JSON (a case, an array or {"cases": [...]}), a national JSON, CSV or XML export.',
          content: { 'application/json': {}, 'text/csv': str(), 'application/xml': str() },
        },
        ok: {
          201: {
            description: 'At least one report was stored or already known',
            content: json(ref('IngestResult')),
          },
        },
        errors: ['FORMAT_UNSUPPORTED', 'REQUEST_INVALID', 'PAYLOAD_FORBIDDEN_KEY', 'REPORT_INVALID'],
      },
    },
    '/api/cases': {
      get: {
        tag: 'cases',
        summary: 'List cases (latest version of each), newest first',
        roles: ['analyst'],
        query: [
          { name: 'origin', schema: COUNTRY, description: 'Origin country' },
          { name: 'receivedFrom', schema: COUNTRY, description: 'Partner it was received from' },
          { name: 'withdrawn', schema: { enum: ['true', 'false'] } },
          { name: 'since', schema: TS, description: 'Created at or after' },
          LIMIT,
          {
            name: 'cursor',
            schema: pattern('^[A-Za-z0-9_-]{1,200}$'),
            description: '`next` of the previous page',
          },
        ],
        ok: {
          200: {
            description: 'One page',
            content: json(obj(['cases', 'next'], { cases: list(ref('CaseListItem')), next: NEXT })),
          },
        },
        errors: ['REQUEST_INVALID'],
      },
    },
    '/api/cases/{id}': {
      get: {
        tag: 'cases',
        summary: 'Read a case (audited as case.read)',
        roles: ['analyst'],
        path: [CASE_ID],
        ok: { 200: { description: 'The latest version', content: json(ref('CaseRecord')) } },
        errors: ['CASE_NOT_FOUND'],
      },
    },
    '/api/cases/{id}/export': {
      get: {
        tag: 'cases',
        summary: 'Export a case in a format (audited with its purpose)',
        description: `Media types: ${Object.entries(exportTypes)
          .map(([t, ids]) => `${t} (${ids.join(', ')})`)
          .join('; ')}.`,
        roles: ['analyst'],
        path: [CASE_ID],
        query: [
          { name: 'format', schema: { enum: formats, default: SHARED_FORMAT } },
          {
            name: 'purpose',
            required: true,
            schema: str({ minLength: 1, maxLength: 500 }),
            description: 'Why the case is exported (audited)',
          },
        ],
        ok: {
          200: {
            description: 'The case in the format asked for',
            content: Object.fromEntries(
              Object.keys(exportTypes).map((t) => [t, t.endsWith('json') ? {} : str()]),
            ),
            headers: {
              'Icros-Handling': {
                description:
                  "The case's handling marking (e.g. H1: not to be disseminated further without permission)",
                schema: str(),
              },
            },
          },
        },
        errors: ['FORMAT_UNSUPPORTED', 'REQUEST_INVALID', 'CASE_NOT_FOUND', 'CASE_ERASED'],
        more: { 403: 'The handling code of the case forbids this export' },
      },
    },
    '/api/cases/{id}/forward': {
      post: {
        tag: 'cases',
        summary: 'Forward a case: one signed message per partner (202)',
        roles: ['analyst'],
        path: [CASE_ID],
        body: {
          description: 'Partners and handling (purpose, legal basis, TLP, handling code)',
          content: json(ref('ForwardRequest')),
        },
        ok: { 202: { description: 'Queued', content: json(ref('QueuedMessages')) } },
        errors: [
          'REQUEST_INVALID',
          'PAYLOAD_FORBIDDEN_KEY',
          'CASE_NOT_FOUND',
          'CASE_ERASED',
          'FORWARD_PARTNER_UNKNOWN',
        ],
        more: {
          403: 'The case was received under H2 or TLP:RED and cannot be forwarded onward (the problem names the code)',
        },
      },
    },
    '/api/cases/{id}/withdraw': {
      post: {
        tag: 'cases',
        summary: 'Withdraw a case: case.withdraw to every partner that received it (202)',
        roles: ['analyst'],
        path: [CASE_ID],
        body: { description: 'Why', content: json(ref('WithdrawRequest')) },
        ok: { 202: { description: 'Queued', content: json(ref('QueuedMessages')) } },
        errors: ['REQUEST_INVALID', 'PAYLOAD_FORBIDDEN_KEY', 'CASE_NOT_FOUND'],
        more: { 403: 'Only the origin of a case can withdraw it', 409: 'The case is already withdrawn' },
      },
    },
    '/api/messages': {
      get: {
        tag: 'messages',
        summary: 'List messages, newest first',
        roles: ['analyst'],
        query: [
          { name: 'direction', schema: { enum: ['in', 'out'] } },
          {
            name: 'state',
            schema: { enum: ['queued', 'sending', 'retrying', 'delivered', 'dead', 'accepted'] },
          },
          { name: 'partner', schema: COUNTRY },
          { name: 'case', schema: UUID },
          LIMIT,
          {
            name: 'cursor',
            schema: pattern('^[A-Za-z0-9_-]{1,200}$'),
            description: '`next` of the previous page',
          },
        ],
        ok: {
          200: {
            description: 'One page',
            content: json(obj(['messages', 'next'], { messages: list(ref('Message')), next: NEXT })),
          },
        },
        errors: ['REQUEST_INVALID'],
      },
    },
    '/api/messages/{id}': {
      get: {
        tag: 'messages',
        summary: 'A message with its attempt history and receipt',
        description:
          'When this gateway both sent and received a message with this id (a loop-back), both come back under `messages`.',
        roles: ['analyst'],
        path: [MESSAGE_ID],
        ok: {
          200: {
            description: 'The message',
            content: json({
              anyOf: [ref('MessageDetail'), obj(['messages'], { messages: list(ref('MessageDetail')) })],
            }),
          },
        },
        errors: ['MESSAGE_NOT_FOUND'],
      },
    },
    '/api/messages/redrive': {
      post: {
        tag: 'messages',
        summary: 'Re-queue every dead outbound message (to one partner)',
        roles: ['analyst'],
        body: {
          description: '{"state": "dead"} and optionally the partner',
          content: json(
            obj(['state'], { state: { const: 'dead' }, partner: COUNTRY }, { additionalProperties: false }),
          ),
        },
        ok: {
          200: {
            description: 'How many were re-queued',
            content: json(
              obj(['redriven', 'messages'], {
                redriven: int({ minimum: 0 }),
                messages: list(obj(['id', 'partner'], { id: UUID, partner: COUNTRY })),
              }),
            ),
          },
        },
        errors: ['REQUEST_INVALID', 'PAYLOAD_FORBIDDEN_KEY'],
      },
    },
    '/api/messages/{id}/redrive': {
      post: {
        tag: 'messages',
        summary: 'Re-queue one dead outbound message',
        roles: ['analyst'],
        path: [MESSAGE_ID],
        ok: {
          200: {
            description: 'Queued again',
            content: json(
              obj(['id', 'partner', 'state'], { id: UUID, partner: COUNTRY, state: { const: 'queued' } }),
            ),
          },
        },
        errors: ['MESSAGE_NOT_FOUND', 'MESSAGE_NOT_DEAD'],
      },
    },
    '/api/partners': {
      get: {
        tag: 'partners',
        summary: 'Partner registry and delivery health',
        roles: ['analyst', 'auditor'],
        ok: {
          200: {
            description: 'Every configured partner',
            content: json(obj(['driver', 'partners'], { driver: str(), partners: list(ref('Partner')) })),
          },
        },
      },
    },
    '/api/audit': {
      get: {
        tag: 'audit',
        summary: 'Query audit events in chain order',
        roles: ['auditor'],
        query: [
          { name: 'from', schema: AUDIT_TIME },
          { name: 'to', schema: AUDIT_TIME },
          { name: 'actor', schema: pattern('^[\\x21-\\x7e]{1,200}$') },
          { name: 'action', schema: pattern('^[a-z][a-z0-9._-]{0,100}$') },
          { name: 'case', schema: pattern('^[0-9a-f-]{36}$') },
          { name: 'message', schema: pattern('^[0-9a-f-]{36}$') },
          { name: 'partner', schema: COUNTRY },
          { name: 'cursor', schema: pattern('^[0-9]{1,18}$'), description: '`next` of the previous page' },
          LIMIT,
        ],
        ok: {
          200: {
            description: 'One page',
            content: json(obj(['events', 'next'], { events: list(ref('AuditEvent')), next: NEXT })),
          },
        },
        errors: ['REQUEST_INVALID'],
      },
    },
    '/api/audit/export': {
      get: {
        tag: 'audit',
        summary: 'The whole chain, streamed, ending at a checkpoint written for it (audited)',
        roles: ['auditor'],
        query: [{ name: 'format', schema: { enum: ['jsonl', 'csv'], default: 'jsonl' } }],
        ok: {
          200: {
            description: 'JSON Lines (one event a line, then {"checkpoint": JWS}) or CSV',
            content: { 'application/x-ndjson': str(), 'text/csv': str() },
            headers: {
              'Content-Disposition': {
                description: 'attachment; filename="audit-<cc>-<seq>.<ext>"',
                schema: str(),
              },
            },
          },
        },
        errors: ['REQUEST_INVALID'],
      },
    },
    '/api/audit/verify': {
      get: {
        tag: 'audit',
        summary: 'Verify the stored chain against its signed checkpoints (audited)',
        roles: ['auditor'],
        ok: {
          200: {
            description: 'The verdict (ok false names the first bad seq)',
            content: json(ref('AuditVerification')),
          },
        },
      },
    },
    '/api/audit/checkpoints': {
      get: {
        tag: 'audit',
        summary: 'Signed checkpoints, oldest first',
        roles: ['auditor'],
        query: [
          {
            name: 'after',
            schema: pattern('^[0-9]{1,18}$'),
            description: 'Only checkpoints with seq > after',
          },
          LIMIT,
        ],
        ok: {
          200: {
            description: 'One page and the certificate that verifies them',
            content: json(
              obj(['checkpoints', 'next', 'signingCertificate'], {
                checkpoints: list(
                  obj(['seq', 'hash', 'at', 'jws'], {
                    seq: int({ minimum: 1 }),
                    hash: str(),
                    at: str(),
                    jws: str(),
                  }),
                ),
                next: NEXT,
                signingCertificate: str({ description: 'PEM' }),
              }),
            ),
          },
        },
        errors: ['REQUEST_INVALID'],
      },
    },
    '/api/users': {
      get: {
        tag: 'users',
        summary: 'Users: configured tokens and local ones',
        roles: [],
        ok: {
          200: {
            description: 'Every user, revoked ones too',
            content: json(obj(['users'], { users: list(ref('User')) })),
          },
        },
      },
      post: {
        tag: 'users',
        summary: 'Create a local token (shown once; only its hash is stored)',
        roles: [],
        body: {
          description: 'Name and role',
          content: json(
            obj(
              ['name', 'role'],
              { name: pattern('^[A-Za-z0-9._@-]{1,100}$'), role: { enum: ['analyst', 'auditor', 'admin'] } },
              { additionalProperties: false },
            ),
          ),
        },
        ok: {
          201: {
            description: 'Created; `token` is never shown again',
            content: json(
              obj(['name', 'role', 'token', 'createdAt'], {
                name: str(),
                role: { enum: ['analyst', 'auditor', 'admin'] },
                token: str(),
                createdAt: TS,
              }),
            ),
          },
        },
        errors: ['REQUEST_INVALID', 'PAYLOAD_FORBIDDEN_KEY'],
        more: { 409: 'A user with this name exists' },
      },
    },
    '/api/users/{name}/revoke': {
      post: {
        tag: 'users',
        summary: 'Revoke a local token',
        roles: [],
        path: [{ name: 'name', schema: str({ maxLength: 100 }) }],
        ok: {
          200: {
            description: 'Revoked',
            content: json(obj(['name', 'revokedAt'], { name: str(), revokedAt: TS })),
          },
        },
        more: {
          404: 'No local user with this name',
          409: 'The user is already revoked, or is configured (not local)',
        },
      },
    },
  };
}

/** Authentication answers of every operation that needs a token. */
const AUTH_ERRORS: ErrorCode[] = ['AUTH_REQUIRED', 'AUTH_INVALID', 'ROLE_FORBIDDEN', 'RATE_LIMITED'];
/** Answers of every operation that reads a body. */
const BODY_ERRORS: ErrorCode[] = ['BODY_MALFORMED', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

/** The `paths` object of the document. */
export function operations(): Record<string, Record<string, Record<string, unknown>>> {
  const paths: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [p, methods] of Object.entries(table())) {
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
