-- name: insertReceipt
-- The exact receipt bytes, issued (direction 'in') or received (direction 'out').
INSERT INTO receipts (direction, peer, message_id, receipt_id, jws, message_digest, audit_head_seq, audit_head_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (direction, peer, message_id) DO NOTHING
RETURNING receipt_id;

-- name: getReceipt
SELECT receipt_id, message_digest, audit_head_seq, audit_head_hash, created_at, jws
FROM receipts WHERE direction = $1 AND peer = $2 AND message_id = $3;
