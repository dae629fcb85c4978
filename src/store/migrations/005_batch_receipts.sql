-- 005_batch_receipts: a batch receipt is stored once, not once per message it lists.
--   batch_receipts   the exact JWS of each batch receipt received (out) or issued (in)
--   receipts.jws     NULL when the message's receipt is the batch receipt `receipt_id`
--                    (readers take COALESCE(receipts.jws, batch_receipts.jws))
CREATE TABLE batch_receipts (
  receipt_id    uuid        PRIMARY KEY,
  jws           text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE receipts ALTER COLUMN jws DROP NOT NULL;
