-- 008_withdrawn_guard: a transfer or update of a withdrawn case is never queued.
--   The check runs in the database, on the insert of the outbox row: forwards write their
--   rows in one statement per audit-writer batch, under the chain head lock (forward.ts), and
--   a withdrawal marks the case before it takes that lock, so a forward that comes after a
--   committed withdrawal fails here (SQLSTATE IC409, answered CASE_WITHDRAWN) and one that
--   came before it is among the recipients the withdrawal re-reads under the lock.
CREATE FUNCTION refuse_send_of_withdrawn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.direction = 'out' AND NEW.type IN ('case.transfer', 'case.update')
     AND EXISTS (SELECT 1 FROM cases WHERE id = NEW.case_id AND withdrawn_at IS NOT NULL) THEN
    RAISE EXCEPTION 'case % was withdrawn', NEW.case_id USING ERRCODE = 'IC409';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER messages_refuse_withdrawn BEFORE INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION refuse_send_of_withdrawn();
