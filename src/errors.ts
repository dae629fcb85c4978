/**
 * The one registry of error codes. Every error the gateway reports to a partner, an analyst
 * or an operator has a stable `code` listed here with its HTTP status and a title; the
 * `docs/errors.md` table is checked against this registry by a test.
 *
 * Problems are rendered as RFC 9457 problem details (`application/problem+json`) with our
 * `code` as an extension member, so clients switch on `code`, never on the text.
 */

export const ERRORS = {
  // Partner protocol, in the order the receiver checks them (DESIGN §4).
  PARTNER_UNKNOWN: { status: 403, title: 'The client certificate is not registered for any partner' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'The Content-Type or Content-Encoding is not the one this endpoint accepts',
  },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body exceeds the size limit' },
  RATE_LIMITED: { status: 429, title: 'Too many requests from this partner' },
  JWS_MALFORMED: { status: 401, title: 'The body is not a JWS in compact serialization' },
  JWS_HEADER_INVALID: { status: 401, title: 'The JWS protected header is not acceptable' },
  JWS_ALG_NOT_ALLOWED: { status: 401, title: "The JWS algorithm is not in the partner's allow-list" },
  JWS_CRIT_UNSUPPORTED: {
    status: 401,
    title: 'The JWS names a critical extension this gateway does not support',
  },
  JWS_KID_UNKNOWN: { status: 401, title: "The JWS kid is not one of the partner's registered signing keys" },
  JWS_SIGNATURE_INVALID: { status: 401, title: 'The JWS signature does not verify' },
  PAYLOAD_FORBIDDEN_KEY: {
    status: 422,
    title: 'The payload contains a forbidden key (__proto__, constructor, prototype)',
  },
  ENVELOPE_INVALID: { status: 422, title: 'The envelope does not match schemas/envelope/1.0.json' },
  SENDER_MISMATCH: { status: 403, title: 'The envelope "from" is not the partner authenticated by mTLS' },
  RECIPIENT_MISMATCH: { status: 403, title: 'The envelope "to" is not this gateway' },
  SENT_AT_OUT_OF_WINDOW: {
    status: 422,
    title: 'The envelope "sentAt" is outside the accepted clock-skew window',
  },
  DUPLICATE_CONFLICT: {
    status: 409,
    title: 'A different message with the same id was already received from this partner',
  },
  CASE_INVALID: { status: 422, title: 'The case does not match schemas/icros-case/1.0.json' },
  // POST /v1/messages:batch, whole request (each message's own problems are items of the batch receipt).
  BATCH_INVALID: {
    status: 400,
    title: 'The batch body is not JSON of the form {"messages": [compact JWS strings]}',
  },
  BATCH_EMPTY: { status: 400, title: 'The batch has no messages' },
  BATCH_TOO_MANY: {
    status: 413,
    title: 'The batch has more messages than this gateway accepts in one request',
  },

  // Admin API.
  AUTH_REQUIRED: { status: 401, title: 'A bearer token is required' },
  AUTH_INVALID: { status: 401, title: 'The bearer token is not valid' },
  ROLE_FORBIDDEN: { status: 403, title: 'Your role does not allow this operation' },
  BODY_MALFORMED: { status: 400, title: 'The request body could not be parsed' },
  REQUEST_INVALID: { status: 400, title: 'The request is not valid' },
  FORMAT_UNSUPPORTED: { status: 400, title: 'The report format is not supported' },
  REPORT_INVALID: { status: 422, title: 'The report is not valid' },
  CASE_NOT_FOUND: { status: 404, title: 'No case with this id' },
  CASE_ERASED: { status: 410, title: 'The case content was erased at the end of its retention period' },
  MESSAGE_NOT_FOUND: { status: 404, title: 'No message with this id' },
  MESSAGE_NOT_DEAD: { status: 409, title: 'Only a dead message can be redriven' },
  FORWARD_PARTNER_UNKNOWN: {
    status: 422,
    title: 'The forward names a country that is not a registered partner',
  },
  NOT_FOUND: { status: 404, title: 'No such route' },
  // Admin API: tokens, OIDC, rate limits (src/api/auth.ts, src/api/users.ts).
  AUTH_PROVIDER_UNAVAILABLE: {
    status: 503,
    title: "The OIDC issuer's keys (JWKS) could not be fetched to verify the token",
  },
  ADMIN_RATE_LIMITED: { status: 429, title: 'Too many requests with this token' },
  USER_NAME_TAKEN: { status: 409, title: 'An active token already has this name' },
  USER_NOT_FOUND: { status: 404, title: 'No local token with this name' },
  USER_ALREADY_REVOKED: { status: 409, title: 'The token with this name is already revoked' },
  USER_IN_CONFIG: {
    status: 409,
    title: 'The token is defined in the gateway config (admin.tokens), not in the database',
  },
  // Cases: handling codes at egress and withdrawal (docs/operations.md, "Handling codes at egress").
  HANDLING_FORBIDS_FORWARD: {
    status: 403,
    title: 'The case was received under handling code H2 or TLP:RED and cannot be forwarded onward',
  },
  CASE_WITHDRAWN: { status: 409, title: 'The case was withdrawn' },
  CASE_CHANGED: { status: 409, title: 'The case kept changing while it was being forwarded' },
  WITHDRAW_NOT_ORIGIN: { status: 403, title: 'Only the gateway where a case originated can withdraw it' },

  // Sender side: why a delivery attempt failed (stored on the message, shown in GET /api/messages).
  DELIVERY_NETWORK_ERROR: { status: 502, title: 'The partner could not be reached' },
  DELIVERY_TIMEOUT: { status: 504, title: 'The partner did not answer in time' },
  MESSAGE_EXPIRED: { status: 504, title: 'The message was not delivered within its maximum age' },
  DELIVERY_REJECTED: { status: 502, title: 'The partner rejected the message' },
  RECEIPT_INVALID: { status: 502, title: "The partner's receipt does not verify" },
  RECEIPT_DIGEST_MISMATCH: {
    status: 502,
    title: "The partner's receipt is not for the bytes that were sent",
  },

  // Operator side.
  CONFIG_INVALID: { status: 500, title: 'The gateway configuration is not valid' },
  CONFIG_UNREADABLE: { status: 500, title: 'The gateway configuration could not be read' },
  FILE_UNREADABLE: { status: 400, title: 'An input file could not be read' },
  CHECKPOINT_INVALID: { status: 422, title: 'An audit checkpoint does not verify' },
  AUDIT_CHAIN_BROKEN: { status: 409, title: 'The audit chain does not verify' },
  SERVER_UNREACHABLE: { status: 503, title: 'The CLI could not reach the admin API' },
  PKI_BAD_COUNTRIES: { status: 400, title: 'The country list is not valid' },
  PKI_BAD_SUBJECT: { status: 400, title: 'The certificate subject is not valid' },
  PKI_BAD_ALG: { status: 400, title: 'The signing algorithm is not one the gateway supports' },
  PKI_BAD_CA: { status: 500, title: 'The CA certificate or key is not usable' },
  PKI_BAD_CERT: { status: 500, title: 'A certificate could not be read' },
  PKI_STALE_COUNTRY: { status: 500, title: 'A country folder holds certificates not issued by this CA' },
  PKI_IO: { status: 500, title: 'The PKI files could not be read or written' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** One located problem inside a larger one (a schema error, a bad CSV cell). */
export interface ProblemItem {
  /** JSON pointer, `row 3, column "iban"`, or an XML path. */
  location: string;
  /** The rule broken (e.g. the JSON Schema keyword). */
  rule: string;
  /** A sentence a person understands. */
  message: string;
}

/** An error with a registered code. Nothing outside tests throws a bare `Error`. */
export class IcrosError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors?: ProblemItem[];

  constructor(code: ErrorCode, detail?: string, opts: { cause?: unknown; errors?: ProblemItem[] } = {}) {
    super(detail ?? ERRORS[code].title, { cause: opts.cause });
    this.name = 'IcrosError';
    this.code = code;
    this.status = ERRORS[code].status;
    if (opts.errors) this.errors = opts.errors;
  }
}

/** RFC 9457 problem details with our `code` extension member. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
  errors?: ProblemItem[];
}

/** `type` URI of a code: a URN, so it never pretends to be a resolvable page. */
export function problemType(code: ErrorCode): string {
  return `urn:icros:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

/** Render any thrown value as a problem. Unknown errors become INTERNAL without their text. */
export function toProblem(err: unknown, instance?: string): Problem {
  const e =
    err instanceof IcrosError ? err : new IcrosError('INTERNAL', 'Internal error; see the gateway log');
  const problem: Problem = {
    type: problemType(e.code),
    title: ERRORS[e.code].title,
    status: e.status,
    code: e.code,
    detail: e.message,
  };
  if (instance) problem.instance = instance;
  if (e.errors) problem.errors = e.errors;
  return problem;
}

export function isIcrosError(err: unknown, code?: ErrorCode): err is IcrosError {
  return err instanceof IcrosError && (code === undefined || err.code === code);
}
