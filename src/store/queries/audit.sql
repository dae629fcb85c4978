-- name: lockAuditHead
-- Serializes appends: every appender holds this row lock until its transaction ends.
SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE;

-- name: appendAuditEvents
-- The events ($1, a JSON array of rows) and the new head ($2, $3) in one round trip.
WITH e AS (
  INSERT INTO audit_events (seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash)
  SELECT seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash
  FROM jsonb_to_recordset($1::jsonb) AS e(seq bigint, at text, actor_kind text, actor_id text, action text,
    subject jsonb, detail jsonb, prev_hash text, hash text)
)
UPDATE audit_head SET seq = $2, hash = $3 WHERE id = 1;

-- name: appendAuditInOneStatement
-- Write the rows of $1 (null, or {"insertReceipts": [rows], ...}: bulk statements by name,
-- migration 010), then lock the head, chain the events ($2: a JSON array of {jcsHead, jcsTail,
-- at, actor_kind, actor_id, action, subject, detail}) onto it, write them and the head, and
-- insert the outbox rows ($3, as insertOutboundMany, or null); the new head. One statement,
-- no transaction around it (migrations 009 and 010).
SELECT head_seq AS seq, head_hash AS hash FROM icros_append_with($1::jsonb, $2::jsonb, $3::jsonb);

-- name: listAuditEvents
SELECT seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash
FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2;

-- name: getAuditHead
SELECT seq, hash FROM audit_head WHERE id = 1;

-- name: insertCheckpoint
INSERT INTO audit_checkpoints (seq, hash, at, jws) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING;

-- name: latestCheckpoint
SELECT seq, hash, at, jws FROM audit_checkpoints ORDER BY seq DESC LIMIT 1;

-- name: listCheckpoints
-- Checkpoints with seq > $1, oldest first, at most $2.
SELECT seq, hash, at, jws FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2;

-- name: searchAuditEvents
-- Filters (NULL = any): time range [$1, $2) on `at`, actor id, action, case, message, partner;
-- cursor: seq > $8; at most $9, in chain order.
SELECT seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash
FROM audit_events
WHERE ($1::text IS NULL OR at >= $1)
  AND ($2::text IS NULL OR at < $2)
  AND ($3::text IS NULL OR actor_id = $3)
  AND ($4::text IS NULL OR action = $4)
  AND ($5::text IS NULL OR subject->>'case' = $5)
  AND ($6::text IS NULL OR subject->>'message' = $6)
  AND ($7::text IS NULL OR subject->>'partner' = $7)
  AND seq > $8
ORDER BY seq
LIMIT $9;

-- name: listAuditEventsUpTo
-- Events with $1 < seq <= $2 in chain order, at most $3 (an export up to a checkpoint).
SELECT seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash
FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3;

-- name: witnessHeads
-- Every head of a partner's chain that the partner named in a receipt to us.
SELECT peer, audit_head_seq AS seq, audit_head_hash AS hash, count(*)::int AS receipts
FROM receipts WHERE direction = 'out' GROUP BY peer, audit_head_seq, audit_head_hash;
