-- Posted 835 remittances (recon.remit.post). Every table here is append-only like
-- the ledger's entry tables: a reversal is a new claim row naming the one it undoes,
-- an exception is worked by appending actions, never by updating it.
--
-- A remittance (one ST..SE) is identified by payer + TRN02. Its money adds up:
--   sum(payments.amount WHERE remittance_id) + unmatched_amount - plb_amount = amount (BPR02)
-- unmatched_amount is what was held at posting (unmatched claims, denials that carried
-- money, reversals of nothing). Matching a held claim later (exception_actions
-- 'matched') adds a payment of that money, so the held amount still owed to an
-- invoice is unmatched_amount less those actions (view remittance_status).

CREATE SEQUENCE IF NOT EXISTS remittance_seq START 1;
CREATE SEQUENCE IF NOT EXISTS exception_seq START 1;

CREATE TABLE IF NOT EXISTS remittances (
    remittance_id    VARCHAR PRIMARY KEY,
    payer_id         VARCHAR NOT NULL,      -- insurance_providers.payer_id
    trace_number     VARCHAR NOT NULL,      -- TRN02
    payment_method   VARCHAR,               -- BPR04 as sent: ACH, CHK, BOP, FWT, NON
    handling_code    VARCHAR,               -- BPR01: I payment with remittance, H notification only
    amount           DECIMAL(18,2) NOT NULL, -- BPR02
    plb_amount       DECIMAL(18,2) NOT NULL, -- sum of PLB amounts as stated (interest negative)
    paid_on          DATE,                  -- BPR16
    file_name        VARCHAR,
    payer_name       VARCHAR,               -- N1*PR
    payer_identifier VARCHAR,               -- the id the 835 carried that named the payer
    st_control       VARCHAR,               -- ST02
    posted_at        TIMESTAMP NOT NULL,
    user_id          VARCHAR NOT NULL,
    unmatched_amount DECIMAL(18,2) NOT NULL, -- money held at posting (see above)
    claims           INTEGER NOT NULL,
    UNIQUE (payer_id, trace_number)
);

CREATE TABLE IF NOT EXISTS remit_plb (
    remittance_id     VARCHAR NOT NULL,
    seq               INTEGER NOT NULL,
    provider_id       VARCHAR,
    fiscal_period_end DATE,
    reason            VARCHAR NOT NULL,     -- L6 interest, WO recovery, FB forward balance, ...
    reference         VARCHAR,
    amount            DECIMAL(18,2) NOT NULL -- positive: withheld, negative: added
);

-- One row per CLP as posted. outcome: posted | denied | unmatched | not_our_claim |
-- reversal (undid the claim row named by reverses) | unmatched_reversal.
CREATE TABLE IF NOT EXISTS remit_claims (
    claim_posting_id BIGINT NOT NULL,     -- from the ledger's max + row number
    remittance_id    VARCHAR NOT NULL,
    seq              INTEGER NOT NULL,      -- order in the transaction
    claim_id         VARCHAR NOT NULL,      -- CLP01
    status           VARCHAR NOT NULL,      -- CLP02
    charge           DECIMAL(18,2) NOT NULL,
    paid             DECIMAL(18,2) NOT NULL,
    patient_resp     DECIMAL(18,2) NOT NULL,
    payer_control    VARCHAR,               -- CLP07
    patient_name     VARCHAR,
    lines            INTEGER NOT NULL,
    outcome          VARCHAR NOT NULL,
    held_amount      DECIMAL(18,2) NOT NULL, -- part of the remittance's unmatched_amount
    reverses         BIGINT
);

CREATE TABLE IF NOT EXISTS remit_lines (
    claim_posting_id BIGINT NOT NULL,
    line_no          INTEGER NOT NULL,
    procedure_code   VARCHAR,
    modifiers        VARCHAR,
    charge           DECIMAL(18,2) NOT NULL,
    paid             DECIMAL(18,2) NOT NULL,
    units            DECIMAL(18,2),
    service_date     DATE,
    invoice_id       VARCHAR                -- the invoice the line matched, NULL when none
);

-- Every CAS of every claim (line_no 0: claim level), whether or not it touched an invoice.
CREATE TABLE IF NOT EXISTS remit_cas (
    claim_posting_id BIGINT NOT NULL,
    line_no          INTEGER NOT NULL,
    group_code       VARCHAR NOT NULL,
    reason_code      VARCHAR NOT NULL,
    amount           DECIMAL(18,2) NOT NULL
);

-- Which ledger entries a claim posting wrote, so a reversal can undo exactly them.
CREATE TABLE IF NOT EXISTS remit_entries (
    claim_posting_id BIGINT NOT NULL,
    entry_kind       VARCHAR NOT NULL,      -- allocation | adjustment | due_change
    entry_id         BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS exceptions (
    exception_id     VARCHAR PRIMARY KEY,
    kind             VARCHAR NOT NULL,      -- unmatched_claim | unmatched_line | denial | not_our_claim |
                                            -- unmatched_reversal | reversal_mismatch | payer_not_on_policy |
                                            -- possible_duplicate | recoupment | overpayment
    remittance_id    VARCHAR NOT NULL,
    trace_number     VARCHAR NOT NULL,
    payer_id         VARCHAR NOT NULL,
    claim_id         VARCHAR NOT NULL,      -- CLP01
    claim_posting_id BIGINT NOT NULL,
    amount           DECIMAL(18,2) NOT NULL, -- held money, or for a denial the charge denied
    held_amount      DECIMAL(18,2) NOT NULL,
    reason           VARCHAR,               -- CARC codes, e.g. CO-50 or CO-50, PR-1
    invoice_id       VARCHAR,               -- a denial's matched invoice (first of them)
    created_at       TIMESTAMP NOT NULL
);

-- A denial's matched invoices and the charge denied on each (what a write-off writes off).
CREATE TABLE IF NOT EXISTS exception_invoices (
    exception_id VARCHAR NOT NULL,
    invoice_id   VARCHAR NOT NULL,
    client_id    VARCHAR NOT NULL,
    amount       DECIMAL(18,2) NOT NULL
);

CREATE TABLE IF NOT EXISTS exception_actions (
    action_id    BIGINT NOT NULL,
    exception_id VARCHAR NOT NULL,
    action       VARCHAR NOT NULL,          -- matched | appeal | write_off | closed | bill_client | note
    invoice_id   VARCHAR,
    amount       DECIMAL(18,2),
    reason       VARCHAR,
    user_id      VARCHAR NOT NULL,
    "at"         TIMESTAMP NOT NULL,
    payment_id   VARCHAR                    -- the payment a match wrote
);

-- One adjudication per payer per claim version, line by line: what a claim posting said
-- about each invoice it reached (a claim without lines: its share of each invoice).
-- Amounts due are derived from the adjudications that stand (not reversed), so the
-- same remittances in any order leave the same ledger (recon.remit.match.derive_dues).
-- priority: the position the payer acted at (CLP02 1/19 -> 1, 2/20 -> 2, 3/21 -> 3).
CREATE TABLE IF NOT EXISTS adjudications (
    claim_posting_id BIGINT NOT NULL,
    line_no          INTEGER NOT NULL,      -- 0: a claim without lines
    invoice_id       VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,
    remittance_id    VARCHAR NOT NULL,
    payer_id         VARCHAR NOT NULL,
    priority         INTEGER NOT NULL,
    status           VARCHAR NOT NULL,      -- CLP02
    payer_control    VARCHAR,               -- CLP07
    charge           DECIMAL(18,2) NOT NULL,
    paid             DECIMAL(18,2) NOT NULL, -- SVC03 plus the line's share of claim-level CAS
    patient_resp     DECIMAL(18,2) NOT NULL, -- PR on this line (claim-level PR apportioned)
    written_off      DECIMAL(18,2) NOT NULL, -- CO/PI in the auto write-off set
    other_adj        DECIMAL(18,2) NOT NULL, -- every other non-PR adjustment (OA-23, CO-97, ...)
    created_at       TIMESTAMP NOT NULL
);

-- Which claim posting undid which (a reversal, or a reversal that arrived before its
-- original and was linked when the original came). An adjudication stands while no
-- row names it as original.
CREATE TABLE IF NOT EXISTS adjudication_reversals (
    original   BIGINT NOT NULL,
    reversal   BIGINT NOT NULL,
    linked_at  TIMESTAMP NOT NULL
);

-- "Bill client": an analyst moved the patient responsibility waiting on a next payer to
-- the client; it holds while no payer after ``priority`` has adjudicated the invoice.
CREATE TABLE IF NOT EXISTS billing_decisions (
    invoice_id VARCHAR NOT NULL,
    priority   INTEGER NOT NULL,
    user_id    VARCHAR NOT NULL,
    reason     VARCHAR,
    "at"       TIMESTAMP NOT NULL
);

-- A held line's own adjustments (its CAS and its share of the claim-level CAS): what a
-- worklist match of that line writes on the invoice it is matched to.
CREATE TABLE IF NOT EXISTS exception_cas (
    exception_id VARCHAR NOT NULL,
    group_code   VARCHAR NOT NULL,
    reason_code  VARCHAR NOT NULL,
    amount       DECIMAL(18,2) NOT NULL
);

-- Worklist rows for one service line (unmatched_line, possible_duplicate) name the line.
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS line_no INTEGER;
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS detail VARCHAR;

-- An exception's status is derived from its actions: the last deciding action wins
-- (a note decides nothing). Its reason shows the CARC codes and, for the kinds that have
-- one, the numbers an analyst needs to decide (``detail``).
CREATE OR REPLACE VIEW exception_status AS
SELECT e.exception_id, e.kind, e.remittance_id, e.trace_number, e.payer_id, e.claim_id,
       e.amount, e.held_amount,
       CASE WHEN e.detail IS NULL THEN e.reason ELSE concat_ws(': ', e.reason, e.detail) END AS reason,
       e.invoice_id, e.created_at,
       CASE last.action WHEN 'matched' THEN 'matched' WHEN 'write_off' THEN 'written_off'
            WHEN 'appeal' THEN 'appealed' WHEN 'closed' THEN 'closed' WHEN 'bill_client' THEN 'billed_client'
            WHEN 'dismissed' THEN 'dismissed' ELSE 'open' END AS status,
       last.invoice_id AS resolved_invoice_id, last.reason AS resolution, last.user_id AS resolved_by,
       last."at" AS resolved_at, e.line_no, e.detail
FROM exceptions e
LEFT JOIN (
    SELECT exception_id, arg_max(action, action_id) AS action, arg_max(invoice_id, action_id) AS invoice_id,
           arg_max(reason, action_id) AS reason, arg_max(user_id, action_id) AS user_id,
           max("at") AS "at"
    FROM exception_actions WHERE action <> 'note' GROUP BY exception_id
) last USING (exception_id);
