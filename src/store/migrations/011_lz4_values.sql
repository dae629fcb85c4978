-- 011_lz4_values: the large values (the JWS of every message sent or received, each case
-- document, each batch receipt) are compressed with lz4 instead of PostgreSQL's default pglz,
-- where the server has lz4 (Debian's build and most others do). Measured with real 3.3 KB JWS
-- (docs/benchmarks.md): writing an outbox row took 172-206 µs with pglz, 104-112 µs with lz4,
-- and took 8 % less space. Only values written from now on are affected; values of either
-- kind are read alike. A server without lz4 (PGlite among them) refuses the change with
-- feature_not_supported, and then keeps pglz: the migration still counts as applied.
DO $$
BEGIN
  ALTER TABLE messages ALTER COLUMN jws SET COMPRESSION lz4;
  ALTER TABLE cases ALTER COLUMN doc SET COMPRESSION lz4;
  ALTER TABLE batch_receipts ALTER COLUMN jws SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
