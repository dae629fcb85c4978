-- 003_relay: the BullMQ relay looks for waiting outbound rows not yet handed to Redis
-- (`enqueued_at IS NULL`) many times a second under load; this index holds only those rows,
-- in outbox order, so each look costs what it finds rather than the whole open backlog.
CREATE INDEX messages_relay ON messages (seq)
  WHERE direction = 'out' AND state IN ('queued', 'retrying') AND enqueued_at IS NULL;
