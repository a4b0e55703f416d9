-- Bank deposits and their reconciliation with posted remittances (835 BPR/TRN).
--
-- Deposits are reference data from the bank: loaded once, never updated (a same
-- id with other content is refused by recon.remit.deposits). Matching is NOT
-- stored: it is a set of views over every deposit and every remittance in the
-- ledger, so a deposit loaded before its 835 matches as soon as the 835 posts,
-- and nothing has to be re-run or kept in sync.
--
-- Rules (era-835.md, Reconciling with the bank):
--   1. A deposit with a trace number matches the remittance whose TRN02 is that
--      trace. When several payers used the same trace, the one with the same
--      amount is taken if it is the only one. Two deposits naming one remittance:
--      the one with the same amount (then the earliest) matches, the other is a
--      duplicate and stays unmatched.
--   2. A deposit without a trace matches a remittance of exactly its amount whose
--      BPR16 (paid_on) is within 5 days either side of the deposit date, only
--      when that is unique both ways: one candidate remittance for the deposit,
--      and no other deposit (by trace or by amount) wanting that remittance.
--   Status: matched | amount_mismatch (trace matched, amounts differ) | unmatched.

CREATE TABLE IF NOT EXISTS deposits (
    deposit_id   VARCHAR PRIMARY KEY,
    deposit_date DATE NOT NULL,
    amount       DECIMAL(18,2) NOT NULL,
    trace_number VARCHAR,               -- TRN02 from the CCD+ addenda, NULL when the bank gave none
    description  VARCHAR,
    source_file  VARCHAR NOT NULL,
    user_id      VARCHAR NOT NULL,
    loaded_at    TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS deposits_trace ON deposits (trace_number);

-- Other bank activity: BAI2 details that are not deposits (ZBA sweeps, interest,
-- loans, returns and reversals, debits, totals in a detail, other currencies, test
-- groups), each with why. Kept so a bank file is accounted for to the cent, listed
-- by `recon deposits --activity`, and never matched to a remittance (no view here
-- reads it). Loaded once, never updated, like deposits.
CREATE TABLE IF NOT EXISTS other_bank_activity (
    activity_id  VARCHAR PRIMARY KEY,
    as_of_date   DATE NOT NULL,         -- the group's as-of date
    account      VARCHAR NOT NULL,
    type_code    VARCHAR NOT NULL,      -- BAI2 type code, e.g. 275 ZBA credit
    kind         VARCHAR NOT NULL,      -- credit | debit | loan | status | non-monetary
    amount       DECIMAL(18,2),         -- in currency, NULL for a three-decimal currency
    currency     VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,      -- why it is not a deposit
    description  VARCHAR,
    source_file  VARCHAR NOT NULL,
    user_id      VARCHAR NOT NULL,
    loaded_at    TIMESTAMP NOT NULL
);

-- remittances (remittance_id, payer_id, trace_number, amount = BPR02, paid_on =
-- BPR16) is the posting part's table, created by 10_remit.sql, applied before this.

CREATE OR REPLACE VIEW deposit_reconciliation AS
WITH d AS (
    SELECT deposit_id, deposit_date, amount, nullif(trim(trace_number), '') AS trace,
           description, source_file, loaded_at
    FROM deposits
),
-- rule 1: every remittance carrying the deposit's trace
by_trace AS (
    SELECT d.deposit_id, r.remittance_id, r.amount AS r_amount, d.amount, d.deposit_date,
           count(*) OVER (PARTITION BY d.deposit_id) AS n_all,
           sum(CASE WHEN r.amount = d.amount THEN 1 ELSE 0 END) OVER (PARTITION BY d.deposit_id) AS n_same
    FROM d JOIN remittances r ON r.trace_number = d.trace
),
trace_pick AS (
    SELECT deposit_id, remittance_id, amount, r_amount, deposit_date
    FROM by_trace
    WHERE n_all = 1 OR (n_same = 1 AND r_amount = amount)
),
trace_ranked AS (
    SELECT deposit_id, remittance_id,
           row_number() OVER (PARTITION BY remittance_id
                              ORDER BY (amount = r_amount) DESC, deposit_date, deposit_id) AS rank_on_remittance,
           first_value(deposit_id) OVER (PARTITION BY remittance_id
                              ORDER BY (amount = r_amount) DESC, deposit_date, deposit_id) AS winner
    FROM trace_pick
),
trace_won AS (
    SELECT deposit_id, remittance_id FROM trace_ranked WHERE rank_on_remittance = 1
),
-- rule 2: deposits without a trace, by exact amount within 5 days of BPR16
by_amount AS (
    SELECT d.deposit_id, r.remittance_id
    FROM d JOIN remittances r
      ON d.trace IS NULL
     AND r.amount = d.amount
     AND r.paid_on BETWEEN d.deposit_date - INTERVAL 5 DAY AND d.deposit_date + INTERVAL 5 DAY
    WHERE r.remittance_id NOT IN (SELECT remittance_id FROM trace_won)
),
amount_counted AS (
    SELECT deposit_id, remittance_id,
           count(*) OVER (PARTITION BY deposit_id) AS n_for_deposit,
           count(*) OVER (PARTITION BY remittance_id) AS n_for_remittance
    FROM by_amount
),
amount_won AS (
    SELECT deposit_id, remittance_id FROM amount_counted
    WHERE n_for_deposit = 1 AND n_for_remittance = 1
),
amount_info AS (
    SELECT deposit_id, max(n_for_deposit) AS candidates,
           max(CASE WHEN n_for_deposit = 1 THEN n_for_remittance END) AS contenders
    FROM amount_counted GROUP BY deposit_id
),
matched AS (
    SELECT deposit_id, remittance_id, 'trace' AS matched_by FROM trace_won
    UNION ALL
    SELECT deposit_id, remittance_id, 'amount_date' FROM amount_won
)
SELECT d.deposit_id, d.deposit_date, d.amount, d.trace AS trace_number, d.description,
       CASE WHEN m.remittance_id IS NULL THEN 'unmatched'
            WHEN r.amount = d.amount THEN 'matched'
            ELSE 'amount_mismatch' END AS status,
       m.matched_by, m.remittance_id, r.payer_id, r.trace_number AS remittance_trace,
       r.paid_on, r.amount AS remittance_amount,
       CAST(d.amount - r.amount AS DECIMAL(18,2)) AS difference,
       CASE
           WHEN m.remittance_id IS NOT NULL AND r.amount <> d.amount THEN
               'deposit ' || CAST(d.amount AS VARCHAR) || ' but remittance ' || r.remittance_id
               || ' (trace ' || r.trace_number || ', ' || r.payer_id || ') paid '
               || CAST(r.amount AS VARCHAR) || ', a difference of ' || CAST(d.amount - r.amount AS VARCHAR)
           WHEN m.remittance_id IS NOT NULL THEN NULL
           WHEN d.trace IS NOT NULL AND tr.n_all IS NULL THEN
               'no posted remittance has trace ' || d.trace || ' (post its 835, or check the trace number)'
           WHEN d.trace IS NOT NULL AND tk.remittance_id IS NULL THEN
               'trace ' || d.trace || ' is on ' || CAST(tr.n_all AS VARCHAR)
               || ' remittances of different payers and the amount does not single one out'
           WHEN d.trace IS NOT NULL THEN
               'duplicate: remittance ' || tk.remittance_id || ' (trace ' || d.trace
               || ') is already matched by deposit ' || tk.winner
           WHEN ai.candidates IS NULL THEN
               'no trace number, and no remittance of ' || CAST(d.amount AS VARCHAR)
               || ' paid within 5 days of ' || CAST(d.deposit_date AS VARCHAR)
           WHEN ai.candidates > 1 THEN
               'no trace number, and ' || CAST(ai.candidates AS VARCHAR) || ' remittances of '
               || CAST(d.amount AS VARCHAR) || ' were paid within 5 days of '
               || CAST(d.deposit_date AS VARCHAR) || ': ambiguous'
           ELSE
               'no trace number, and the one remittance of ' || CAST(d.amount AS VARCHAR)
               || ' within 5 days also fits another deposit: ambiguous'
       END AS reason,
       d.source_file, d.loaded_at
FROM d
LEFT JOIN matched m USING (deposit_id)
LEFT JOIN remittances r ON r.remittance_id = m.remittance_id
LEFT JOIN (SELECT DISTINCT deposit_id, n_all FROM by_trace) tr USING (deposit_id)
LEFT JOIN trace_ranked tk USING (deposit_id)
LEFT JOIN amount_info ai USING (deposit_id);

-- One row per remittance: is its money in the bank? (no_payment: BPR02 = 0, a
-- notification or fully offset remittance; no deposit will ever come for it.)
CREATE OR REPLACE VIEW remittance_reconciliation AS
SELECT r.remittance_id, r.trace_number, r.payer_id, r.amount, r.paid_on,
       CASE WHEN m.deposit_id IS NOT NULL AND m.status = 'matched' THEN 'reconciled'
            WHEN m.deposit_id IS NOT NULL THEN 'amount_mismatch'
            WHEN r.amount = 0 THEN 'no_payment'
            ELSE 'awaiting_deposit' END AS status,
       m.deposit_id, m.deposit_date, m.amount AS deposit_amount, m.difference, m.matched_by
FROM remittances r
LEFT JOIN (SELECT * FROM deposit_reconciliation WHERE remittance_id IS NOT NULL) m USING (remittance_id);

-- Worklist rows for the bank side, in the posting exceptions' shape.
CREATE OR REPLACE VIEW deposit_exceptions AS
SELECT 'deposit:' || deposit_id AS exception_id,
       CASE status WHEN 'unmatched' THEN 'unmatched_deposit' ELSE 'amount_mismatch' END AS kind,
       remittance_id,
       coalesce(remittance_trace, trace_number) AS trace_number,
       payer_id,
       CAST(NULL AS VARCHAR) AS claim_id,
       CASE status WHEN 'unmatched' THEN amount ELSE difference END AS amount,
       reason,
       loaded_at AS created_at,
       deposit_id
FROM deposit_reconciliation
WHERE status <> 'matched';
