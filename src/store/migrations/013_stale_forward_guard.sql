-- 013_stale_forward_guard: a transfer carries the latest version of its case, never erased
--   content. A forward signs the case it has in hand: read just before, or kept from its
--   ingest or a read in this process (outbound/case-cache.ts), and another replica may
--   have stored a newer version or erased this one since. The insert of the outbox row now
--   checks that too, where 008 checked only the withdrawal: a row whose version is no longer
--   the latest or was erased fails (SQLSTATE IC412), and the forward reads the case again
--   and signs what it finds. A withdrawal still fails with IC409 (CASE_WITHDRAWN).
CREATE OR REPLACE FUNCTION refuse_send_of_withdrawn() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  withdrawn boolean;
  stale boolean;
BEGIN
  IF NEW.direction = 'out' AND NEW.type IN ('case.transfer', 'case.update') THEN
    SELECT bool_or(c.withdrawn_at IS NOT NULL),
           bool_or(c.version > NEW.case_version OR (c.version = NEW.case_version AND c.erased_at IS NOT NULL))
      INTO withdrawn, stale
      FROM cases c WHERE c.id = NEW.case_id;
    IF withdrawn THEN
      RAISE EXCEPTION 'case % was withdrawn', NEW.case_id USING ERRCODE = 'IC409';
    END IF;
    IF stale THEN
      RAISE EXCEPTION 'case % version % is no longer the latest, or was erased', NEW.case_id, NEW.case_version
        USING ERRCODE = 'IC412';
    END IF;
  END IF;
  RETURN NEW;
END
$$;
