-- name: getReceipt
-- The receipt of one message: its own JWS, or the batch receipt that lists it.
SELECT r.receipt_id, r.message_digest, r.audit_head_seq, r.audit_head_hash, r.created_at,
       COALESCE(r.jws, b.jws) AS jws
FROM receipts r LEFT JOIN batch_receipts b ON r.jws IS NULL AND b.receipt_id = r.receipt_id
WHERE r.direction = $1 AND r.peer = $2 AND r.message_id = $3;

-- name: insertReceipts
-- Bulk form of insertReceipt: $1 is a JSON array of rows (the audit writer's deferred rows).
-- The function (migration 010) is also what the one-statement append runs.
SELECT icros_insert_receipts($1::jsonb);
