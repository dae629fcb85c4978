-- name: getReceipt
-- The receipt of one message: its own JWS, or the batch receipt that lists it.
SELECT r.receipt_id, r.message_digest, r.audit_head_seq, r.audit_head_hash, r.created_at,
       COALESCE(r.jws, b.jws) AS jws
FROM receipts r LEFT JOIN batch_receipts b ON r.jws IS NULL AND b.receipt_id = r.receipt_id
WHERE r.direction = $1 AND r.peer = $2 AND r.message_id = $3;

-- name: insertReceipts
-- Bulk form of insertReceipt: $1 is a JSON array of rows (the audit writer's deferred rows).
INSERT INTO receipts (direction, peer, message_id, receipt_id, jws, message_digest, audit_head_seq, audit_head_hash)
SELECT direction, peer, message_id, receipt_id, jws, message_digest, audit_head_seq, audit_head_hash
FROM jsonb_to_recordset($1::jsonb) AS r(direction text, peer text, message_id uuid, receipt_id uuid, jws text,
  message_digest text, audit_head_seq bigint, audit_head_hash text)
ON CONFLICT (direction, peer, message_id) DO NOTHING;
