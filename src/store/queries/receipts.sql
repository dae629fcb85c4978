-- name: getReceipt
SELECT receipt_id, message_digest, audit_head_seq, audit_head_hash, created_at, jws
FROM receipts WHERE direction = $1 AND peer = $2 AND message_id = $3;

-- name: insertReceipts
-- Bulk form of insertReceipt: $1 is a JSON array of rows (the audit writer's deferred rows).
INSERT INTO receipts (direction, peer, message_id, receipt_id, jws, message_digest, audit_head_seq, audit_head_hash)
SELECT direction, peer, message_id, receipt_id, jws, message_digest, audit_head_seq, audit_head_hash
FROM jsonb_to_recordset($1::jsonb) AS r(direction text, peer text, message_id uuid, receipt_id uuid, jws text,
  message_digest text, audit_head_seq bigint, audit_head_hash text)
ON CONFLICT (direction, peer, message_id) DO NOTHING;
