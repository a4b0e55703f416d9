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
--   0. A match made by hand (deposit_match_entries, recon.remit.deposit_match) comes
--      first: the deposit and its remittances (one or several) are taken out of
--      rules 1 and 2, which match the rest.
--   Status: matched | amount_mismatch (matched, amounts differ) | unmatched.

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

-- Matches made by hand: an analyst matches a deposit to one remittance, or to several
-- that together make its amount, and may undo it. Append-only, one row per
-- (deposit, remittance) of a match: an undo is a reversing 'unmatch' row per row of the
-- match (same match_id), never a delete. A match that the rules would refuse (amounts
-- differ, a remittance or the deposit already matched) is written only when confirmed
-- with a reason (``confirmed`` says what was confirmed). Who and when are on each row,
-- and in audit_log.
CREATE TABLE IF NOT EXISTS deposit_match_entries (
    entry_id          BIGINT PRIMARY KEY,     -- entry_seq
    match_id          BIGINT NOT NULL,        -- the match this row makes, or undoes
    action            VARCHAR NOT NULL,       -- match | unmatch
    deposit_id        VARCHAR NOT NULL,
    remittance_id     VARCHAR NOT NULL,
    deposit_amount    DECIMAL(18,2) NOT NULL, -- as matched (a deposit is never changed)
    remittance_amount DECIMAL(18,2) NOT NULL, -- BPR02 as matched
    confirmed         VARCHAR,                -- what the analyst confirmed; NULL for a clean match
    reason            VARCHAR,                -- why: the confirmation's reason, or the undo's
    user_id           VARCHAR NOT NULL,
    "at"              TIMESTAMP NOT NULL
);

-- The matches by hand that stand (not undone): one row per (deposit, remittance).
CREATE OR REPLACE VIEW manual_deposit_matches AS
SELECT match_id, deposit_id, remittance_id, deposit_amount, remittance_amount, confirmed, reason, user_id, "at"
FROM deposit_match_entries
WHERE action = 'match'
  AND match_id NOT IN (SELECT match_id FROM deposit_match_entries WHERE action = 'unmatch');

-- remittances (remittance_id, payer_id, trace_number, amount = BPR02, paid_on =
-- BPR16) is the posting part's table, created by 10_remit.sql, applied before this.

-- Rules 1 and 2 over the deposits and remittances no match by hand took: one row per
-- such deposit, its remittance (NULL: none) and what the reason text needs.
CREATE OR REPLACE VIEW deposit_auto_matches AS
WITH d AS (
    SELECT deposit_id, deposit_date, amount, nullif(trim(trace_number), '') AS trace
    FROM deposits
    WHERE deposit_id NOT IN (SELECT deposit_id FROM manual_deposit_matches)
),
r AS (
    SELECT * FROM remittances WHERE remittance_id NOT IN (SELECT remittance_id FROM manual_deposit_matches)
),
-- rule 1: every remittance carrying the deposit's trace
by_trace AS (
    SELECT d.deposit_id, r.remittance_id, r.amount AS r_amount, d.amount, d.deposit_date,
           count(*) OVER (PARTITION BY d.deposit_id) AS n_all,
           sum(CASE WHEN r.amount = d.amount THEN 1 ELSE 0 END) OVER (PARTITION BY d.deposit_id) AS n_same
    FROM d JOIN r ON r.trace_number = d.trace
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
    FROM d JOIN r
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
-- a deposit whose trace is on a remittance matched by hand to another deposit
by_hand AS (
    SELECT d.deposit_id, min(m.remittance_id) AS remittance_id, min(m.deposit_id) AS other_deposit
    FROM d JOIN remittances rr ON rr.trace_number = d.trace
    JOIN manual_deposit_matches m ON m.remittance_id = rr.remittance_id
    GROUP BY d.deposit_id
),
matched AS (
    SELECT deposit_id, remittance_id, 'trace' AS matched_by FROM trace_won
    UNION ALL
    SELECT deposit_id, remittance_id, 'amount_date' FROM amount_won
)
SELECT d.deposit_id, d.trace, m.remittance_id, m.matched_by, tr.n_all, tk.remittance_id AS trace_remittance,
       tk.winner AS trace_winner, ai.candidates, bh.remittance_id AS hand_remittance, bh.other_deposit AS hand_deposit
FROM d
LEFT JOIN matched m USING (deposit_id)
LEFT JOIN (SELECT DISTINCT deposit_id, n_all FROM by_trace) tr USING (deposit_id)
LEFT JOIN trace_ranked tk USING (deposit_id)
LEFT JOIN amount_info ai USING (deposit_id)
LEFT JOIN by_hand bh USING (deposit_id);

-- Every (deposit, remittance) that is matched, and how: 'manual' (by hand), 'trace' or
-- 'amount_date'. A remittance is in at most one row; a deposit matched by hand may have
-- several (remittances that together make its amount).
CREATE OR REPLACE VIEW deposit_links AS
SELECT deposit_id, remittance_id, 'manual' AS matched_by, match_id FROM manual_deposit_matches
UNION ALL
SELECT deposit_id, remittance_id, matched_by, CAST(NULL AS BIGINT) FROM deposit_auto_matches
WHERE remittance_id IS NOT NULL;

-- One row per deposit. A deposit matched to several remittances shows their ids, payers
-- and traces joined by ', ', the latest BPR16 and the sum of their BPR02.
CREATE OR REPLACE VIEW deposit_reconciliation AS
WITH linked AS (
    SELECT l.deposit_id, any_value(l.matched_by) AS matched_by, count(*) AS n,
           string_agg(r.remittance_id, ', ' ORDER BY r.remittance_id) AS remittance_id,
           string_agg(DISTINCT r.payer_id, ', ' ORDER BY r.payer_id) AS payer_id,
           string_agg(r.trace_number, ', ' ORDER BY r.remittance_id) AS remittance_trace,
           max(r.paid_on) AS paid_on,
           CAST(sum(r.amount) AS DECIMAL(18,2)) AS remittance_amount
    FROM deposit_links l JOIN remittances r USING (remittance_id)
    GROUP BY l.deposit_id
),
hand AS (
    SELECT deposit_id, any_value(user_id) AS user_id, any_value(reason) AS reason
    FROM manual_deposit_matches GROUP BY deposit_id
)
SELECT d.deposit_id, d.deposit_date, d.amount, nullif(trim(d.trace_number), '') AS trace_number, d.description,
       CASE WHEN l.deposit_id IS NULL THEN 'unmatched'
            WHEN l.remittance_amount = d.amount THEN 'matched'
            ELSE 'amount_mismatch' END AS status,
       l.matched_by, l.remittance_id, l.payer_id, l.remittance_trace, l.paid_on, l.remittance_amount,
       CAST(d.amount - l.remittance_amount AS DECIMAL(18,2)) AS difference,
       CASE
           WHEN l.deposit_id IS NOT NULL AND l.remittance_amount <> d.amount AND l.n > 1 THEN
               'deposit ' || CAST(d.amount AS VARCHAR) || ' but remittances ' || l.remittance_id
               || ' paid ' || CAST(l.remittance_amount AS VARCHAR) || ' together, a difference of '
               || CAST(d.amount - l.remittance_amount AS VARCHAR)
               || ', matched by hand by ' || h.user_id || coalesce(': ' || h.reason, '')
           WHEN l.deposit_id IS NOT NULL AND l.remittance_amount <> d.amount THEN
               'deposit ' || CAST(d.amount AS VARCHAR) || ' but remittance ' || l.remittance_id
               || ' (trace ' || l.remittance_trace || ', ' || l.payer_id || ') paid '
               || CAST(l.remittance_amount AS VARCHAR) || ', a difference of '
               || CAST(d.amount - l.remittance_amount AS VARCHAR)
               || CASE WHEN h.user_id IS NOT NULL
                       THEN ', matched by hand by ' || h.user_id || coalesce(': ' || h.reason, '') ELSE '' END
           WHEN h.user_id IS NOT NULL AND h.reason IS NOT NULL THEN
               'matched by hand by ' || h.user_id || ': ' || h.reason
           WHEN l.deposit_id IS NOT NULL THEN NULL
           WHEN a.trace IS NOT NULL AND a.n_all IS NULL AND a.hand_remittance IS NOT NULL THEN
               'remittance ' || a.hand_remittance || ' (trace ' || a.trace || ') was matched by hand to deposit '
               || a.hand_deposit
           WHEN a.trace IS NOT NULL AND a.n_all IS NULL THEN
               'no posted remittance has trace ' || a.trace || ' (post its 835, or check the trace number)'
           WHEN a.trace IS NOT NULL AND a.trace_remittance IS NULL THEN
               'trace ' || a.trace || ' is on ' || CAST(a.n_all AS VARCHAR)
               || ' remittances of different payers and the amount does not single one out'
           WHEN a.trace IS NOT NULL THEN
               'duplicate: remittance ' || a.trace_remittance || ' (trace ' || a.trace
               || ') is already matched by deposit ' || a.trace_winner
           WHEN a.candidates IS NULL THEN
               'no trace number, and no remittance of ' || CAST(d.amount AS VARCHAR)
               || ' paid within 5 days of ' || CAST(d.deposit_date AS VARCHAR)
           WHEN a.candidates > 1 THEN
               'no trace number, and ' || CAST(a.candidates AS VARCHAR) || ' remittances of '
               || CAST(d.amount AS VARCHAR) || ' were paid within 5 days of '
               || CAST(d.deposit_date AS VARCHAR) || ': ambiguous'
           ELSE
               'no trace number, and the one remittance of ' || CAST(d.amount AS VARCHAR)
               || ' within 5 days also fits another deposit: ambiguous'
       END AS reason,
       d.source_file, d.loaded_at
FROM deposits d
LEFT JOIN linked l USING (deposit_id)
LEFT JOIN hand h USING (deposit_id)
LEFT JOIN deposit_auto_matches a USING (deposit_id);

-- One row per remittance: is its money in the bank? (no_payment: BPR02 = 0, a
-- notification or fully offset remittance; no deposit will ever come for it.)
-- A deposit matched by hand to several remittances: each shows the deposit and its
-- status; the deposit's difference shows on the first of them only, so a sum counts it once.
CREATE OR REPLACE VIEW remittance_reconciliation AS
SELECT r.remittance_id, r.trace_number, r.payer_id, r.amount, r.paid_on,
       CASE WHEN m.deposit_id IS NOT NULL AND m.status = 'matched' THEN 'reconciled'
            WHEN m.deposit_id IS NOT NULL THEN 'amount_mismatch'
            WHEN r.amount = 0 THEN 'no_payment'
            ELSE 'awaiting_deposit' END AS status,
       m.deposit_id, m.deposit_date, m.amount AS deposit_amount,
       CASE WHEN l.remittance_id = min(l.remittance_id) OVER (PARTITION BY l.deposit_id)
            THEN m.difference END AS difference,
       m.matched_by
FROM remittances r
LEFT JOIN deposit_links l USING (remittance_id)
LEFT JOIN deposit_reconciliation m ON m.deposit_id = l.deposit_id;

-- Worklist rows for the bank side, in the posting exceptions' shape. A match by hand
-- whose amounts differ was confirmed with a reason: it is worked, not listed.
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
WHERE status <> 'matched' AND matched_by IS DISTINCT FROM 'manual';
