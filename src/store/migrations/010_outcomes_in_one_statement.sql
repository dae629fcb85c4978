-- 010_outcomes_in_one_statement: the delivery outcomes of the sender (receipt, delivered state,
--   attempt row, `message.delivered` event) commit in one statement too, like forwards
--   (migration 009). In a transaction they took seven round trips, the last three holding the
--   chain head lock, and a forward waited for the lock while the sender's process got round
--   to sending the next statement.
--
--   icros_insert_receipts, icros_mark_delivered, icros_insert_attempts, icros_insert_batch_receipts
--                        what the bulk statements insertReceipts, markDeliveredMany,
--                        insertAttempts and insertBatchReceipts of queries/ did (they now call them)
--   icros_append_with(before, events, outbox)
--                        writes the rows of `before` ({"insertReceipts": [...], ...}, keyed by
--                        statement name), then icros_audit_append(events, outbox): the rows go
--                        in before the head is locked, as in a transaction of the audit writer
CREATE FUNCTION icros_insert_receipts(rows jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO receipts (direction, peer, message_id, receipt_id, jws, message_digest, audit_head_seq, audit_head_hash)
  SELECT r.direction, r.peer, r.message_id, r.receipt_id, r.jws, r.message_digest, r.audit_head_seq, r.audit_head_hash
  FROM jsonb_to_recordset(rows) AS r(direction text, peer text, message_id uuid, receipt_id uuid, jws text,
    message_digest text, audit_head_seq bigint, audit_head_hash text)
  ON CONFLICT (direction, peer, message_id) DO NOTHING;
END
$$;

CREATE FUNCTION icros_mark_delivered(rows jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE messages m SET state = 'delivered', delivered_at = now(), updated_at = now(), lease_until = NULL, last_error = NULL
  FROM jsonb_to_recordset(rows) AS d(peer text, id uuid)
  WHERE m.direction = 'out' AND m.peer = d.peer AND m.id = d.id AND m.state = 'sending';
END
$$;

CREATE FUNCTION icros_insert_attempts(rows jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delivery_attempts (message_id, peer, attempt, started_at, outcome, http_status, problem)
  SELECT a.message_id, a.peer, a.attempt, a.started_at, a.outcome, a.http_status, a.problem
  FROM jsonb_to_recordset(rows) AS a(message_id uuid, peer text, attempt int, started_at timestamptz,
    outcome text, http_status int, problem jsonb)
  ON CONFLICT (message_id, peer, attempt) DO NOTHING;
END
$$;

CREATE FUNCTION icros_insert_batch_receipts(rows jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WITH b AS (
    SELECT * FROM jsonb_to_recordset(rows) AS b(direction text, peer text, receipt_id uuid, jws text,
      audit_head_seq bigint, audit_head_hash text, messages jsonb)
  ), stored AS (
    INSERT INTO batch_receipts (receipt_id, jws) SELECT b.receipt_id, b.jws FROM b ON CONFLICT (receipt_id) DO NOTHING
  )
  INSERT INTO receipts (direction, peer, message_id, receipt_id, jws, message_digest, audit_head_seq, audit_head_hash)
  SELECT b.direction, b.peer, m.message_id, b.receipt_id, NULL, m.message_digest, b.audit_head_seq, b.audit_head_hash
  FROM b CROSS JOIN LATERAL jsonb_to_recordset(b.messages) AS m(message_id uuid, message_digest text)
  ON CONFLICT (direction, peer, message_id) DO NOTHING;
END
$$;

CREATE FUNCTION icros_append_with(before jsonb, events jsonb, outbox jsonb, OUT head_seq bigint, OUT head_hash text)
LANGUAGE plpgsql AS $$
DECLARE
  statement text;
BEGIN
  FOR statement IN SELECT jsonb_object_keys(COALESCE(before, '{}')) LOOP
    CASE statement
      WHEN 'insertReceipts' THEN PERFORM icros_insert_receipts(before->statement);
      WHEN 'markDeliveredMany' THEN PERFORM icros_mark_delivered(before->statement);
      WHEN 'insertAttempts' THEN PERFORM icros_insert_attempts(before->statement);
      WHEN 'insertBatchReceipts' THEN PERFORM icros_insert_batch_receipts(before->statement);
      ELSE RAISE EXCEPTION 'icros_append_with: no statement %', statement;
    END CASE;
  END LOOP;
  SELECT a.head_seq, a.head_hash INTO head_seq, head_hash FROM icros_audit_append(events, outbox) a;
END
$$;
