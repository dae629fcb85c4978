-- Local API tokens of the admin API (migration 007). Tokens are looked up by their SHA-256;
-- the token itself is never stored or passed to SQL.

-- name: findApiToken
-- The token whose hash is $1, revoked or not (a revoked token is refused with its own reason).
SELECT name, role, sha256, revoked_at FROM api_tokens WHERE sha256 = $1;

-- name: insertApiToken
-- A new token; nothing when an active token already has this name (unique partial index).
INSERT INTO api_tokens (name, role, sha256, created_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING
RETURNING name, role, created_at;

-- name: listApiTokens
-- Every token ever issued, oldest first (revoked ones included, with who revoked them).
SELECT name, role, created_at, created_by, revoked_at, revoked_by FROM api_tokens ORDER BY id;

-- name: revokeApiToken
-- Revoke the active token named $1; nothing when there is none.
UPDATE api_tokens SET revoked_at = now(), revoked_by = $2
WHERE name = $1 AND revoked_at IS NULL
RETURNING name, role, revoked_at;

-- name: apiTokenNameExists
-- Whether any token (revoked or not) was ever issued under name $1.
SELECT 1 FROM api_tokens WHERE name = $1 LIMIT 1;
