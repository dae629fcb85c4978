/**
 * Schemas of the admin API's own request and response bodies, for the OpenAPI document
 * (./openapi.ts), and the small builders the operation table (./openapi-paths.ts) uses.
 * Shapes follow what the handlers send (./app.ts, ./audit.ts, ./reports.ts): rows keep the
 * database's snake_case names where the handler sends rows as they are.
 */
export type JsonSchema = Record<string, unknown>;

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
export const str = (extra: JsonSchema = {}): JsonSchema => ({ type: 'string', ...extra });
export const int = (extra: JsonSchema = {}): JsonSchema => ({ type: 'integer', ...extra });
export const nullable = (s: JsonSchema): JsonSchema => ({ anyOf: [s, { type: 'null' }] });
export const obj = (required: string[], properties: Record<string, JsonSchema>, extra: JsonSchema = {}) => ({
  type: 'object',
  required,
  properties,
  ...extra,
});
export const list = (items: JsonSchema, extra: JsonSchema = {}): JsonSchema => ({
  type: 'array',
  items,
  ...extra,
});
export const TS = str({ format: 'date-time' });
export const UUID = str({ format: 'uuid', maxLength: 36 });
export const COUNTRY = str({ maxLength: 2, pattern: '^[A-Z]{2}$' });
/** int8 columns: node-postgres answers them as strings, PGlite as numbers. */
export const BIGINT: JsonSchema = { type: ['integer', 'string'], maxLength: 20, pattern: '^[0-9]+$' };
export const NEXT = nullable(str({ description: 'Cursor of the next page; null on the last one' }));

/** A field of the envelope's handling (schemas/envelope/1.0.json `$defs/handling`). */
const handlingField = (field: string): JsonSchema => ({
  $ref: `#/components/schemas/EnvelopeHandling/properties/${field}`,
});

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
      origin: obj(['country', 'agency'], { country: COUNTRY, agency: nullable(str()) }),
      receivedFrom: nullable(COUNTRY),
      handling: nullable(
        obj(
          ['tlp', 'code'],
          { tlp: handlingField('tlp'), code: handlingField('code') },
          {
            description: 'The handling that binds this gateway: the received envelope’s, else the case’s own',
          },
        ),
      ),
      digest: str({ description: 'sha256:<hex> of the RFC 8785 canonical JSON of the case' }),
      withdrawnAt: nullable(TS),
      createdAt: TS,
      erased: { type: 'boolean' },
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
      handling: obj(
        ['tlp', 'code', 'legalBasis'],
        Object.fromEntries(
          ['tlp', 'code', 'purpose', 'legalBasis', 'restrictions'].map((f) => [f, handlingField(f)]),
        ),
        {
          additionalProperties: false,
          description:
            'The envelope’s handling; `purpose` here or at the top level (equal when both are given)',
        },
      ),
      purpose: handlingField('purpose'),
    },
    {
      additionalProperties: false,
      anyOf: [
        { required: ['purpose'] },
        { properties: { handling: { type: 'object', required: ['purpose'] } } },
      ],
    },
  ),
  WithdrawRequest: obj(
    ['purpose'],
    {
      purpose: str({ minLength: 1, maxLength: 500, description: 'Why (recorded in the audit log)' }),
      reason: str({ maxLength: 2000, description: 'Recorded in the audit log here, not sent' }),
      legalBasis: str({
        minLength: 1,
        maxLength: 500,
        description: 'Default: that of the last transfer to each partner',
      }),
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
