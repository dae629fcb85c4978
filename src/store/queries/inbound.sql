-- name: acceptInboundMany
-- Bulk form of acceptInbound, used for single messages and batches alike: $1 is a JSON array
-- of {id, peer, type, case_id, case_version, jws, digest, origin_country, doc, case_digest,
-- handling} with distinct ids. One row per message stored now; a message whose (peer, id) was
-- already stored (a concurrent duplicate) is absent. casestored = false: that case version
-- was already known (kept as first received).
WITH r AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, peer text, type text, case_id uuid,
    case_version int, jws text, digest text, origin_country text, doc jsonb, case_digest text, handling jsonb)
), m AS (
  INSERT INTO messages (id, direction, peer, type, case_id, case_version, jws, digest, state, delivered_at)
  SELECT id, 'in', peer, type, case_id, case_version, jws, digest, 'accepted', now() FROM r
  ON CONFLICT (direction, peer, id) DO NOTHING
  RETURNING id
), c AS (
  INSERT INTO cases (id, version, origin_country, received_from, message_id, doc, digest, handling)
  SELECT r.case_id, r.case_version, r.origin_country, r.peer, r.id, r.doc, r.case_digest, r.handling
  FROM r JOIN m ON m.id = r.id
  WHERE r.doc IS NOT NULL
  ON CONFLICT (id, version) DO NOTHING
  RETURNING message_id
)
SELECT m.id, (c.message_id IS NOT NULL) AS casestored FROM m LEFT JOIN c ON c.message_id = m.id;

-- name: findInboundDigests
-- The digests of messages already received from partner $1 among the ids of the JSON array
-- $2 (duplicate check of a batch: the stored receipts are not needed, only the bytes' digest).
SELECT id, digest FROM messages
WHERE direction = 'in' AND peer = $1
  AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb));

-- name: insertBatchReceipts
-- Each batch receipt, stored once (batch_receipts), as the receipt of every message it lists
-- (receipts rows with jws NULL): $1 is a JSON array of {direction, peer, receipt_id, jws,
-- audit_head_seq, audit_head_hash, messages: [{message_id, message_digest}]}, one row per
-- batch (the audit writer's deferred rows). Used both ways: the receipts we issue for a
-- partner's batch ('in') and those we receive for ours ('out'). A later single resend of any
-- of these messages is answered with it.
-- The function (migration 010) is also what the one-statement append runs.
SELECT icros_insert_batch_receipts($1::jsonb);

-- name: savepointAccept
-- Storing a batch: a message that fails its insert (a database error, not a check) must not
-- fail the others, nor the other writes of the group-committed transaction.
SAVEPOINT accept_messages;

-- name: releaseAccept
RELEASE SAVEPOINT accept_messages;

-- name: rollbackAccept
ROLLBACK TO SAVEPOINT accept_messages;
