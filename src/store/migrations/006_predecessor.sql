-- 006_predecessor: ordering per case and partner by a pointer, not a search.
--   predecessor   the previous outbound message of the same case to the same partner that
--                 was not delivered yet when this one was queued (NULL: none). A message is
--                 claimable only once its predecessor is delivered: a primary-key lookup,
--                 whatever the table's statistics say (a correlated search for "any earlier
--                 undelivered message" degenerated to a scan per row without them).
ALTER TABLE messages ADD COLUMN predecessor uuid;
