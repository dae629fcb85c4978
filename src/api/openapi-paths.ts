/**
 * The operations of the admin API for the OpenAPI document (./openapi.ts): one entry per
 * route of DESIGN §5 with its roles, parameters, bodies, success responses and the error
 * codes it can answer. test/e2e/openapi.spec.ts checks that every route of the app is here
 * and that every recorded e2e exchange conforms.
 */
import type { Role } from '../config/load.js';
import { formatIds, nationalFormat, SHARED_FORMAT } from '../convert/registry.js';
import type { ErrorCode } from '../errors.js';
import { COUNTRY, int, type JsonSchema, list, NEXT, obj, ref, str, TS, UUID } from './openapi-schemas.js';

export interface Param {
  name: string;
  schema: JsonSchema;
  description?: string;
  required?: boolean;
}

export interface Operation {
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

export function operationTable(): Record<string, Record<string, Operation>> {
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
          {
            name: 'receivedFrom',
            schema: pattern('^([A-Z]{2}|none)$'),
            description: 'Partner it was received from, or `none` for our own cases',
          },
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
                  "The case's handling code (e.g. H1: not to be used as evidence without the provider's permission)",
                schema: str(),
              },
              'Icros-TLP': { description: "The case's TLP", schema: str() },
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
          'CASE_WITHDRAWN',
          'CASE_CHANGED',
          'FORWARD_PARTNER_UNKNOWN',
          'HANDLING_FORBIDS_FORWARD',
        ],
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
        errors: [
          'REQUEST_INVALID',
          'PAYLOAD_FORBIDDEN_KEY',
          'CASE_NOT_FOUND',
          'WITHDRAW_NOT_ORIGIN',
          'CASE_WITHDRAWN',
        ],
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
        roles: ['admin'],
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
        roles: ['admin'],
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
              {
                name: str({ minLength: 1, maxLength: 100 }),
                role: { enum: ['analyst', 'auditor', 'admin'] },
              },
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
        errors: ['REQUEST_INVALID'],
        more: {
          404: 'No local user with this name',
          409: 'The user is already revoked, or is configured (not local)',
        },
      },
    },
  };
}
