-- name: lockAuditHead
-- Serializes appends: every appender holds this row lock until its transaction ends.
SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE;

-- name: setAuditHead
UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1;

-- name: insertAuditEvents
-- Many events in one statement: $1 is a JSON array of rows.
INSERT INTO audit_events (seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash)
SELECT seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash
FROM jsonb_to_recordset($1::jsonb) AS e(seq bigint, at text, actor_kind text, actor_id text, action text,
  subject jsonb, detail jsonb, prev_hash text, hash text);

-- name: listAuditEvents
SELECT seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash
FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2;
