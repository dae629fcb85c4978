-- name: insertCase
-- Store one version of a case; a version already stored is kept as first received.
INSERT INTO cases (id, version, origin_country, received_from, message_id, doc, digest, handling)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb)
ON CONFLICT (id, version) DO NOTHING
RETURNING id;

-- name: getCase
-- The latest version of a case.
SELECT id, version, origin_country, received_from, message_id, doc, digest, handling, created_at, withdrawn_at
FROM cases WHERE id = $1 ORDER BY version DESC LIMIT 1;

-- name: withdrawReceivedCase
-- A partner withdraws a case it sent us: every version it sent is marked withdrawn.
UPDATE cases SET withdrawn_at = now() WHERE id = $1 AND received_from = $2 AND withdrawn_at IS NULL
RETURNING version;

-- name: getCaseVersion
SELECT digest FROM cases WHERE id = $1 AND version = $2;

-- name: casesPastRetention
-- Case versions whose retainUntil date ($1, YYYY-MM-DD) has passed and are not erased yet.
SELECT id, version, digest FROM cases
WHERE erased_at IS NULL AND doc ? 'retainUntil' AND (doc->>'retainUntil') < $1
ORDER BY doc->>'retainUntil' LIMIT $2;

-- name: eraseCase
UPDATE cases SET doc = jsonb_build_object('id', id, 'version', version, 'erased', true), erased_at = now()
WHERE id = $1 AND version = $2 AND erased_at IS NULL
RETURNING id;

-- name: eraseCaseMessages
-- The stored bytes of the messages that carried this version, once none waits for delivery.
UPDATE messages SET jws = '', erased_at = now()
WHERE case_id = $1 AND case_version = $2 AND erased_at IS NULL AND state IN ('delivered', 'dead', 'accepted')
RETURNING id;

-- name: listCases
-- The latest version of each case, newest first by (created_at, id). Optional filters:
-- origin country $1; sender $2 (a partner country, or 'none' for our own cases); withdrawn
-- $3; created at or after $4. Cursor: rows before ($5, $6) in that order. At most $7 rows.
-- cursor_at is created_at with its microseconds, so a page boundary never skips a row that
-- shares the millisecond of the last row shown.
SELECT c.id, c.version, c.origin_country, c.doc->'origin'->>'agency' AS origin_agency, c.received_from,
       c.handling->>'tlp' AS tlp, c.handling->>'code' AS code, c.doc->'handling' AS doc_handling,
       c.digest, c.created_at, c.withdrawn_at, c.erased_at,
       to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
FROM cases c
WHERE NOT EXISTS (SELECT 1 FROM cases n WHERE n.id = c.id AND n.version > c.version)
  AND ($1::text IS NULL OR c.origin_country = $1)
  AND ($2::text IS NULL OR ($2 = 'none' AND c.received_from IS NULL) OR c.received_from = $2)
  AND ($3::boolean IS NULL OR (c.withdrawn_at IS NOT NULL) = $3)
  AND ($4::timestamptz IS NULL OR c.created_at >= $4::timestamptz)
  AND ($5::timestamptz IS NULL OR (c.created_at, c.id) < ($5::timestamptz, $6::uuid))
ORDER BY c.created_at DESC, c.id DESC
LIMIT $7;

-- name: withdrawLocalCase
-- We withdraw a case of our own: every version is marked withdrawn. No row: it was not ours,
-- or it was withdrawn already (a concurrent withdrawal won).
UPDATE cases SET withdrawn_at = now() WHERE id = $1 AND received_from IS NULL AND withdrawn_at IS NULL
RETURNING version;

-- name: caseRecipients
-- Every partner we sent a case to (any outbound transfer or update, whatever its state), with
-- the JWS of the latest one (empty once erased): a withdrawal goes to each of them.
SELECT DISTINCT ON (peer) peer, jws
FROM messages
WHERE direction = 'out' AND case_id = $1 AND type IN ('case.transfer', 'case.update')
ORDER BY peer, seq DESC;

