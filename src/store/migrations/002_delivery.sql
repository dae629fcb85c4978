-- 002_delivery: what durable delivery at scale needs on the outbox.
--   seq               order of outbound messages as written; a case's later message to a
--                     partner waits until its earlier ones are delivered (ordering per case)
--   attempts_base     attempts made before the last redrive: a redriven message gets the
--                     partner's full attempt budget again, its attempt history kept
--   enqueued_at       when the BullMQ relay last handed the row to Redis (NULL: not yet, or
--                     the embedded driver); the reconciler re-enqueues rows whose job is gone
ALTER TABLE messages ADD COLUMN seq bigserial;
ALTER TABLE messages ADD COLUMN attempts_base integer NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN enqueued_at timestamptz;
CREATE INDEX messages_case_order ON messages (peer, case_id, seq)
  WHERE direction = 'out' AND state <> 'delivered';
CREATE INDEX messages_open ON messages (peer, created_at)
  WHERE direction = 'out' AND state IN ('queued', 'retrying', 'sending');
