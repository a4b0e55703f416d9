-- A client's policies are read by client alone (the Client, every payment planned and
-- recorded), but the primary key is (client_id, payer_id), which DuckDB's index cannot
-- look up by its first column: without this index each read scanned all of
-- client_insurance (114,716 policies of the 10M-invoice bench ledger: ~4 ms a read).
-- The table is written only by a practice load, so keeping the index costs little.
-- The same statement runs on a PostgreSQL ledger (recon.store.migrations).

CREATE INDEX IF NOT EXISTS client_insurance_client ON client_insurance (client_id);
