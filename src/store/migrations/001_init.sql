-- 001_init: the gateway's tables.
--   cases            every version of every case, local or received (versioned: PK id+version)
--   messages         outbound (outbox) and inbound messages with the exact JWS bytes and the
--                    delivery state machine of DESIGN §5
--   delivery_attempts one row per outbound send attempt (what the operator sees as history)
--   receipts         receipts issued (inbound) and received (outbound), exact JWS bytes
--   audit_events     the hash chain of DESIGN §7; audit_head is its single-row head, locked
--                    by every append so appends are serialized

CREATE TABLE cases (
  id            uuid        NOT NULL,
  version       integer     NOT NULL,
  origin_country text       NOT NULL,
  received_from text,                       -- partner country for a received case, NULL if local
  message_id    uuid,                       -- the inbound message that brought this version
  doc           jsonb       NOT NULL,
  digest        text        NOT NULL,       -- sha256 of the canonical JSON of doc
  handling      jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  withdrawn_at  timestamptz,
  PRIMARY KEY (id, version)
);
CREATE INDEX cases_created ON cases (created_at, id);

CREATE TABLE messages (
  id            uuid        NOT NULL,
  direction     text        NOT NULL CHECK (direction IN ('out', 'in')),
  peer          text        NOT NULL,       -- recipient (out) or sender (in) country
  type          text        NOT NULL,
  case_id       uuid,
  case_version  integer,
  jws           text        NOT NULL,       -- exact bytes sent or received; a retry resends these
  digest        text        NOT NULL,       -- sha256:<base64url> of jws
  state         text        NOT NULL CHECK (state IN ('queued', 'sending', 'retrying', 'delivered', 'dead', 'accepted')),
  attempts      integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  lease_until   timestamptz,                -- a 'sending' row whose lease ran out is owed again
  last_error    jsonb,                      -- the last problem (code, detail, status)
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  delivered_at  timestamptz,
  PRIMARY KEY (direction, peer, id)
);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE direction = 'out' AND state IN ('queued', 'retrying');
CREATE INDEX messages_sending ON messages (lease_until) WHERE direction = 'out' AND state = 'sending';
CREATE INDEX messages_case ON messages (case_id);
CREATE INDEX messages_created ON messages (created_at, id);

CREATE TABLE delivery_attempts (
  message_id    uuid        NOT NULL,
  peer          text        NOT NULL,
  attempt       integer     NOT NULL,
  started_at    timestamptz NOT NULL,
  ended_at      timestamptz NOT NULL DEFAULT now(),
  outcome       text        NOT NULL CHECK (outcome IN ('delivered', 'transient', 'permanent')),
  http_status   integer,
  problem       jsonb,
  PRIMARY KEY (message_id, peer, attempt)
);

CREATE TABLE receipts (
  direction     text        NOT NULL CHECK (direction IN ('out', 'in')),  -- of the message it is for
  peer          text        NOT NULL,
  message_id    uuid        NOT NULL,
  receipt_id    uuid        NOT NULL,
  jws           text        NOT NULL,
  message_digest text       NOT NULL,
  audit_head_seq bigint     NOT NULL,
  audit_head_hash text      NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (direction, peer, message_id)
);

CREATE TABLE audit_events (
  seq           bigint      PRIMARY KEY,
  at            text        NOT NULL,       -- kept as the exact string that was hashed
  actor_kind    text        NOT NULL CHECK (actor_kind IN ('user', 'partner', 'system')),
  actor_id      text        NOT NULL,
  action        text        NOT NULL,
  subject       jsonb       NOT NULL,
  detail        jsonb       NOT NULL,
  prev_hash     text        NOT NULL,
  hash          text        NOT NULL
);
CREATE INDEX audit_events_action ON audit_events (action, seq);

CREATE TABLE audit_head (
  id            integer     PRIMARY KEY CHECK (id = 1),
  seq           bigint      NOT NULL,
  hash          text        NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64));
