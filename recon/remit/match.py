"""Match staged claims to invoices and write the ledger entries, all in set-based SQL.

Input: the temp tables of :mod:`recon.remit.stage` (``s_claim``, ``s_line``, ``s_cas``,
``s_plb``) and ``s_rem`` (one row per new remittance of the file). Output: rows in the
ledger's entry tables and in ``10_remit.sql``'s tables. Called inside the file's one
transaction; nothing here commits.

Order matters and is the point of the module:
1. match claims (CLP01 = invoice id or claim id) and lines (date + procedure code),
   and make the allocations and adjustments of paid claims, chunk by chunk as the
   stager loads them (:meth:`Poster.chunk`: these depend on one claim only);
2. reversals (CLP02 = 22) find the claim posting they undo and negate its entries;
3. amounts due are computed *after*, so a correction's are computed from values
   that already include its reversal;
4. allocations are grouped into one payment per remittance and client;
5. what could not be allocated is held on the remittance, and the invariant
   payments + held − PLB = BPR02 is checked before the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from recon.errors import RemittanceError
from recon.store.sql import literal

PRIMARY = ("1", "19")

# BPR04 -> recon payment method. BOP (financial institution option) and FWT (wire)
# are electronic transfers like ACH; NON (no payment) and anything else is plain
# "insurance" (no money moved through a check or an EFT).
METHODS = {"ACH": "insurance-eft-ach", "BOP": "insurance-eft-ach", "FWT": "insurance-eft-ach",
           "CHK": "insurance-check"}


def method_sql(column: str) -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in METHODS.items())
    return f"CASE upper({column}) {cases} ELSE 'insurance' END"


def _apportion(source: str, extra: tuple[str, ...] = (), *, chunk: str = "TRUE") -> str:
    """Split ``amount`` of each row of ``source`` over its claim's invoices (``u_inv``) by fee.

    ``source`` has columns ``k`` (row key), ``ci``, ``amount`` and ``extra``. Cents are
    floored for all but the last invoice, which gets the remainder, so the parts add up
    exactly; no float is involved. Most claims have one invoice: it gets it all.
    ``chunk`` restricts ``u_inv`` to the claims at hand.
    """
    inner = "".join(f"x.{c}, " for c in extra)
    outer = "".join(f"{c}, " for c in extra)
    cents = "CAST(x.amount * 100 AS HUGEINT)"
    return f"""
    SELECT ci, invoice_id, client_id, {outer}
           CASE WHEN r = n THEN amt - (sum(part) OVER (PARTITION BY k) - part) ELSE part END AS amount
    FROM (
        SELECT x.k, x.ci, i.invoice_id, i.client_id, {inner} x.amount AS amt, i.r, i.n,
               CAST(CAST(CASE WHEN i.tf = 0 THEN {cents} // i.n
                              ELSE {cents} * CAST(i.fee * 100 AS HUGEINT) // CAST(i.tf * 100 AS HUGEINT) END
                         AS DECIMAL(18,0)) * CAST(0.01 AS DECIMAL(3,2)) AS DECIMAL(18,2)) AS part
        FROM {source} x JOIN (SELECT * FROM u_inv WHERE {chunk}) i USING (ci))"""


class Poster:
    """Runs the posting statements for one file on ``con`` (inside its transaction).

    Temp tables are kept narrow (keys and amounts): materialising a row costs about
    as much as computing it, so the wide text columns of a claim (patient name, CLP07)
    are read from ``s_claim`` only by the one statement that writes them. Entry ids
    are drawn from ``entry_seq`` when the pending entries are made (``n_alloc``,
    ``n_adj``, ``n_due``), so no second copy is needed to number them: the claims'
    allocations and adjustments as each chunk is matched (:meth:`chunk`, claim order),
    then a reversal's entries and the amounts due (:meth:`finish`).
    """

    TABLES = ("m_inv", "m_line", "m_claim", "m_rev", "n_alloc", "n_adj", "n_due", "u_inv", "n_pay", "m_held",
              "w_exc")
    base = 0

    def __init__(self, con: Any, *, user_id: str, stamp: datetime, write_off: Iterable[str]) -> None:
        self.con = con
        self.user = literal(user_id)
        self.stamp = literal(stamp)
        codes = sorted(set(write_off)) or ["__none__"]
        self.write_off = "(" + ", ".join(literal(c) for c in codes) + ")"
        self.primary = "(" + ", ".join(literal(c) for c in PRIMARY) + ")"

    def run(self, sql: str) -> Any:
        return self.con.execute(sql)

    # ------------------------------------------------------------------ matching
    def prepare(self) -> None:
        """Create the (empty) working tables; claim posting ids continue the ledger's."""
        row = self.run("SELECT coalesce(max(claim_posting_id), 0) FROM remit_claims").fetchone()
        self.base = int(row[0]) if row else 0
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_inv (ci BIGINT, invoice_id VARCHAR, client_id VARCHAR,
                                                fee DECIMAL(18,2), service_date DATE, code VARCHAR);
            CREATE OR REPLACE TEMP TABLE m_line (ci BIGINT, ln INTEGER, invoice_id VARCHAR, client_id VARCHAR,
                                                 fee DECIMAL(18,2), charge DECIMAL(18,2), paid DECIMAL(18,2));
            CREATE OR REPLACE TEMP TABLE m_claim (ci BIGINT, st INTEGER, cpid BIGINT, clp01 VARCHAR,
                                                  charge DECIMAL(18,2), paid DECIMAL(18,2), n_lines INTEGER,
                                                  primary_payer BOOLEAN, outcome VARCHAR, reverses BIGINT);
            CREATE OR REPLACE TEMP TABLE u_inv (ci BIGINT, invoice_id VARCHAR, client_id VARCHAR,
                                                fee DECIMAL(18,2), service_date DATE, r BIGINT, n BIGINT,
                                                tf DECIMAL(38,2));
            CREATE OR REPLACE TEMP TABLE n_alloc (id BIGINT, cpid BIGINT, st INTEGER, invoice_id VARCHAR,
                                                  client_id VARCHAR, amount DECIMAL(18,2));
            CREATE OR REPLACE TEMP TABLE n_adj (id BIGINT, cpid BIGINT, st INTEGER, invoice_id VARCHAR,
                                                client_id VARCHAR, grp VARCHAR, reason VARCHAR,
                                                amount DECIMAL(18,2), written_off BOOLEAN, reverses BIGINT);
            CREATE OR REPLACE TEMP TABLE n_due (id BIGINT, cpid BIGINT, st INTEGER, invoice_id VARCHAR,
                                                client_id VARCHAR, dc DECIMAL(18,2), di DECIMAL(18,2),
                                                reverses BIGINT, reason VARCHAR)""")

    def chunk(self, lo: int, hi: int) -> str:
        """The statements for claims ``lo < ci <= hi`` once they are staged (run by the stager).

        Everything here depends on a claim and the practice's invoices only: matching,
        the outcome (a reversal's is settled by :meth:`reversals`), the allocations and
        adjustments of posted claims, and the claim's lines and CAS as posted. What
        needs the whole file (reversals, amounts due, one payment per client) waits
        for :meth:`finish`.
        """
        def in_chunk(alias: str = "") -> str:
            return f"{alias}ci > {int(lo)} AND {alias}ci <= {int(hi)}"

        posted_lines = f"""(SELECT l.* FROM m_line l JOIN m_claim c USING (ci)
                            WHERE c.outcome = 'posted' AND {in_chunk('l.')} AND {in_chunk('c.')})"""
        chunk_claims = f"(SELECT * FROM m_claim WHERE {in_chunk()})"
        return f"""
            INSERT INTO m_inv
            SELECT m.ci, i.invoice_id, i.client_id, i.fee, i.service_date,
                   regexp_extract(upper(trim(i.service_code)), '^[A-Z0-9]+') AS code
            FROM (SELECT c.ci, i.invoice_id FROM s_claim c JOIN invoices i ON i.invoice_id = c.clp01
                  WHERE {in_chunk('c.')}
                  UNION
                  SELECT c.ci, i.invoice_id FROM s_claim c JOIN invoices i ON i.claim_id = c.clp01
                  WHERE {in_chunk('c.')}) m
            JOIN invoices i USING (invoice_id);
            -- Lines pair with invoices of the same claim, date and code; repeats pair in order.
            INSERT INTO m_line
            WITH l AS (SELECT ci, ln, code, service_date, charge, paid,
                              row_number() OVER (PARTITION BY ci, code, service_date ORDER BY ln) AS k
                       FROM s_line WHERE {in_chunk()}),
                 v AS (SELECT ci, invoice_id, client_id, fee, code, service_date,
                              row_number() OVER (PARTITION BY ci, code, service_date ORDER BY invoice_id) AS k
                       FROM m_inv WHERE {in_chunk()})
            SELECT l.ci, l.ln, v.invoice_id, v.client_id, v.fee, l.charge, l.paid
            FROM l LEFT JOIN v ON v.ci = l.ci AND v.code = l.code AND v.service_date = l.service_date
                              AND v.k = l.k
            ORDER BY l.ci, l.ln;
            INSERT INTO m_claim
            WITH ninv AS (SELECT ci, count(*) AS n FROM m_inv WHERE {in_chunk()} GROUP BY ci),
                 nl AS (SELECT ci, count(invoice_id) AS matched FROM m_line WHERE {in_chunk()} GROUP BY ci)
            SELECT c.ci, c.st, {self.base} + c.ci AS cpid, c.clp01, c.charge, c.paid, c.n_lines,
                   c.status IN {self.primary} AS primary_payer,
                   CASE WHEN c.status = '22' THEN 'reversal'
                        WHEN c.status = '4' THEN 'denied'
                        WHEN c.status = '23' THEN 'not_our_claim'
                        WHEN coalesce(ninv.n, 0) = 0 THEN 'unmatched'
                        WHEN c.n_lines > 0 AND coalesce(nl.matched, 0) < c.n_lines THEN 'unmatched'
                        ELSE 'posted' END AS outcome,
                   CAST(NULL AS BIGINT) AS reverses
            FROM s_claim c LEFT JOIN ninv USING (ci) LEFT JOIN nl USING (ci)
            WHERE {in_chunk('c.')}
            ORDER BY c.ci;
            -- the invoices a posted claim pays: its lines', or for a claim without lines its own
            INSERT INTO u_inv
            SELECT *, row_number() OVER (PARTITION BY ci ORDER BY service_date, invoice_id) AS r,
                   count(*) OVER (PARTITION BY ci) AS n, sum(fee) OVER (PARTITION BY ci) AS tf
            FROM (SELECT i.ci, i.invoice_id, i.client_id, i.fee, i.service_date
                  FROM m_inv i JOIN {chunk_claims} c USING (ci)
                  WHERE c.outcome = 'posted' AND c.n_lines = 0
                  UNION
                  SELECT ci, invoice_id, client_id, fee, service_date
                  FROM m_inv SEMI JOIN {posted_lines} l USING (ci, invoice_id)
                  WHERE {in_chunk()});
            -- money: line by line; a claim without lines is split over its invoices by fee
            INSERT INTO n_alloc
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, u.invoice_id, u.client_id, sum(u.amount) AS amount
                FROM (SELECT ci, invoice_id, client_id, paid AS amount FROM {posted_lines}
                      UNION ALL
                      SELECT ci, invoice_id, client_id, amount FROM ({_apportion(
                          f"(SELECT ci AS k, ci, paid AS amount FROM {chunk_claims} "
                          "WHERE outcome = 'posted' AND n_lines = 0)", chunk=in_chunk())})) u
                JOIN {chunk_claims} c USING (ci)
                GROUP BY ALL HAVING sum(u.amount) <> 0
                ORDER BY c.cpid, u.invoice_id);
            INSERT INTO n_adj
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, u.invoice_id, u.client_id, u.grp, u.reason, u.amount,
                       c.primary_payer AND (u.grp || '-' || u.reason) IN {self.write_off}, NULL
                FROM (SELECT a.ci, l.invoice_id, l.client_id, a.grp, a.reason, a.amount
                      FROM s_cas a JOIN {posted_lines} l ON l.ci = a.ci AND l.ln = a.ln
                      WHERE {in_chunk('a.')}
                      UNION ALL
                      SELECT ci, invoice_id, client_id, grp, reason, amount FROM ({_apportion(
                          f"(SELECT a.k, a.ci, a.grp, a.reason, a.amount FROM s_cas a JOIN {chunk_claims} c "
                          f"USING (ci) WHERE c.outcome = 'posted' AND a.ln = 0 AND {in_chunk('a.')})",
                          ("grp", "reason"), chunk=in_chunk())})) u
                JOIN {chunk_claims} c USING (ci)
                WHERE u.amount <> 0
                ORDER BY c.cpid, u.invoice_id);
            INSERT INTO remit_lines
            SELECT {self.base} + l.ci, l.ln, l.code, nullif(l.modifiers, ''), l.charge, l.paid, l.units,
                   l.service_date, m.invoice_id
            FROM s_line l JOIN m_line m USING (ci, ln)
            WHERE {in_chunk('l.')} AND {in_chunk('m.')}
            ORDER BY l.ci, l.ln;
            INSERT INTO remit_cas SELECT {self.base} + ci, ln, grp, reason, amount
            FROM s_cas WHERE {in_chunk()} ORDER BY k"""

    def finish(self) -> None:
        """Everything that needs the whole file, once every chunk is staged."""
        self.reversals()
        self._amounts_due()
        self.write()

    # ------------------------------------------------------------------ entries
    def reversals(self) -> None:
        """Find each reversal's original claim posting and negate what it wrote.

        Every lookup in the ledger's growing tables is restricted to the claim ids of
        this file's reversals, so a file costs the same however large the ledger is;
        a file without reversals (the usual case) skips all of it.
        """
        row = self.run("SELECT count(*) FROM m_claim WHERE outcome = 'reversal'").fetchone()
        if not row or not row[0]:
            return
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_rev AS
            WITH rv AS (SELECT c.ci, c.clp01, r.payer_id FROM m_claim c JOIN s_rem r USING (st)
                        WHERE c.outcome = 'reversal'),
                 cand AS (SELECT rv.ci, rc.claim_posting_id, rc.outcome
                          FROM remit_claims rc
                          JOIN rv ON rc.claim_id = rv.clp01
                          JOIN remittances r ON r.remittance_id = rc.remittance_id AND r.payer_id = rv.payer_id
                          WHERE rc.claim_id IN (SELECT clp01 FROM rv)),
                 taken AS (SELECT reverses FROM remit_claims
                           WHERE reverses IN (SELECT claim_posting_id FROM cand)),
                 worked AS (SELECT e.claim_posting_id FROM exceptions e JOIN exception_actions a USING (exception_id)
                            WHERE a.action = 'matched' AND e.claim_posting_id IN (SELECT claim_posting_id FROM cand))
            SELECT ci, original FROM (
                SELECT ci, max(claim_posting_id) AS original FROM cand
                WHERE (outcome = 'posted' OR claim_posting_id IN (SELECT claim_posting_id FROM worked))
                  AND claim_posting_id NOT IN (SELECT reverses FROM taken)
                GROUP BY ci)
            QUALIFY row_number() OVER (PARTITION BY original ORDER BY ci) = 1""")
        self.run("""
            UPDATE m_claim SET reverses = v.original FROM m_rev v WHERE m_claim.ci = v.ci""")
        self.run("""
            UPDATE m_claim SET outcome = 'unmatched_reversal' WHERE outcome = 'reversal' AND reverses IS NULL""")
        entries = """(SELECT c.cpid, c.st, c.clp01, e.entry_id FROM m_claim c
                      JOIN remit_entries e ON e.claim_posting_id = c.reverses AND e.entry_kind = '{kind}'
                      WHERE e.claim_posting_id IN (SELECT reverses FROM m_claim WHERE reverses IS NOT NULL))"""
        self.run(f"""
            INSERT INTO n_alloc
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, a.invoice_id, a.client_id, -a.amount
                FROM {entries.format(kind='allocation')} c JOIN allocations a ON a.allocation_id = c.entry_id
                ORDER BY c.cpid, a.invoice_id)""")
        self.run(f"""
            INSERT INTO n_adj
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, a.invoice_id, a.client_id, a.group_code, a.reason_code, -a.amount,
                       a.written_off, a.adjustment_id
                FROM {entries.format(kind='adjustment')} c JOIN adjustments a ON a.adjustment_id = c.entry_id
                ORDER BY c.cpid, a.invoice_id)""")
        self.run(f"""
            INSERT INTO n_due
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, d.invoice_id, d.client_id, -d.client_amt_due_delta, -d.ins_amt_due_delta,
                       d.change_id, 'reversal of claim ' || c.clp01
                FROM {entries.format(kind='due_change')} c JOIN due_changes d ON d.change_id = c.entry_id
                ORDER BY c.cpid, d.invoice_id)""")

    def _amounts_due(self) -> None:
        """Primary: Client Amt Due = Σ PR of the invoice's lines, Ins Amt Due = fee − that.

        Secondary and later payers leave the split to the primary's adjudication but
        move what they paid from Client Amt Due to Ins Amt Due (they paid part of what
        the client owed). Deltas are from the current values, reversals included.
        The claims' own allocations and adjustments are the ``n_alloc``/``n_adj`` rows
        of posted claims (a reversal's rows belong to reversal claims).
        """
        self.run("""
            INSERT INTO n_due
            SELECT nextval('entry_seq'), * FROM (
            WITH hit AS (SELECT u.invoice_id, c.primary_payer, c.cpid, c.st
                         FROM u_inv u JOIN m_claim c USING (ci)),
                 pr AS (SELECT u.invoice_id, sum(u.amount) AS pr FROM n_adj u JOIN m_claim c USING (cpid)
                        WHERE c.outcome = 'posted' AND c.primary_payer AND u.grp = 'PR' GROUP BY 1),
                 sec AS (SELECT u.invoice_id, sum(u.amount) AS paid FROM n_alloc u JOIN m_claim c USING (cpid)
                         WHERE c.outcome = 'posted' AND NOT c.primary_payer GROUP BY 1),
                 inv AS (SELECT invoice_id, bool_or(primary_payer) AS has_primary,
                                arg_max(cpid, cpid) AS cpid, arg_max(st, cpid) AS st
                         FROM hit GROUP BY 1),
                 prior AS (SELECT invoice_id, sum(client_amt_due_delta) AS c, sum(ins_amt_due_delta) AS i
                           FROM due_changes WHERE invoice_id IN (SELECT invoice_id FROM inv) GROUP BY 1),
                 pending AS (SELECT invoice_id, sum(dc) AS c, sum(di) AS i FROM n_due GROUP BY 1),
                 cur AS (SELECT v.*, i.client_id, i.fee, v2.pr, v3.paid AS sec_paid,
                                i.client_amt_due + coalesce(p.c, 0) + coalesce(q.c, 0) AS cdue,
                                i.ins_amt_due + coalesce(p.i, 0) + coalesce(q.i, 0) AS idue
                         FROM inv v JOIN invoices i USING (invoice_id)
                         LEFT JOIN prior p USING (invoice_id) LEFT JOIN pending q USING (invoice_id)
                         LEFT JOIN pr v2 USING (invoice_id) LEFT JOIN sec v3 USING (invoice_id)),
                 target AS (SELECT *, CASE WHEN has_primary THEN coalesce(pr, 0) ELSE cdue END AS c1
                            FROM cur),
                 final AS (SELECT *, CASE WHEN coalesce(sec_paid, 0) > 0
                                          THEN c1 - least(sec_paid, greatest(c1, 0)) ELSE c1 END AS c2
                           FROM target)
            SELECT cpid, st, invoice_id, client_id, CAST(c2 - cdue AS DECIMAL(18,2)) AS dc,
                   CAST((fee - c2) - idue AS DECIMAL(18,2)) AS di, NULL, 'remittance'
            FROM final WHERE c2 <> cdue OR (fee - c2) <> idue
            ORDER BY cpid, invoice_id)""")

    # ------------------------------------------------------------------ writing
    def write(self) -> None:
        """Payments, entries, claim rows, exceptions and remittances, in that order."""
        self.run("""
            CREATE OR REPLACE TEMP TABLE n_pay AS
            SELECT st, client_id, amount, format('PAY-{:06d}', nextval('payment_seq')) AS payment_id
            FROM (SELECT st, client_id, sum(amount) AS amount FROM n_alloc GROUP BY ALL ORDER BY st, client_id)""")
        self.run(f"""
            INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on,
                                  payment_number, notes, user_id, created_at, remittance_id)
            SELECT p.payment_id, 'insurance', p.client_id, r.payer_id, {method_sql('r.method')}, p.amount,
                   coalesce(r.paid_on, CAST({self.stamp} AS DATE)), r.trace,
                   'ERA ' || r.file_name || ' ST ' || r.st_control, {self.user}, {self.stamp}, r.remittance_id
            FROM n_pay p JOIN s_rem r USING (st) ORDER BY p.payment_id""")
        self.run(f"""
            INSERT INTO allocations
            SELECT a.id, p.payment_id, a.invoice_id, a.client_id, 'insurance', a.amount, {self.stamp}
            FROM n_alloc a JOIN n_pay p USING (st, client_id) ORDER BY a.id""")
        self.run(f"""
            INSERT INTO adjustments
            SELECT a.id, a.invoice_id, a.client_id, p.payment_id, r.remittance_id, a.grp, a.reason, a.amount,
                   a.written_off, a.reverses, {self.user}, {self.stamp}, NULL
            FROM n_adj a JOIN s_rem r USING (st) LEFT JOIN n_pay p USING (st, client_id) ORDER BY a.id""")
        self.run(f"""
            INSERT INTO due_changes
            SELECT d.id, d.invoice_id, d.client_id, d.dc, d.di, r.remittance_id, d.reverses, {self.user},
                   {self.stamp}, d.reason
            FROM n_due d JOIN s_rem r USING (st) ORDER BY d.id""")
        self.run("""
            INSERT INTO remit_entries
            SELECT cpid, 'allocation', id FROM n_alloc
            UNION ALL SELECT cpid, 'adjustment', id FROM n_adj
            UNION ALL SELECT cpid, 'due_change', id FROM n_due""")
        self._claims_and_exceptions()
        self._remittances()

    def _claims_and_exceptions(self) -> None:
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_held AS
            SELECT c.ci, c.paid - coalesce(a.amount, 0) AS held
            FROM m_claim c LEFT JOIN (SELECT cpid, sum(amount) AS amount FROM n_alloc GROUP BY 1) a
                 ON a.cpid = c.cpid""")
        self.run("""
            INSERT INTO remit_claims
            SELECT m.cpid, r.remittance_id, c.seq, c.clp01, c.status, c.charge, c.paid, c.patient, c.pcn,
                   c.patient_name, c.n_lines, m.outcome, h.held, m.reverses
            FROM s_claim c JOIN m_claim m USING (ci) JOIN m_held h USING (ci) JOIN s_rem r ON r.st = c.st
            ORDER BY c.ci""")
        # Only the worklist's claims (denials, unmatched) need their reason codes.
        self.run("""
            CREATE OR REPLACE TEMP TABLE w_exc AS
            WITH x AS (SELECT c.ci, c.st, c.clp01, c.cpid, c.n_lines,
                              CASE c.outcome WHEN 'denied' THEN 'denial' WHEN 'unmatched' THEN 'unmatched_claim'
                                   ELSE c.outcome END AS kind,
                              CASE WHEN c.outcome = 'denied' THEN c.charge ELSE h.held END AS amount, h.held
                       FROM m_claim c JOIN m_held h USING (ci)
                       WHERE c.outcome IN ('denied', 'unmatched', 'not_our_claim', 'unmatched_reversal')),
                 codes AS (SELECT ci, string_agg(DISTINCT grp || '-' || reason, '; ' ORDER BY grp || '-' || reason)
                                      AS reason
                           FROM s_cas WHERE ci IN (SELECT ci FROM x) GROUP BY ci),
                 den AS (SELECT ci, min(invoice_id) AS invoice_id FROM (
                             SELECT ci, invoice_id FROM m_line
                             WHERE invoice_id IS NOT NULL AND ci IN (SELECT ci FROM x)
                             UNION ALL
                             SELECT ci, invoice_id FROM m_inv WHERE ci IN (SELECT ci FROM x WHERE n_lines = 0))
                         GROUP BY ci)
            SELECT format('EXC-{:06d}', nextval('exception_seq')) AS exception_id, * FROM (
                SELECT x.ci, x.kind, r.remittance_id, r.trace, r.payer_id, x.clp01, x.cpid, x.amount, x.held,
                       k.reason, d.invoice_id
                FROM x JOIN s_rem r USING (st) LEFT JOIN codes k USING (ci) LEFT JOIN den d USING (ci)
                ORDER BY x.ci)""")
        self.run(f"""
            INSERT INTO exceptions
            SELECT exception_id, kind, remittance_id, trace, payer_id, clp01, cpid, amount, held, reason,
                   invoice_id, {self.stamp} FROM w_exc""")
        self.run("""
            INSERT INTO exception_invoices
            SELECT e.exception_id, d.invoice_id, d.client_id, d.amount
            FROM w_exc e JOIN (SELECT ci, invoice_id, client_id, sum(charge) AS amount
                               FROM m_line WHERE invoice_id IS NOT NULL
                                 AND ci IN (SELECT ci FROM w_exc WHERE kind = 'denial')
                               GROUP BY ALL
                               UNION ALL
                               SELECT i.ci, i.invoice_id, i.client_id, i.fee FROM m_inv i JOIN m_claim c USING (ci)
                               WHERE c.n_lines = 0 AND c.outcome = 'denied') d USING (ci)
            WHERE e.kind = 'denial'""")

    def _remittances(self) -> None:
        self.run(f"""
            INSERT INTO remittances
            SELECT r.remittance_id, r.payer_id, r.trace, r.method, r.handling, r.amount,
                   coalesce(p.amount, 0), r.paid_on, r.file_name, r.payer_name, r.payer_identifier,
                   r.st_control, {self.stamp}, {self.user}, coalesce(h.held, 0), r.claims
            FROM s_rem r
            LEFT JOIN (SELECT st, sum(amount) AS amount FROM s_plb GROUP BY 1) p USING (st)
            LEFT JOIN (SELECT c.st, sum(h.held) AS held FROM m_claim c JOIN m_held h USING (ci) GROUP BY 1) h
                 USING (st)""")
        self.run("""
            INSERT INTO remit_plb
            SELECT r.remittance_id, p.seq, p.provider_id, p.fiscal, p.reason, nullif(p.reference, ''), p.amount
            FROM s_plb p JOIN s_rem r USING (st)""")

    def check_invariant(self) -> None:
        """Each remittance: its payments + held − PLB = BPR02, or nothing is committed."""
        bad = self.run("""
            SELECT r.remittance_id, r.amount, coalesce(p.amount, 0) + r.unmatched_amount - r.plb_amount
            FROM remittances r
            LEFT JOIN (SELECT remittance_id, sum(amount) AS amount FROM payments
                       WHERE remittance_id IN (SELECT remittance_id FROM s_rem) GROUP BY 1) p USING (remittance_id)
            WHERE r.remittance_id IN (SELECT remittance_id FROM s_rem)
              AND r.amount <> coalesce(p.amount, 0) + r.unmatched_amount - r.plb_amount""").fetchall()
        if bad:
            detail = "; ".join(f"{r[0]}: BPR02 {r[1]} but posted {r[2]}" for r in bad)
            raise RemittanceError(f"internal check failed, nothing was posted: {detail}")

    def counts(self) -> dict[str, int]:
        return dict(self.run("SELECT outcome, count(*) FROM m_claim GROUP BY 1").fetchall())

    def cleanup(self) -> None:
        for table in self.TABLES:
            self.run(f"DROP TABLE IF EXISTS {table}")
