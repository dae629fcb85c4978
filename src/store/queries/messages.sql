-- name: insertOutbound
-- A new outbox row with the exact JWS bytes; due at once. Its predecessor is the latest
-- message of the same case to the same partner not delivered yet (ordering per case).
INSERT INTO messages (id, direction, peer, type, case_id, case_version, jws, digest, state, next_attempt_at, predecessor)
VALUES ($1, 'out', $2, $3, $4, $5, $6, $7, 'queued', now(),
  (SELECT p.id FROM messages p
   WHERE $4::uuid IS NOT NULL AND p.direction = 'out' AND p.peer = $2 AND p.case_id = $4::uuid
     AND p.state <> 'delivered'
   ORDER BY p.seq DESC LIMIT 1));

-- name: insertOutboundMany
-- insertOutbound for many rows in one statement: $1 is a JSON array of {id, peer, type,
-- case_id, case_version, jws, digest}. A row's predecessor is the row before it in $1 for the
-- same case and partner, else the latest such message not delivered yet (migration 009).
-- The audit writer runs it after taking the chain head lock, so the forwards of concurrent
-- transactions (and replicas) are chained in commit order.
SELECT icros_insert_outbound($1::jsonb);

-- name: findInbound
-- A message already received from this partner, with the receipt we answered.
SELECT m.digest, COALESCE(r.jws, b.jws) AS receipt_jws
FROM messages m
LEFT JOIN receipts r ON r.direction = 'in' AND r.peer = m.peer AND r.message_id = m.id
LEFT JOIN batch_receipts b ON r.jws IS NULL AND b.receipt_id = r.receipt_id
WHERE m.direction = 'in' AND m.peer = $1 AND m.id = $2;

-- name: claimDue
-- Take up to $2 outbound messages to partner $1 that are due (or whose sending lease ran out)
-- and lease them for $3 milliseconds. A message of a case waits while an earlier message of
-- the same case to the same partner is not delivered (ordering per case and partner). SKIP
-- LOCKED lets several workers or replicas claim disjoint rows. The due rows are read in order
-- from messages_due_peer and the expired leases from messages_sending, each branch stopping
-- at $2 rows (migration 012), so a claim costs what it takes, not the size of the backlog;
-- the predecessor is looked up by primary key for each row read (a scalar subquery, which
-- PostgreSQL never turns into a hash of every delivered message). A row whose lease ran out
-- passed that check when it was claimed, and `delivered` is final: it is not asked again.
WITH due AS (
  SELECT c.direction, c.peer, c.id, c.next_attempt_at, c.seq FROM messages c
  WHERE c.direction = 'out' AND c.peer = $1 AND c.state IN ('queued', 'retrying')
    AND c.next_attempt_at <= now()
    AND (c.predecessor IS NULL OR (
      SELECT e.state FROM messages e
      WHERE e.direction = 'out' AND e.peer = c.peer AND e.id = c.predecessor) = 'delivered')
  ORDER BY c.next_attempt_at, c.seq
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), expired AS (
  SELECT c.direction, c.peer, c.id, c.next_attempt_at, c.seq FROM messages c
  WHERE c.direction = 'out' AND c.peer = $1 AND c.state = 'sending' AND c.lease_until < now()
  ORDER BY c.next_attempt_at, c.seq
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), pick AS (
  SELECT direction, peer, id FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) u
  ORDER BY next_attempt_at, seq
  LIMIT $2
)
UPDATE messages m
SET state = 'sending', attempts = m.attempts + 1, updated_at = now(),
    lease_until = now() + ($3::int * interval '1 millisecond')
FROM pick
WHERE m.direction = pick.direction AND m.peer = pick.peer AND m.id = pick.id
RETURNING m.id, m.peer, m.type, m.case_id, m.jws, m.digest, m.attempts, m.attempts_base, m.created_at;

-- name: markRetrying
UPDATE messages SET state = 'retrying', next_attempt_at = $3, last_error = $4::jsonb, updated_at = now(), lease_until = NULL
WHERE direction = 'out' AND peer = $1 AND id = $2 AND state = 'sending';

-- name: markDead
UPDATE messages SET state = 'dead', last_error = $3::jsonb, updated_at = now(), lease_until = NULL, next_attempt_at = NULL
WHERE direction = 'out' AND peer = $1 AND id = $2 AND state = 'sending';

-- name: nextDueAt
-- When the earliest waiting outbound message is due (the worker sleeps until then).
SELECT min(next_attempt_at) AS at FROM messages WHERE direction = 'out' AND state IN ('queued', 'retrying');

-- name: expireOld
-- Messages to partner $1 queued more than $2 seconds ago and still not delivered are dead,
-- with the problem $3 (MESSAGE_EXPIRED). Rows being sent finish their attempt first.
UPDATE messages SET state = 'dead', last_error = $3::jsonb, next_attempt_at = NULL, lease_until = NULL, updated_at = now()
WHERE direction = 'out' AND peer = $1 AND state IN ('queued', 'retrying')
  AND created_at < now() - ($2::int * interval '1 second')
RETURNING id, case_id, attempts;

-- name: expireUnconfigured
-- expireOld for a peer $1 that is no longer a configured partner: nothing sends its messages,
-- so a row left 'sending' by a stopped process dies too once its lease has run out.
UPDATE messages SET state = 'dead', last_error = $3::jsonb, next_attempt_at = NULL, lease_until = NULL, updated_at = now()
WHERE direction = 'out' AND peer = $1
  AND (state IN ('queued', 'retrying') OR (state = 'sending' AND lease_until < now()))
  AND created_at < now() - ($2::int * interval '1 second')
RETURNING id, case_id, attempts;

-- name: openByPartner
-- Per partner: undelivered outbound messages (queued, retrying, sending) and the oldest one's age.
SELECT peer, count(*)::int AS open, min(created_at) AS oldest,
       extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_s
FROM messages WHERE direction = 'out' AND state IN ('queued', 'retrying', 'sending')
GROUP BY peer;

-- name: countByPartnerState
SELECT peer, state, count(*)::int AS n FROM messages WHERE direction = 'out' GROUP BY peer, state;

-- name: redriveOne
-- A dead outbound message back to queued, due now, with a fresh attempt budget; its attempt
-- history and last problem stay. Nothing when it is not dead.
UPDATE messages SET state = 'queued', next_attempt_at = now(), attempts_base = attempts, lease_until = NULL,
  enqueued_at = NULL, updated_at = now()
WHERE direction = 'out' AND id = $1 AND state = 'dead' AND erased_at IS NULL
RETURNING id, peer, case_id, attempts;

-- name: redriveMany
-- Every dead outbound message (to partner $1 when given), as redriveOne.
UPDATE messages SET state = 'queued', next_attempt_at = now(), attempts_base = attempts, lease_until = NULL,
  enqueued_at = NULL, updated_at = now()
WHERE direction = 'out' AND state = 'dead' AND erased_at IS NULL AND ($1::text IS NULL OR peer = $1)
RETURNING id, peer, case_id, attempts;

-- name: listMessages
-- Newest first; optional filters on direction, state, peer, case; cursor = (created_at, id),
-- cursor_at being created_at with its microseconds, so a page boundary never skips a row.
SELECT id, direction, peer, type, case_id, case_version, digest, state, attempts, next_attempt_at,
       last_error, created_at, updated_at, delivered_at,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
FROM messages
WHERE ($1::text IS NULL OR direction = $1)
  AND ($2::text IS NULL OR state = $2)
  AND ($3::text IS NULL OR peer = $3)
  AND ($4::uuid IS NULL OR case_id = $4)
  AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $7;

-- name: getMessage
SELECT id, direction, peer, type, case_id, case_version, digest, state, attempts, next_attempt_at,
       last_error, created_at, updated_at, delivered_at
FROM messages WHERE id = $1 ORDER BY direction;

-- name: listAttempts
SELECT attempt, started_at, ended_at, outcome, http_status, problem
FROM delivery_attempts WHERE message_id = $1 AND peer = $2 ORDER BY attempt;

-- name: acceptInbound
-- An accepted inbound message and, when it carries one, its case version, in one statement.
-- message = 0: (peer, id) was already stored (a concurrent duplicate), nothing written.
-- casestored = 0 with message = 1: that case version was already known.
WITH m AS (
  INSERT INTO messages (id, direction, peer, type, case_id, case_version, jws, digest, state, delivered_at)
  VALUES ($1, 'in', $2, $3, $4, $5, $6, $7, 'accepted', now())
  ON CONFLICT (direction, peer, id) DO NOTHING
  RETURNING id
), c AS (
  INSERT INTO cases (id, version, origin_country, received_from, message_id, doc, digest, handling)
  SELECT $4, $5, $8, $2, $1, $9::jsonb, $10, $11::jsonb
  WHERE $9::text IS NOT NULL AND EXISTS (SELECT 1 FROM m)
  ON CONFLICT (id, version) DO NOTHING
  RETURNING id
)
SELECT (SELECT count(*) FROM m)::int AS message, (SELECT count(*) FROM c)::int AS casestored;

-- name: markDeliveredMany
-- Bulk form of markDelivered: $1 is a JSON array of {peer, id}.
-- The function (migration 010) is also what the one-statement append runs.
SELECT icros_mark_delivered($1::jsonb);

-- name: insertAttempts
-- Bulk form of insertAttempt: $1 is a JSON array of rows.
-- The function (migration 010) is also what the one-statement append runs.
SELECT icros_insert_attempts($1::jsonb);

-- name: claimMany
-- claimDue for given messages ($2, an array of ids, often one) of partner $1: the BullMQ
-- workers hold their jobs, and jobs that start together share one statement. The same
-- conditions, so a job for a row that is not due, already sent, or waiting for an earlier
-- message of its case claims nothing.
UPDATE messages m
SET state = 'sending', attempts = m.attempts + 1, updated_at = now(),
    lease_until = now() + ($3::int * interval '1 millisecond')
FROM (
  SELECT c.direction, c.peer, c.id FROM messages c
  WHERE c.direction = 'out' AND c.peer = $1 AND c.id = ANY($2::uuid[])
    AND ((c.state IN ('queued', 'retrying') AND c.next_attempt_at <= now())
      OR (c.state = 'sending' AND c.lease_until < now()))
    AND (c.predecessor IS NULL OR (
      SELECT e.state FROM messages e
      WHERE e.direction = 'out' AND e.peer = c.peer AND e.id = c.predecessor) = 'delivered')
  FOR UPDATE SKIP LOCKED
) due
WHERE m.direction = due.direction AND m.peer = due.peer AND m.id = due.id
RETURNING m.id, m.peer, m.type, m.case_id, m.jws, m.digest, m.attempts, m.attempts_base, m.created_at;

-- name: relayPending
-- BullMQ relay: take up to $2 waiting outbound messages to the partners $1 that were not
-- handed to Redis yet and mark them enqueued; the caller adds one job per row (jobId = id),
-- delayed by delay_ms (until next_attempt_at, by the database's clock). A message waiting for
-- an earlier message of its case is left for a later run (the worker that delivers the earlier
-- one runs the relay again). SKIP LOCKED: replicas relay disjoint rows.
UPDATE messages m SET enqueued_at = now()
FROM (
  SELECT c.direction, c.peer, c.id FROM messages c
  WHERE c.direction = 'out' AND c.peer = ANY($1::text[])
    AND c.state IN ('queued', 'retrying') AND c.enqueued_at IS NULL
    AND (c.predecessor IS NULL OR (
      SELECT e.state FROM messages e
      WHERE e.direction = 'out' AND e.peer = c.peer AND e.id = c.predecessor) = 'delivered')
  ORDER BY c.seq
  LIMIT $2
  FOR UPDATE SKIP LOCKED
) p
WHERE m.direction = p.direction AND m.peer = p.peer AND m.id = p.id
RETURNING m.id, m.peer, m.attempts,
  greatest(0, ceil(extract(epoch FROM m.next_attempt_at - now()) * 1000))::int AS delay_ms;

-- name: unrelay
-- The relay could not add these jobs ($1 peers, $2 ids, pairwise): hand the rows to a later run.
UPDATE messages m SET enqueued_at = NULL
FROM unnest($1::text[], $2::uuid[]) AS u(peer, id)
WHERE m.direction = 'out' AND m.peer = u.peer AND m.id = u.id AND m.state IN ('queued', 'retrying');

-- name: outboxWait
-- Why a BullMQ job claimed nothing, or when its retry is due: the row's state, the
-- milliseconds until it is due (next_attempt_at; for a row being sent, the end of its lease)
-- by the database's clock, and whether an earlier message of its case is not delivered yet.
SELECT c.state,
  greatest(0, ceil(extract(epoch FROM
    (CASE WHEN c.state = 'sending' THEN c.lease_until ELSE c.next_attempt_at END) - now()) * 1000))::int AS wait_ms,
  (c.predecessor IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM messages e
    WHERE e.direction = 'out' AND e.peer = c.peer AND e.id = c.predecessor AND e.state = 'delivered')) AS blocked
FROM messages c WHERE c.direction = 'out' AND c.peer = $1 AND c.id = $2;

-- name: unrelayBlocked
-- A job found its row waiting for an earlier message of its case: the job ends, and the
-- relay hands the row to Redis again once the earlier one is delivered.
UPDATE messages SET enqueued_at = NULL
WHERE direction = 'out' AND peer = $1 AND id = $2 AND state IN ('queued', 'retrying');

-- name: reconcileCandidates
-- BullMQ reconciler: open outbound messages to partner $1 (waiting, or being sent with an
-- expired lease) that the relay handed to Redis more than a second ago, after seq $2, in seq
-- order, at most $3; the caller checks that each still has its job and re-adds the missing.
SELECT id, seq::text AS seq,
  greatest(0, ceil(extract(epoch FROM
    (CASE WHEN state = 'sending' THEN now() ELSE next_attempt_at END) - now()) * 1000))::int AS delay_ms
FROM messages
WHERE direction = 'out' AND peer = $1 AND enqueued_at < now() - interval '1 second'
  AND (state IN ('queued', 'retrying') OR (state = 'sending' AND lease_until < now()))
  AND seq > $2::bigint
ORDER BY seq
LIMIT $3;

-- name: outboxStatsState
-- Whether PostgreSQL has column statistics on the messages table yet (a new table has none
-- until autovacuum first analyzes it), and how many rows it holds, counted up to 500.
SELECT EXISTS (SELECT 1 FROM pg_stats
               WHERE schemaname = current_schema() AND tablename = 'messages' AND attname = 'id') AS analyzed,
       (SELECT count(*)::int FROM (SELECT 1 FROM messages LIMIT 500) x) AS rows;
