-- 007_api_tokens: local API tokens of the admin API (`icros users add`), and operators in the audit log.
--   api_tokens       one row per token ever issued. Only the lowercase hex SHA-256 of the
--                    token is stored (the token is shown once, at creation). A name is unique
--                    among tokens that are not revoked, so a name can be reissued after its
--                    token was revoked; revoked rows stay as the record of who held what.
--   actor_kind       gains 'operator': someone at the gateway's console acting on its database
--                    directly (`icros users add --config`), authenticated by the host, not a token.
CREATE TABLE api_tokens (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text        NOT NULL,
  role          text        NOT NULL CHECK (role IN ('analyst', 'auditor', 'admin')),
  sha256        text        NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text        NOT NULL,
  revoked_at    timestamptz,
  revoked_by    text
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
  CHECK (actor_kind IN ('user', 'partner', 'system', 'operator'));
