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
