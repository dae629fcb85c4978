-- 004_audit: signed checkpoints of the audit chain, and erasure of case data.
--   audit_checkpoints  the chain head (seq, hash) at a moment, signed (JWS) with the gateway
--                      key: a verifier holding the signing certificate can tell that events up
--                      to seq were not rewritten, even by someone able to recompute hashes
--   cases.erased_at    set when the retention job erased a case version's content; the row
--                      keeps its id, version and digest (what the audit events refer to)
CREATE TABLE audit_checkpoints (
  seq           bigint      PRIMARY KEY,
  hash          text        NOT NULL,
  at            text        NOT NULL,
  jws           text        NOT NULL
);

ALTER TABLE cases ADD COLUMN erased_at timestamptz;
ALTER TABLE messages ADD COLUMN erased_at timestamptz;
CREATE INDEX cases_retention ON cases (((doc->>'retainUntil'))) WHERE erased_at IS NULL AND doc ? 'retainUntil';
CREATE INDEX audit_events_at ON audit_events (at, seq);
