-- The ledger's counters on a PostgreSQL server (recon.store.pg): the next payment,
-- entry, remittance and exception number. A transaction that changes one client's
-- ledger reserves a block of each in one atomic UPDATE, so payments for different
-- clients run at once without drawing the same number. A DuckDB file keeps using its
-- sequences (one writer at a time) and leaves this table empty.

CREATE TABLE IF NOT EXISTS id_blocks (
    name       VARCHAR PRIMARY KEY,   -- payment_seq | entry_seq | remittance_seq | exception_seq
    next_value BIGINT NOT NULL
);
