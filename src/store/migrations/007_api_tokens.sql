-- 007_api_tokens: local API tokens of the admin API (`icros users add`).
--   api_tokens       one row per token ever issued. Only the lowercase hex SHA-256 of the
--                    token is stored (the token is shown once, at creation). A name is unique
--                    among tokens that are not revoked, so a name can be reissued after its
--                    token was revoked; revoked rows stay as the record of who held what.
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
