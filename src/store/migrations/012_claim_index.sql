-- 012_claim_index: the embedded driver's claim (`claimDue`) takes the first due rows of one
-- partner in (next_attempt_at, seq) order. With only messages_due (next_attempt_at, every
-- partner) to go by, PostgreSQL read and sorted every open row of the partner on each claim:
-- 7 ms for a backlog of 3,000, growing with the backlog. This index holds the same rows in the
-- claim's order per partner, so a claim reads the rows it takes (and those it skips: locked,
-- or waiting for an earlier message of their case), whatever the backlog. Rows leave it when
-- they are claimed, so it stays as small as the queue.
CREATE INDEX messages_due_peer ON messages (peer, next_attempt_at, seq)
  WHERE direction = 'out' AND state IN ('queued', 'retrying');
