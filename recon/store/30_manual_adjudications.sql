-- A paper EOB posted by hand (recon pay --eob, the form's EOB details): a manual
-- adjudication. It is a row of ``adjudications`` like an 835 claim posting's, so the
-- amounts due derive from it by the same rule (recon.remit.match.derive_dues_sql), with:
--   claim_posting_id  negative (entry_seq - 2^62): never an 835's id, and later manual
--                     ones sort after earlier ones;
--   line_no 0, remittance_id NULL (no 835 behind it), status '1'/'2'/'3' from the
--   payer's policy rank for the client.
-- Voiding the payment appends an adjudication_reversals row (original = the manual id,
-- reversal = a new negative id), so it stops standing and the amounts due go back.
-- A ledger of an earlier version opens: the column only becomes nullable.
ALTER TABLE adjudications ALTER COLUMN remittance_id DROP NOT NULL;

-- What the EOB said beyond the adjudication row: the payment it came with, the allowed
-- amount and the patient responsibility by kind (one row per manual adjudication).
CREATE TABLE IF NOT EXISTS manual_adjudications (
    claim_posting_id BIGINT NOT NULL,      -- the adjudications row (negative)
    payment_id       VARCHAR NOT NULL,     -- the payment recorded with it
    invoice_id       VARCHAR NOT NULL,
    allowed          DECIMAL(18,2),        -- as the EOB states it (NULL: not given)
    deductible       DECIMAL(18,2) NOT NULL, -- PR-1
    coinsurance      DECIMAL(18,2) NOT NULL, -- PR-2
    copay            DECIMAL(18,2) NOT NULL, -- PR-3
    adjustments      VARCHAR,              -- e.g. CO-45=20.00;OA-23=5.00
    user_id          VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL
);
