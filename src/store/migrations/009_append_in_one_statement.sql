-- 009_append_in_one_statement: a write that only appends audit events (and queues outbox
--   rows) commits in one statement, with no transaction around it: a forward costs one round
--   trip to the database instead of five (BEGIN, head lock, events, outbox rows, COMMIT).
--
--   icros_insert_outbound(rows)      the outbox insert of forwards and withdrawals (it was the
--                                    statement insertOutboundMany; the statement now calls it)
--   icros_audit_append(events, rows) locks the chain head, chains `events` onto it, writes
--                                    them and the new head, then inserts the outbox `rows`
--                                    (after the lock, so forwards are chained in commit order)
--
--   The hash of each event is the one of DESIGN §7 and docs/audit.md: SHA-256 over the RFC 8785
--   canonical JSON of the event without `hash`. The gateway sends each event's canonical JSON
--   in two pieces, the part before the previous hash (`jcsHead`, ending in `"prevHash":"`)
--   and the part after the sequence number (`jcsTail`, starting with `,"subject":`); only
--   prevHash and seq are known here, under the lock. Verification stays in the gateway and
--   recomputes every hash from the stored fields.
CREATE FUNCTION icros_insert_outbound(rows jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  -- A row's predecessor is the row before it in `rows` for the same case and partner, else
  -- the latest such message not delivered yet (ordering per case and partner).
  INSERT INTO messages (id, direction, peer, type, case_id, case_version, jws, digest, state, next_attempt_at, predecessor)
  SELECT r.id, 'out', r.peer, r.type, r.case_id, r.case_version, r.jws, r.digest, 'queued', now(),
    CASE WHEN r.case_id IS NOT NULL THEN COALESCE(
      lag(r.id) OVER (PARTITION BY r.peer, r.case_id ORDER BY r.n),
      (SELECT p.id FROM messages p
       WHERE p.direction = 'out' AND p.peer = r.peer AND p.case_id = r.case_id AND p.state <> 'delivered'
       ORDER BY p.seq DESC LIMIT 1)) END
  FROM ROWS FROM (jsonb_to_recordset(rows) AS (id uuid, peer text, type text, case_id uuid,
    case_version int, jws text, digest text)) WITH ORDINALITY AS r(id, peer, type, case_id, case_version, jws, digest, n)
  ORDER BY r.n;
END
$$;

CREATE FUNCTION icros_audit_append(events jsonb, rows jsonb, OUT head_seq bigint, OUT head_hash text)
LANGUAGE plpgsql AS $$
DECLARE
  first_seq bigint;
  e jsonb;
  prevs text[] := '{}';
  hashes text[] := '{}';
BEGIN
  SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_head h WHERE h.id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'audit_head row missing: migrations not applied';
  END IF;
  first_seq := head_seq + 1;
  FOR e IN SELECT value FROM jsonb_array_elements(COALESCE(events, '[]')) LOOP
    prevs := prevs || head_hash;
    head_seq := head_seq + 1;
    head_hash := encode(sha256(convert_to(
      (e->>'jcsHead') || head_hash || '","seq":' || head_seq::text || (e->>'jcsTail'), 'UTF8')), 'hex');
    hashes := hashes || head_hash;
  END LOOP;
  IF head_seq >= first_seq THEN
    INSERT INTO audit_events (seq, at, actor_kind, actor_id, action, subject, detail, prev_hash, hash)
    SELECT first_seq + r.n - 1, r.at, r.actor_kind, r.actor_id, r.action, r.subject, r.detail,
      prevs[r.n], hashes[r.n]
    FROM ROWS FROM (jsonb_to_recordset(events) AS (at text, actor_kind text, actor_id text,
      action text, subject jsonb, detail jsonb)) WITH ORDINALITY AS r(at, actor_kind, actor_id, action, subject, detail, n);
    UPDATE audit_head SET seq = head_seq, hash = head_hash WHERE id = 1;
  END IF;
  IF rows IS NOT NULL THEN
    PERFORM icros_insert_outbound(rows);
  END IF;
END
$$;
