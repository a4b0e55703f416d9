"""Match staged claims to invoices and write the ledger entries, all in set-based SQL.

Input: the temp tables of :mod:`recon.remit.stage` (``s_claim``, ``s_line``, ``s_cas``,
``s_plb``) and ``s_rem`` (one row per new remittance of the file). Output: rows in the
ledger's entry tables and in ``10_remit.sql``'s tables. Called inside the file's one
transaction; nothing here commits.

A claim posting is an *adjudication*: per line (a claim without lines: per invoice) what
one payer, acting at one priority, paid, left to the patient (PR) and adjusted. The
steps:
1. per chunk (:meth:`Poster.chunk`, depends on one claim and the invoices only): match
   claims (CLP01 = invoice id or claim id) and lines (service date + SVC06, the procedure
   as billed, else SVC01), and cut each claim into *parts*, one per line: the line's
   SVC03 and CAS plus its share of the claim-level CAS (split by line charge), so the
   parts of a claim add up to CLP04 exactly;
2. per file (:meth:`Poster.finish`): hold claims from a payer that is none of the
   client's policies, lines that matched no invoice and lines an earlier manual payment
   of the same payer already paid; match reversals to the adjudication they undo by payer
   + CLP07 (else payer + CLP01 + amounts), which they must negate exactly;
3. write the entries of the parts that post (allocations, adjustments), one payment per
   remittance and client, the adjudications, the reversals' reversing entries;
4. derive the amounts due of every invoice touched from the adjudications that stand
   (:func:`derive_dues_sql`), so the order of the files does not matter;
5. hold what could not be allocated on the remittance and check
   payments + held − PLB = BPR02 before the caller commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from recon.errors import RemittanceError
from recon.rules.eob import FORWARDED  # CLP02 19/20/21: one definition for paper EOBs and ERAs
from recon.store.sql import literal

PRIMARY = ("1", "19")


# BPR04 -> recon payment method. BOP (financial institution option) and FWT (wire)
# are electronic transfers like ACH; NON (no payment) and anything else is plain
# "insurance" (no money moved through a check or an EFT).
METHODS = {"ACH": "insurance-eft-ach", "BOP": "insurance-eft-ach", "FWT": "insurance-eft-ach", "CHK": "insurance-check"}

# Worklist kinds a posting writes (a person decides each one).
HELD_CLAIM = ("unmatched", "not_our_claim", "unmatched_reversal", "reversal_mismatch", "payer_not_on_policy")


def method_sql(column: str) -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in METHODS.items())
    return f"CASE upper({column}) {cases} ELSE 'insurance' END"


def priority_sql(status: str) -> str:
    """CLP02 -> the priority the payer acted at (1 primary, 2 secondary, 3 tertiary); 0 otherwise."""
    return (
        f"CASE WHEN {status} IN ('1', '19') THEN 1 WHEN {status} IN ('2', '20') THEN 2 "
        f"WHEN {status} IN ('3', '21') THEN 3 ELSE 0 END"
    )


MANUAL_REASON = "manual adjudication"
"""Reason prefix of the due changes a paper EOB posted by hand (or its void) makes (recon.services)."""

RANK_SQL = "CASE lower(p.priority) WHEN 'primary' THEN 1 WHEN 'secondary' THEN 2 WHEN 'tertiary' THEN 3 ELSE 9 END"


def _apportion(source: str, extra: tuple[str, ...] = (), *, targets: str = "u_tgt") -> str:
    """Split ``amount`` of each row of ``source`` over its claim's parts (``targets``) by weight.

    ``source`` has columns ``k`` (row key), ``ci``, ``amount`` and ``extra``; ``targets``
    has ``ci, ln, invoice_id, client_id, w, r, n, tw`` (weight, rank, count, total weight).
    Cents are floored for all but the last part, which gets the remainder, so the parts
    add up exactly; no float is involved. Most claims have one part: it gets it all.
    """
    inner = "".join(f"x.{c}, " for c in extra)
    outer = "".join(f"{c}, " for c in extra)
    cents = "CAST(x.amount * 100 AS HUGEINT)"
    return f"""
    SELECT ci, ln, invoice_id, client_id, {outer}
           CASE WHEN r = n THEN amt - (sum(part) OVER (PARTITION BY k) - part) ELSE part END AS amount
    FROM (
        SELECT x.k, x.ci, t.ln, t.invoice_id, t.client_id, {inner} x.amount AS amt, t.r, t.n,
               CAST(CAST(CASE WHEN t.tw = 0 THEN {cents} // t.n
                              ELSE {cents} * CAST(t.w * 100 AS HUGEINT) // CAST(t.tw * 100 AS HUGEINT) END
                         AS DECIMAL(18,0)) * CAST(0.01 AS DECIMAL(3,2)) AS DECIMAL(18,2)) AS part
        FROM {source} x JOIN {targets} t USING (ci))"""


def derive_dues_sql(*, user: str, stamp: str, reason: str = "'adjudication'", due: str = "t_due") -> str:
    """Amount-due changes that bring each invoice of ``due`` to what its standing adjudications say.

    ``due`` (a table or subquery, ``t_due`` by default: ``invoice_id, remittance_id``) names
    the invoices (and the remittance the change is booked with). Each invoice's change
    depends on that invoice's rows only, and they come out ordered by invoice id, so
    the invoices may be taken in pieces of ascending ids with the same result.

    For each: the *last* standing adjudication is the one at the highest priority (then
    the latest). Its PR is Client Amt Due, unless a later policy of the client has not
    adjudicated yet (or the payer forwarded the claim, CLP02 19/20/21) and no analyst
    billed the client: then it is due from that next payer, so Client Amt Due is 0. Ins
    Amt Due is the fee less Client Amt Due. An invoice no adjudication stands for goes
    back to its amounts as billed (with any change not made by a remittance, a billing
    decision or a manual adjudication). The result depends on the standing set only. A
    paper EOB posted by hand is a standing adjudication too (``remittance_id`` NULL; its
    changes have reason :data:`MANUAL_REASON`),
    and :func:`recon.rules.eob.client_due` is this rule for one invoice, for the preview.
    """
    return f"""
    SELECT nextval('entry_seq'), invoice_id, client_id, dc, di, remittance_id, NULL, {user}, {stamp}, {reason}
    FROM (
    WITH inv AS (SELECT i.invoice_id, i.client_id, i.fee, i.client_amt_due, i.ins_amt_due, t.remittance_id
                 FROM invoices i JOIN (SELECT invoice_id, min(remittance_id) AS remittance_id FROM {due} GROUP BY 1) t
                 USING (invoice_id)),
         per AS (SELECT a.invoice_id, a.claim_posting_id, any_value(a.payer_id) AS payer_id,
                        any_value(a.priority) AS priority, any_value(a.status) AS status,
                        sum(a.patient_resp) AS pr
                 FROM adjudications a
                 WHERE a.invoice_id IN (SELECT invoice_id FROM inv) AND a.priority > 0
                   AND a.claim_posting_id NOT IN (SELECT original FROM adjudication_reversals)
                 GROUP BY 1, 2),
         last AS (SELECT * FROM per
                  QUALIFY row_number() OVER (PARTITION BY invoice_id
                                             ORDER BY priority DESC, claim_posting_id DESC) = 1),
         later AS (SELECT l.invoice_id, count(*) AS n
                   FROM last l JOIN inv USING (invoice_id) JOIN client_insurance p ON p.client_id = inv.client_id
                   LEFT JOIN (SELECT DISTINCT invoice_id, payer_id FROM per) x
                          ON x.invoice_id = l.invoice_id AND x.payer_id = p.payer_id
                   WHERE {RANK_SQL} > l.priority AND x.payer_id IS NULL
                   GROUP BY 1),
         billed AS (SELECT DISTINCT b.invoice_id FROM billing_decisions b JOIN last l USING (invoice_id)
                    WHERE b.priority >= l.priority),
         waiting AS (SELECT l.invoice_id,
                            (l.status IN {tuple(FORWARDED)} OR later.n IS NOT NULL) AND billed.invoice_id IS NULL
                                AS waiting
                     FROM last l LEFT JOIN later USING (invoice_id) LEFT JOIN billed USING (invoice_id)),
         dues AS (SELECT d.invoice_id,
                         sum(d.client_amt_due_delta) AS c, sum(d.ins_amt_due_delta) AS i,
                         sum(d.client_amt_due_delta) FILTER (WHERE d.remittance_id IS NULL
                             AND coalesce(d.reason, '') NOT LIKE 'bill client%'
                             AND coalesce(d.reason, '') NOT LIKE '{MANUAL_REASON}%') AS bc,
                         sum(d.ins_amt_due_delta) FILTER (WHERE d.remittance_id IS NULL
                             AND coalesce(d.reason, '') NOT LIKE 'bill client%'
                             AND coalesce(d.reason, '') NOT LIKE '{MANUAL_REASON}%') AS bi
                  FROM due_changes d WHERE d.invoice_id IN (SELECT invoice_id FROM inv) GROUP BY 1),
         target AS (
             SELECT inv.*, inv.client_amt_due + coalesce(dues.c, 0) AS cur_c,
                    inv.ins_amt_due + coalesce(dues.i, 0) AS cur_i,
                    CASE WHEN last.invoice_id IS NULL THEN inv.client_amt_due + coalesce(dues.bc, 0)
                         WHEN w.waiting THEN 0 ELSE last.pr END AS tc,
                    CASE WHEN last.invoice_id IS NULL THEN inv.ins_amt_due + coalesce(dues.bi, 0) END AS ti0
             FROM inv LEFT JOIN last USING (invoice_id) LEFT JOIN waiting w USING (invoice_id)
             LEFT JOIN dues USING (invoice_id))
    SELECT invoice_id, client_id, remittance_id, CAST(tc - cur_c AS DECIMAL(18,2)) AS dc,
           CAST(coalesce(ti0, fee - tc) - cur_i AS DECIMAL(18,2)) AS di
    FROM target WHERE tc <> cur_c OR coalesce(ti0, fee - tc) <> cur_i
    ORDER BY invoice_id)"""


def derive_dues(
    con: Any, invoices: Iterable[tuple[str, str | None]], *, user_id: str, stamp: datetime, reason: str = "adjudication"
) -> int:
    """Bring ``invoices`` ((invoice id, remittance id to book it with)) to what their standing
    adjudications say (:func:`derive_dues_sql`); for the worklist's actions. Returns the rows written."""
    con.execute("CREATE OR REPLACE TEMP TABLE t_due (invoice_id VARCHAR, remittance_id VARCHAR)")
    for invoice_id, remittance_id in invoices:
        con.execute(f"INSERT INTO t_due VALUES ({literal(invoice_id)}, {literal(remittance_id)})")
    before = con.execute("SELECT count(*) FROM due_changes").fetchone()[0]
    sql = derive_dues_sql(user=literal(user_id), stamp=literal(stamp), reason=literal(reason))
    con.execute(f"INSERT INTO due_changes {sql}")
    after = con.execute("SELECT count(*) FROM due_changes").fetchone()[0]
    con.execute("DROP TABLE IF EXISTS t_due")
    return int(after - before)


EXC_COLUMNS = (
    "exception_id, kind, remittance_id, trace_number, payer_id, claim_id, claim_posting_id, amount, "
    "held_amount, reason, invoice_id, created_at, line_no, detail"
)


class Poster:
    """Runs the posting statements for one file on ``con`` (inside its transaction).

    Temp tables are kept narrow (keys and amounts): materialising a row costs about
    as much as computing it. Entry ids are drawn from ``entry_seq`` when the pending
    entries are made (``n_alloc``, ``n_adj``).
    """

    TABLES = (
        "m_inv",
        "m_line",
        "m_claim",
        "m_rev",
        "n_alloc",
        "n_adj",
        "u_tgt",
        "m_part",
        "m_pcas",
        "n_pay",
        "m_held",
        "m_hold",
        "w_exc",
        "t_due",
        "m_late",
        "m_late_rv",
    )
    base = 0
    PIECE = 100_000
    """Claims (:meth:`_by_claims`) or invoices (:meth:`_dues`) one statement of the finish takes at most;
    a 10 MB file has ~31,000 claims, so one piece; a 300 MB file a million, ten."""
    claims = 0

    def __init__(
        self, con: Any, *, user_id: str, stamp: datetime, write_off: Iterable[str], piece: int | None = None
    ) -> None:
        self.con = con
        self.piece = piece or self.PIECE
        self.user = literal(user_id)
        self.stamp = literal(stamp)
        codes = sorted(set(write_off)) or ["__none__"]
        self.write_off = "(" + ", ".join(literal(c) for c in codes) + ")"

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
            CREATE OR REPLACE TEMP TABLE m_claim (ci BIGINT, st INTEGER, cpid BIGINT, clp01 VARCHAR, status VARCHAR,
                                                  pcn VARCHAR, charge DECIMAL(18,2), paid DECIMAL(18,2),
                                                  n_lines INTEGER, outcome VARCHAR, reverses BIGINT,
                                                  detail VARCHAR);
            CREATE OR REPLACE TEMP TABLE u_tgt (ci BIGINT, ln INTEGER, invoice_id VARCHAR, client_id VARCHAR,
                                                w DECIMAL(18,2), r BIGINT, n BIGINT, tw DECIMAL(38,2));
            CREATE OR REPLACE TEMP TABLE m_part (ci BIGINT, ln INTEGER, invoice_id VARCHAR, client_id VARCHAR,
                                                 charge DECIMAL(18,2), paid DECIMAL(18,2));
            CREATE OR REPLACE TEMP TABLE m_pcas (ci BIGINT, ln INTEGER, invoice_id VARCHAR, client_id VARCHAR,
                                                 grp VARCHAR, reason VARCHAR, amount DECIMAL(18,2));
            CREATE OR REPLACE TEMP TABLE m_hold (ci BIGINT, ln INTEGER, invoice_id VARCHAR, kind VARCHAR,
                                                 detail VARCHAR);
            CREATE OR REPLACE TEMP TABLE n_alloc (id BIGINT, cpid BIGINT, st INTEGER, invoice_id VARCHAR,
                                                  client_id VARCHAR, amount DECIMAL(18,2));
            CREATE OR REPLACE TEMP TABLE n_adj (id BIGINT, cpid BIGINT, st INTEGER, invoice_id VARCHAR,
                                                client_id VARCHAR, grp VARCHAR, reason VARCHAR,
                                                amount DECIMAL(18,2), written_off BOOLEAN, reverses BIGINT);
            CREATE OR REPLACE TEMP TABLE t_due (invoice_id VARCHAR, remittance_id VARCHAR)""")

    def chunk(self, lo: int, hi: int) -> str:
        """The statements for claims ``lo < ci <= hi`` once they are staged (run by the stager).

        Everything here depends on a claim and the practice's invoices only: matching,
        the outcome as far as the claim alone decides it, the parts of posted claims,
        and the claim's lines and CAS as posted. What needs the payer or the whole file
        (policies, duplicates, reversals, entries, amounts due) waits for :meth:`finish`.
        """

        def in_chunk(alias: str = "") -> str:
            return f"{alias}ci > {int(lo)} AND {alias}ci <= {int(hi)}"

        posted = f"(SELECT * FROM m_claim WHERE outcome = 'posted' AND {in_chunk()})"
        return f"""
            -- CLP01 = invoice id or claim id: two equi-joins that carry the invoice's columns (no third
            -- pass over the invoices to fetch them)
            INSERT INTO m_inv
            SELECT ci, invoice_id, client_id, fee, service_date,
                   regexp_extract(upper(trim(service_code)), '^[A-Z0-9]+') AS code
            FROM (SELECT c.ci, i.invoice_id, i.client_id, i.fee, i.service_date, i.service_code
                  FROM s_claim c JOIN invoices i ON i.invoice_id = c.clp01
                  WHERE {in_chunk("c.")}
                  UNION
                  SELECT c.ci, i.invoice_id, i.client_id, i.fee, i.service_date, i.service_code
                  FROM s_claim c JOIN invoices i ON i.claim_id = c.clp01
                  WHERE {in_chunk("c.")});
            -- Lines pair with invoices of the same claim, date and code (SVC06 as billed, else
            -- SVC01); repeats pair in order.
            INSERT INTO m_line
            WITH l AS (SELECT ci, ln, coalesce(nullif(billed, ''), code) AS code, service_date, charge, paid,
                              row_number() OVER (PARTITION BY ci, coalesce(nullif(billed, ''), code), service_date
                                                 ORDER BY ln) AS k
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
            SELECT c.ci, c.st, {self.base} + c.ci AS cpid, c.clp01, c.status, c.pcn, c.charge, c.paid, c.n_lines,
                   CASE WHEN c.status = '22' THEN 'reversal'
                        WHEN c.status = '4' THEN 'denied'
                        WHEN c.status = '23' THEN 'not_our_claim'
                        WHEN coalesce(ninv.n, 0) = 0 THEN 'unmatched'
                        WHEN c.n_lines > 0 AND coalesce(nl.matched, 0) = 0 THEN 'unmatched'
                        ELSE 'posted' END AS outcome,
                   CAST(NULL AS BIGINT) AS reverses, CAST(NULL AS VARCHAR) AS detail
            FROM s_claim c LEFT JOIN ninv USING (ci) LEFT JOIN nl USING (ci)
            WHERE {in_chunk("c.")}
            ORDER BY c.ci;
            -- a posted claim's parts: each line (matched or not), or for a claim without lines its invoices
            INSERT INTO u_tgt
            SELECT ci, ln, invoice_id, client_id, w,
                   row_number() OVER (PARTITION BY ci ORDER BY ln, invoice_id) AS r,
                   count(*) OVER (PARTITION BY ci) AS n, sum(w) OVER (PARTITION BY ci) AS tw
            FROM (SELECT l.ci, l.ln, l.invoice_id, l.client_id, l.charge AS w
                  FROM m_line l SEMI JOIN {posted} c USING (ci) WHERE {in_chunk("l.")}
                  UNION ALL
                  SELECT i.ci, 0, i.invoice_id, i.client_id, i.fee
                  FROM m_inv i JOIN {posted} c USING (ci) WHERE c.n_lines = 0);
            -- money: SVC03 plus the line's share of the claim-level difference (CLP04 − Σ SVC03)
            INSERT INTO m_part
            SELECT ci, ln, invoice_id, any_value(client_id), sum(charge), sum(amount) FROM (
                SELECT l.ci, l.ln, l.invoice_id, l.client_id, l.charge, l.paid AS amount
                FROM m_line l SEMI JOIN {posted} c USING (ci) WHERE {in_chunk("l.")}
                UNION ALL
                SELECT t.ci, t.ln, t.invoice_id, t.client_id, t.w, CAST(0 AS DECIMAL(18,2))
                FROM u_tgt t WHERE t.ln = 0 AND {in_chunk("t.")}
                UNION ALL
                SELECT ci, ln, invoice_id, client_id, CAST(0 AS DECIMAL(18,2)), amount FROM ({
            _apportion(
                f'''(SELECT c.ci AS k, c.ci, c.paid - coalesce(s.paid, 0) AS amount FROM {posted} c
                         LEFT JOIN (SELECT ci, sum(paid) AS paid FROM s_line WHERE {in_chunk()} GROUP BY ci) s
                         USING (ci) WHERE c.paid - coalesce(s.paid, 0) <> 0)'''
            )
        }))
            GROUP BY ci, ln, invoice_id;
            INSERT INTO m_pcas
            SELECT l.ci, l.ln, l.invoice_id, l.client_id, a.grp, a.reason, a.amount
            FROM s_cas a JOIN m_line l ON l.ci = a.ci AND l.ln = a.ln SEMI JOIN {posted} c ON c.ci = a.ci
            WHERE {in_chunk("a.")} AND {in_chunk("l.")} AND a.amount <> 0
            UNION ALL
            SELECT ci, ln, invoice_id, client_id, grp, reason, amount FROM ({
            _apportion(
                f"(SELECT a.k, a.ci, a.grp, a.reason, a.amount FROM s_cas a SEMI JOIN {posted} c USING (ci) "
                f"WHERE a.ln = 0 AND a.amount <> 0 AND {in_chunk('a.')})",
                ("grp", "reason"),
            )
        })
            WHERE amount <> 0;
            INSERT INTO remit_lines
            SELECT {self.base} + l.ci, l.ln, l.code, nullif(l.modifiers, ''), l.charge, l.paid, l.units,
                   l.service_date, m.invoice_id
            FROM s_line l JOIN m_line m USING (ci, ln)
            WHERE {in_chunk("l.")} AND {in_chunk("m.")}
            ORDER BY l.ci, l.ln;
            INSERT INTO remit_cas SELECT {self.base} + ci, ln, grp, reason, amount
            FROM s_cas WHERE {in_chunk()} ORDER BY k"""

    def finish(self) -> None:
        """Everything that needs the payer or the whole file, once every chunk is staged."""
        row = self.run("SELECT coalesce(max(ci), 0) FROM m_claim").fetchone()
        self.claims = int(row[0]) if row else 0
        self.holds()
        self.reversals()
        self.entries()
        self.write()

    def holds(self) -> None:
        """Hold claims from a payer none of the client's policies names, lines that matched no
        invoice, and lines an earlier manual payment of the same payer already paid."""
        # The claims held are found first; only their clients' policies are listed (listing every
        # client's policies took ~2 s a file on a 250,000-client practice).
        self.run("""
            UPDATE m_claim SET outcome = 'payer_not_on_policy', detail = x.detail
            FROM (WITH bad AS (SELECT p.ci, p.client_id, r.payer_id
                               FROM m_part p JOIN m_claim c USING (ci) JOIN s_rem r USING (st)
                               WHERE c.outcome = 'posted' AND p.invoice_id IS NOT NULL
                                 AND NOT EXISTS (SELECT 1 FROM client_insurance i
                                                 WHERE i.client_id = p.client_id AND i.payer_id = r.payer_id)),
                       pol AS (SELECT client_id, string_agg(payer_id || ' ' || priority, ', ' ORDER BY priority) AS list
                               FROM client_insurance WHERE client_id IN (SELECT client_id FROM bad) GROUP BY 1)
                  SELECT b.ci, 'payer ' || any_value(b.payer_id) || ' is not a policy of client '
                               || string_agg(DISTINCT b.client_id, ', ') || ' (its policies: '
                               || coalesce(any_value(pol.list), 'none') || ')' AS detail
                  FROM bad b LEFT JOIN pol USING (client_id)
                  GROUP BY b.ci) x
            WHERE m_claim.ci = x.ci""")
        self.run("""
            INSERT INTO m_hold
            SELECT p.ci, p.ln, NULL, 'unmatched_line',
                   'no invoice of claim ' || c.clp01 || ' for ' || coalesce(nullif(l.billed, ''), l.code) || ' on '
                   || coalesce(CAST(l.service_date AS VARCHAR), 'no service date')
            FROM m_part p JOIN m_claim c USING (ci) JOIN s_line l ON l.ci = p.ci AND l.ln = p.ln
            WHERE c.outcome = 'posted' AND p.invoice_id IS NULL""")
        self.run("""
            INSERT INTO m_hold
            WITH hit AS (SELECT p.ci, p.ln, p.invoice_id, r.payer_id FROM m_part p JOIN m_claim c USING (ci)
                         JOIN s_rem r USING (st) WHERE c.outcome = 'posted' AND p.invoice_id IS NOT NULL),
                 manual AS (SELECT a.invoice_id, y.payer_id, sum(a.amount) AS amount,
                                   string_agg(DISTINCT y.payment_id, ', ') AS payments
                            FROM allocations a JOIN payments y USING (payment_id)
                            WHERE a.invoice_id IN (SELECT invoice_id FROM hit) AND y.remittance_id IS NULL
                              AND y.kind = 'insurance' AND a.kind = 'insurance'
                            GROUP BY 1, 2 HAVING sum(a.amount) > 0)
            SELECT h.ci, h.ln, h.invoice_id, 'possible_duplicate',
                   'invoice ' || h.invoice_id || ' already has manual payment(s) ' || m.payments || ' of '
                   || CAST(m.amount AS VARCHAR) || ' from ' || h.payer_id
            FROM hit h JOIN manual m ON m.invoice_id = h.invoice_id AND m.payer_id = h.payer_id""")

    def reversals(self) -> None:
        """Match each reversal to the adjudication it undoes: payer + CLP07, else (no posting of the
        payer has that CLP07, or the reversal has none) payer + CLP01 + amounts; it must negate it
        exactly (charge, paid, CAS by group and reason).

        An exact match not yet reversed is linked; a candidate that differs (or was already
        reversed) makes a ``reversal_mismatch``; none at all an ``unmatched_reversal`` (its
        original may come later, and is then linked, :meth:`late_links`). Lookups in the
        ledger are restricted to this file's reversals' claim ids and CLP07s.
        """
        row = self.run("SELECT count(*) FROM m_claim WHERE outcome = 'reversal'").fetchone()
        if not row or not row[0]:
            return
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_rev AS
            WITH rv AS (SELECT c.ci, c.clp01, c.pcn, c.charge, c.paid, r.payer_id,
                               coalesce((SELECT string_agg(grp || '-' || reason || '=' || CAST(-amt AS VARCHAR), ';'
                                                           ORDER BY grp, reason)
                                         FROM (SELECT grp, reason, sum(amount) AS amt FROM s_cas a
                                               WHERE a.ci = c.ci GROUP BY ALL HAVING sum(amount) <> 0)), '') AS sig
                        FROM m_claim c JOIN s_rem r USING (st) WHERE c.outcome = 'reversal'),
                 -- candidates by CLP07 or by CLP01: two equi-joins, not one join on an OR (which
                 -- compares every reversal with every claim the ledger ever posted)
                 -- (each carries the posting's columns: the ledger's claims are read once per key)
                 pairs AS (SELECT rv.ci, rc.claim_posting_id, rc.remittance_id, rc.charge, rc.paid, rc.payer_control,
                                  rc.outcome, rc.status
                           FROM rv JOIN remit_claims rc ON rc.payer_control = rv.pcn
                           WHERE rv.pcn <> ''
                           UNION
                           SELECT rv.ci, rc.claim_posting_id, rc.remittance_id, rc.charge, rc.paid, rc.payer_control,
                                  rc.outcome, rc.status
                           FROM rv JOIN remit_claims rc ON rc.claim_id = rv.clp01),
                 -- the candidates' CAS by group and reason, for the candidates only
                 osig AS (SELECT claim_posting_id,
                                 string_agg(grp || '-' || reason || '=' || CAST(amt AS VARCHAR), ';'
                                            ORDER BY grp, reason) AS sig
                          FROM (SELECT claim_posting_id, group_code AS grp, reason_code AS reason, sum(amount) AS amt
                                FROM remit_cas WHERE claim_posting_id IN (SELECT claim_posting_id FROM pairs)
                                GROUP BY ALL HAVING sum(amount) <> 0)
                          GROUP BY 1),
                 cand AS (SELECT rv.ci, rc.claim_posting_id AS original, rc.charge, rc.paid,
                                 rv.pcn <> '' AND rc.payer_control = rv.pcn AS by_pcn,
                                 rc.claim_posting_id IN (SELECT original FROM adjudication_reversals)
                                 OR rc.claim_posting_id IN (SELECT reverses FROM remit_claims
                                                            WHERE reverses IS NOT NULL) AS taken,
                                 rc.charge = -rv.charge AND rc.paid = -rv.paid
                                 AND coalesce(osig.sig, '') = rv.sig AS exact
                          FROM pairs rc
                          JOIN rv USING (ci)
                          JOIN remittances r ON r.remittance_id = rc.remittance_id AND r.payer_id = rv.payer_id
                          LEFT JOIN osig USING (claim_posting_id)
                          WHERE (rc.outcome IN ('posted', 'denied', 'unmatched', 'payer_not_on_policy')
                                 OR EXISTS (SELECT 1 FROM exceptions e JOIN exception_actions a USING (exception_id)
                                            WHERE a.action = 'matched' AND e.claim_posting_id = rc.claim_posting_id
                                              AND rc.status <> '22'))),
                 -- CLP07 decides when some posting of the payer has it; else CLP01 + the amounts: then
                 -- a posting that differs is no evidence against (its original may come later)
                 rel AS (SELECT cand.* FROM cand JOIN rv USING (ci)
                         WHERE by_pcn OR (NOT EXISTS (SELECT 1 FROM cand c2 WHERE c2.ci = cand.ci AND c2.by_pcn)
                                          AND (rv.pcn = '' OR exact))),
                 pick AS (SELECT ci, original FROM rel WHERE exact AND NOT taken
                          QUALIFY row_number() OVER (PARTITION BY ci ORDER BY by_pcn DESC, original DESC) = 1)
            SELECT rv.ci, p.original,
                   CASE WHEN p.original IS NOT NULL THEN NULL
                        ELSE (SELECT 'the reversal (charge ' || CAST(rv.charge AS VARCHAR) || ', paid '
                                     || CAST(rv.paid AS VARCHAR) || ') does not negate '
                                     || string_agg('claim posting ' || CAST(original AS VARCHAR) || ' (charge '
                                                   || CAST(charge AS VARCHAR) || ', paid ' || CAST(paid AS VARCHAR)
                                                   || CASE WHEN taken THEN ', already reversed' ELSE '' END || ')',
                                                   '; ' ORDER BY original)
                              FROM rel WHERE rel.ci = rv.ci) END AS detail
            FROM rv LEFT JOIN (SELECT * FROM pick QUALIFY row_number() OVER (PARTITION BY original ORDER BY ci) = 1) p
                 USING (ci)""")
        self.run("UPDATE m_claim SET reverses = v.original, detail = v.detail FROM m_rev v WHERE m_claim.ci = v.ci")
        self.run("""UPDATE m_claim SET outcome = CASE WHEN detail IS NULL THEN 'unmatched_reversal'
                                                      ELSE 'reversal_mismatch' END
                    WHERE outcome = 'reversal' AND reverses IS NULL""")
        entries = """(SELECT c.cpid, c.st, e.entry_id FROM m_claim c
                      JOIN remit_entries e ON e.claim_posting_id = c.reverses AND e.entry_kind = '{kind}'
                      WHERE e.claim_posting_id IN (SELECT reverses FROM m_claim WHERE reverses IS NOT NULL))"""
        self.run(f"""
            INSERT INTO n_alloc
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, a.invoice_id, a.client_id, -a.amount
                FROM {entries.format(kind="allocation")} c JOIN allocations a ON a.allocation_id = c.entry_id
                ORDER BY c.cpid, a.invoice_id)""")
        self.run(f"""
            INSERT INTO n_adj
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, a.invoice_id, a.client_id, a.group_code, a.reason_code, -a.amount,
                       a.written_off, a.adjustment_id
                FROM {entries.format(kind="adjustment")} c JOIN adjustments a ON a.adjustment_id = c.entry_id
                ORDER BY c.cpid, a.invoice_id)""")

    def entries(self) -> None:
        """The allocations and adjustments of the parts that post (posted claims, lines not held)."""
        ok = """(SELECT p.* FROM {t} p JOIN m_claim c USING (ci)
                 WHERE c.outcome = 'posted' AND p.invoice_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM m_hold h WHERE h.ci = p.ci AND h.ln = p.ln
                                   AND h.invoice_id IS NOT DISTINCT FROM p.invoice_id))"""
        self.run(f"""
            INSERT INTO n_alloc
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, p.invoice_id, p.client_id, sum(p.paid) AS amount
                FROM {ok.format(t="m_part")} p JOIN m_claim c USING (ci)
                GROUP BY ALL HAVING sum(p.paid) <> 0
                ORDER BY c.cpid, p.invoice_id)""")
        self.run(f"""
            INSERT INTO n_adj
            SELECT nextval('entry_seq'), * FROM (
                SELECT c.cpid, c.st, p.invoice_id, p.client_id, p.grp, p.reason, sum(p.amount),
                       (p.grp || '-' || p.reason) IN {self.write_off}, NULL
                FROM {ok.format(t="m_pcas")} p JOIN m_claim c USING (ci)
                GROUP BY ALL HAVING sum(p.amount) <> 0
                ORDER BY c.cpid, p.invoice_id, p.grp, p.reason)""")

    # ------------------------------------------------------------------ writing
    def write(self) -> None:
        """Payments, entries, adjudications, claim rows, exceptions, remittances, amounts due."""
        self.run("""
            CREATE OR REPLACE TEMP TABLE n_pay AS
            SELECT st, client_id, amount, format('PAY-{:06d}', nextval('payment_seq')) AS payment_id
            FROM (SELECT st, client_id, sum(amount) AS amount FROM n_alloc GROUP BY ALL ORDER BY st, client_id)""")
        self.run(f"""
            INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on,
                                  payment_number, notes, user_id, created_at, remittance_id)
            SELECT p.payment_id, 'insurance', p.client_id, r.payer_id, {method_sql("r.method")}, p.amount,
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
        self.run("""
            INSERT INTO remit_entries
            SELECT cpid, 'allocation', id FROM n_alloc
            UNION ALL SELECT cpid, 'adjustment', id FROM n_adj""")
        self._adjudications()
        self._claims_and_exceptions()
        self._remittances()
        self.late_links()
        self._dues()

    def _adjudications(self) -> None:
        """One row per posted part: the adjudication the amounts due are derived from."""
        self._by_claims(
            lambda part: (
                f"""
            INSERT INTO adjudications
            WITH ok AS (SELECT p.* FROM m_part p JOIN m_claim c USING (ci)
                        WHERE c.outcome = 'posted' AND p.invoice_id IS NOT NULL AND {part("p.")} AND {part("c.")}
                          AND NOT EXISTS (SELECT 1 FROM m_hold h WHERE h.ci = p.ci AND h.ln = p.ln
                                   AND h.invoice_id IS NOT DISTINCT FROM p.invoice_id)),
                 cas AS (SELECT ci, ln, invoice_id,
                                sum(amount) FILTER (WHERE grp = 'PR') AS pr,
                                sum(amount) FILTER (WHERE grp <> 'PR' AND (grp || '-' || reason) IN {self.write_off})
                                    AS wo,
                                sum(amount) FILTER (WHERE grp <> 'PR'
                                                    AND (grp || '-' || reason) NOT IN {self.write_off}) AS other
                         FROM m_pcas WHERE ci IN (SELECT ci FROM ok) AND {part()} GROUP BY ALL)
            SELECT c.cpid, ok.ln, ok.invoice_id, ok.client_id, r.remittance_id, r.payer_id,
                   {priority_sql("c.status")}, c.status, nullif(c.pcn, ''), ok.charge, ok.paid,
                   coalesce(cas.pr, 0), coalesce(cas.wo, 0), coalesce(cas.other, 0), {self.stamp}
            FROM ok JOIN m_claim c USING (ci) JOIN s_rem r USING (st)
            LEFT JOIN cas ON cas.ci = ok.ci AND cas.ln = ok.ln AND cas.invoice_id = ok.invoice_id
            ORDER BY c.cpid, ok.ln, ok.invoice_id"""
            )
        )
        self.run(f"""
            INSERT INTO adjudication_reversals
            SELECT reverses, cpid, {self.stamp} FROM m_claim WHERE reverses IS NOT NULL ORDER BY cpid""")
        self.run("""
            INSERT INTO t_due
            SELECT DISTINCT a.invoice_id, r.remittance_id FROM n_alloc a JOIN s_rem r USING (st)
            UNION SELECT DISTINCT a.invoice_id, r.remittance_id FROM n_adj a JOIN s_rem r USING (st)
            UNION SELECT DISTINCT a.invoice_id, r.remittance_id FROM adjudications a
                  JOIN m_claim c ON a.claim_posting_id = c.reverses JOIN s_rem r ON r.st = c.st
                  WHERE a.claim_posting_id IN (SELECT reverses FROM m_claim WHERE reverses IS NOT NULL)""")

    def _claims_and_exceptions(self) -> None:
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_held AS
            SELECT c.ci, c.paid - coalesce(a.amount, 0) AS held
            FROM m_claim c LEFT JOIN (SELECT cpid, sum(amount) AS amount FROM n_alloc GROUP BY 1) a
                 ON a.cpid = c.cpid""")
        self._by_claims(
            lambda part: (
                f"""
            INSERT INTO remit_claims
            SELECT m.cpid, r.remittance_id, c.seq, c.clp01, c.status, c.charge, c.paid, c.patient, c.pcn,
                   c.patient_name, c.n_lines, m.outcome, h.held, m.reverses
            FROM s_claim c JOIN m_claim m USING (ci) JOIN m_held h USING (ci) JOIN s_rem r ON r.st = c.st
            WHERE {part("c.")} AND {part("m.")} AND {part("h.")}
            ORDER BY c.ci"""
            )
        )
        # Only the worklist's claims (denials, held claims and lines) need their reason codes.
        self.run(f"""
            CREATE OR REPLACE TEMP TABLE w_exc AS
            WITH x AS (SELECT c.ci, CAST(NULL AS INTEGER) AS ln, CAST(NULL AS VARCHAR) AS hinv, c.st, c.clp01,
                              c.cpid, c.n_lines,
                              CASE c.outcome WHEN 'denied' THEN 'denial' WHEN 'unmatched' THEN 'unmatched_claim'
                                   ELSE c.outcome END AS kind,
                              CASE WHEN c.outcome = 'denied' THEN c.charge ELSE h.held END AS amount, h.held,
                              c.detail
                       FROM m_claim c JOIN m_held h USING (ci)
                       WHERE c.outcome IN ('denied', {", ".join(literal(k) for k in HELD_CLAIM)})
                       UNION ALL
                       SELECT h.ci, h.ln, h.invoice_id, c.st, c.clp01, c.cpid, c.n_lines, h.kind, p.paid, p.paid,
                              h.detail || ' (line ' || CAST(h.ln AS VARCHAR) || ': charge ' || CAST(p.charge AS VARCHAR)
                              || ', paid ' || CAST(p.paid AS VARCHAR) || ')'
                       FROM m_hold h JOIN m_claim c USING (ci)
                       JOIN m_part p ON p.ci = h.ci AND p.ln = h.ln
                                    AND p.invoice_id IS NOT DISTINCT FROM h.invoice_id
                       WHERE c.outcome = 'posted'),
                 codes AS (SELECT ci, string_agg(DISTINCT grp || '-' || reason, '; ' ORDER BY grp || '-' || reason)
                                      AS reason
                           FROM s_cas WHERE ci IN (SELECT ci FROM x) GROUP BY ci),
                 den AS (SELECT ci, min(invoice_id) AS invoice_id FROM (
                             SELECT ci, invoice_id FROM m_line
                             WHERE invoice_id IS NOT NULL AND ci IN (SELECT ci FROM x)
                             UNION ALL
                             SELECT ci, invoice_id FROM m_inv WHERE ci IN (SELECT ci FROM x WHERE n_lines = 0))
                         GROUP BY ci)
            SELECT format('EXC-{{:06d}}', nextval('exception_seq')) AS exception_id, * FROM (
                SELECT x.ci, x.ln, x.kind, r.remittance_id, r.trace, r.payer_id, x.clp01, x.cpid, x.amount, x.held,
                       k.reason, CASE WHEN x.ln IS NOT NULL THEN x.hinv ELSE d.invoice_id END AS invoice_id,
                       x.detail
                FROM x JOIN s_rem r USING (st) LEFT JOIN codes k USING (ci) LEFT JOIN den d USING (ci)
                ORDER BY x.ci, x.ln NULLS FIRST)""")
        self.run(f"""
            INSERT INTO exceptions ({EXC_COLUMNS})
            SELECT exception_id, kind, remittance_id, trace, payer_id, clp01, cpid, amount, held, reason,
                   invoice_id, {self.stamp}, ln, detail FROM w_exc""")
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
        # a held line's own adjustments (its CAS and its share of the claim's), for the worklist's match
        self.run("""
            INSERT INTO exception_cas
            SELECT e.exception_id, p.grp, p.reason, sum(p.amount)
            FROM w_exc e JOIN m_pcas p ON p.ci = e.ci AND p.ln = e.ln AND p.invoice_id IS NOT DISTINCT FROM e.invoice_id
            WHERE e.ln IS NOT NULL GROUP BY ALL ORDER BY 1, 2, 3""")
        # a reversed denial or held claim is closed (the payer took it back; a repayment posts as a claim)
        row = self.run("SELECT count(*) FROM m_claim WHERE reverses IS NOT NULL").fetchone()
        if not row or not row[0]:
            return
        self.run(f"""
            INSERT INTO exception_actions
            SELECT nextval('entry_seq'), e.exception_id, 'closed', e.invoice_id, NULL,
                   'reversed by ' || r.remittance_id || ' (trace ' || r.trace || ')'
                   || coalesce('; repaid ' || (SELECT string_agg(DISTINCT rc.remittance_id, ', ')
                                              FROM remit_claims rc JOIN remittances rr USING (remittance_id)
                                              WHERE rc.claim_id = e.claim_id AND rc.outcome = 'posted'
                                                AND rr.payer_id = e.payer_id), ''),
                   {self.user}, {self.stamp}, NULL
            FROM exceptions e JOIN m_claim c ON c.reverses = e.claim_posting_id JOIN s_rem r ON r.st = c.st
            WHERE e.kind IN ('denial', 'unmatched_claim', 'payer_not_on_policy') AND NOT EXISTS (
                SELECT 1 FROM exception_actions a WHERE a.exception_id = e.exception_id
                  AND a.action NOT IN ('note', 'appeal'))""")

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
        # A PLB naming a claim (WO recovery, FB forward balance, L6 interest with a claim number) is
        # linked to the claim posting it names (CLP07, else CLP01, same payer; the latest) and listed
        # for follow-up. The postings are looked up for the file's references only, by two equi-joins
        # (a lateral look-up per PLB compared each with every claim the ledger ever posted).
        self.run(f"""
            INSERT INTO exceptions ({EXC_COLUMNS})
            WITH refs AS (SELECT DISTINCT p.reference, r.payer_id FROM s_plb p JOIN s_rem r USING (st)
                          WHERE upper(p.reason) IN ('WO', 'FB', 'L6') AND coalesce(p.reference, '') <> ''),
                 hits AS (SELECT f.reference, f.payer_id, c.claim_posting_id, c.remittance_id, c.paid,
                                 c.payer_control = f.reference AS by_pcn
                          FROM refs f JOIN remit_claims c ON c.payer_control = f.reference
                          UNION ALL
                          SELECT f.reference, f.payer_id, c.claim_posting_id, c.remittance_id, c.paid,
                                 c.payer_control = f.reference AS by_pcn
                          FROM refs f JOIN remit_claims c ON c.claim_id = f.reference),
                 pick AS (SELECT h.reference, h.payer_id, h.claim_posting_id AS cpid, h.paid
                          FROM hits h JOIN remittances x ON x.remittance_id = h.remittance_id
                                                        AND x.payer_id = h.payer_id
                          QUALIFY row_number() OVER (PARTITION BY h.reference, h.payer_id
                                                     ORDER BY h.by_pcn DESC, h.claim_posting_id DESC) = 1),
                 named AS (SELECT k.*, (SELECT min(invoice_id) FROM adjudications a
                                        WHERE a.claim_posting_id = k.cpid) AS invoice_id
                           FROM pick k)
            SELECT format('EXC-{{:06d}}', nextval('exception_seq')), 'recoupment', r.remittance_id, r.trace,
                   r.payer_id, p.reference, coalesce(rc.cpid, 0), p.amount, CAST(0 AS DECIMAL(18,2)),
                   p.reason, rc.invoice_id, {self.stamp}, NULL,
                   'PLB ' || p.reason || ' ' || CAST(p.amount AS VARCHAR) || ' names claim ' || p.reference
                   || coalesce(' (claim posting ' || CAST(rc.cpid AS VARCHAR) || ', paid '
                               || CAST(rc.paid AS VARCHAR) || ')', ' (no posted claim of this payer has it)')
            FROM s_plb p JOIN s_rem r USING (st)
            LEFT JOIN named rc ON rc.reference = p.reference AND rc.payer_id = r.payer_id
            WHERE upper(p.reason) IN ('WO', 'FB', 'L6') AND coalesce(p.reference, '') <> ''
            ORDER BY p.st, p.seq""")

    def late_links(self) -> None:
        """Link a reversal that came before its original (an open ``unmatched_reversal`` or
        ``reversal_mismatch``) to the original posted now, when it negates it exactly.

        The reversal's remittance gets a payment of the negated money (its held money is
        matched by it), the original's entries are reversed, and the link is recorded, as
        if the two had come in the other order.
        """
        # The open reversals that could pair with a claim posted now: by CLP07 when the reversal has
        # one, else by CLP01. Only the reversal claims (CLP02 22) with one of this file's keys are
        # read; joining every open reversal to the ledger's claims cost ~0.1 s a file once tens of
        # thousands were open.
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_late_rv AS
            WITH posted AS (SELECT c.pcn, c.clp01 FROM m_claim c WHERE c.outcome = 'posted'),
                 rc AS (SELECT rc.claim_posting_id, rc.claim_id, coalesce(rc.payer_control, '') AS pcn, rc.charge,
                               rc.paid
                        FROM remit_claims rc
                        WHERE rc.status = '22'
                          AND (rc.payer_control IN (SELECT pcn FROM posted WHERE pcn <> '')
                               OR (coalesce(rc.payer_control, '') = '' AND rc.claim_id IN (SELECT clp01 FROM posted))))
            SELECT e.exception_id, e.claim_posting_id AS rcpid, e.remittance_id, e.payer_id, rc.claim_id, rc.pcn,
                   rc.charge, rc.paid
            FROM exceptions e JOIN rc ON rc.claim_posting_id = e.claim_posting_id
            WHERE e.kind IN ('unmatched_reversal', 'reversal_mismatch')
              AND NOT EXISTS (SELECT 1 FROM exception_actions a
                              WHERE a.exception_id = e.exception_id AND a.action <> 'note')
              AND e.claim_posting_id NOT IN (SELECT reversal FROM adjudication_reversals)""")
        row = self.run("SELECT count(*) FROM m_late_rv").fetchone()
        if not row or not row[0]:
            return
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_late AS
            WITH rv AS (SELECT * FROM m_late_rv),
                 posted AS (SELECT c.cpid, c.pcn, c.clp01, c.charge, c.paid, r.payer_id
                            FROM m_claim c JOIN s_rem r USING (st)
                            WHERE c.outcome = 'posted' AND c.cpid NOT IN (SELECT original FROM adjudication_reversals)),
                 -- by CLP07 when the reversal has one, else by CLP01: two equi-joins, not one join on an
                 -- OR (which compared every open reversal with every claim of the file)
                 pair AS (SELECT rv.*, c.cpid AS original
                          FROM rv JOIN posted c ON c.pcn = rv.pcn AND c.payer_id = rv.payer_id
                          WHERE rv.pcn <> '' AND c.charge = -rv.charge AND c.paid = -rv.paid
                          UNION ALL
                          SELECT rv.*, c.cpid AS original
                          FROM rv JOIN posted c ON c.clp01 = rv.claim_id AND c.payer_id = rv.payer_id
                          WHERE rv.pcn = '' AND c.charge = -rv.charge AND c.paid = -rv.paid),
                 sig AS (SELECT claim_posting_id AS cpid,
                                string_agg(grp || '-' || reason || '=' || CAST(amt AS VARCHAR), ';'
                                           ORDER BY grp, reason) AS pos,
                                string_agg(grp || '-' || reason || '=' || CAST(-amt AS VARCHAR), ';'
                                           ORDER BY grp, reason) AS neg
                         FROM (SELECT claim_posting_id, group_code AS grp, reason_code AS reason, sum(amount) AS amt
                               FROM remit_cas WHERE claim_posting_id IN (SELECT original FROM pair UNION
                                                                         SELECT rcpid FROM pair)
                               GROUP BY ALL HAVING sum(amount) <> 0)
                         GROUP BY 1)
            SELECT * FROM (
                SELECT p.exception_id, p.rcpid, p.remittance_id, p.original,
                       row_number() OVER (PARTITION BY p.original ORDER BY p.rcpid) AS k1,
                       row_number() OVER (PARTITION BY p.rcpid ORDER BY p.original DESC) AS k2
                FROM pair p LEFT JOIN sig so ON so.cpid = p.original LEFT JOIN sig sr ON sr.cpid = p.rcpid
                WHERE coalesce(so.pos, '') = coalesce(sr.neg, ''))
            WHERE k1 = 1 AND k2 = 1""")
        row = self.run("SELECT count(*) FROM m_late").fetchone()
        if not row or not row[0]:
            return
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_late_alloc AS
            SELECT l.exception_id, l.rcpid, l.remittance_id, a.invoice_id, a.client_id, -a.amount AS amount,
                   nextval('entry_seq') AS id
            FROM m_late l JOIN remit_entries e ON e.claim_posting_id = l.original AND e.entry_kind = 'allocation'
            JOIN allocations a ON a.allocation_id = e.entry_id ORDER BY l.rcpid, a.invoice_id""")
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_late_pay AS
            SELECT remittance_id, client_id, amount, format('PAY-{:06d}', nextval('payment_seq')) AS payment_id
            FROM (SELECT remittance_id, client_id, sum(amount) AS amount FROM m_late_alloc GROUP BY ALL
                  ORDER BY remittance_id, client_id)""")
        self.run(f"""
            INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on,
                                  payment_number, notes, user_id, created_at, remittance_id)
            SELECT p.payment_id, 'insurance', p.client_id, r.payer_id, {method_sql("r.payment_method")}, p.amount,
                   coalesce(r.paid_on, CAST({self.stamp} AS DATE)), r.trace_number,
                   'ERA reversal linked to its original', {self.user}, {self.stamp}, r.remittance_id
            FROM m_late_pay p JOIN remittances r USING (remittance_id) ORDER BY p.payment_id""")
        self.run(f"""
            INSERT INTO allocations
            SELECT a.id, p.payment_id, a.invoice_id, a.client_id, 'insurance', a.amount, {self.stamp}
            FROM m_late_alloc a JOIN m_late_pay p USING (remittance_id, client_id) ORDER BY a.id""")
        self.run("""INSERT INTO remit_entries SELECT rcpid, 'allocation', id FROM m_late_alloc""")
        self.run("""
            CREATE OR REPLACE TEMP TABLE m_late_adj AS
            SELECT nextval('entry_seq') AS id, l.rcpid, l.remittance_id, a.invoice_id, a.client_id,
                   a.group_code, a.reason_code, -a.amount AS amount, a.written_off, a.adjustment_id
            FROM m_late l JOIN remit_entries e ON e.claim_posting_id = l.original AND e.entry_kind = 'adjustment'
            JOIN adjustments a ON a.adjustment_id = e.entry_id ORDER BY l.rcpid, a.adjustment_id""")
        self.run(f"""
            INSERT INTO adjustments
            SELECT x.id, x.invoice_id, x.client_id, p.payment_id, x.remittance_id, x.group_code, x.reason_code,
                   x.amount, x.written_off, x.adjustment_id, {self.user}, {self.stamp}, NULL
            FROM m_late_adj x LEFT JOIN m_late_pay p USING (remittance_id, client_id) ORDER BY x.id""")
        self.run("INSERT INTO remit_entries SELECT rcpid, 'adjustment', id FROM m_late_adj")
        self.run(f"INSERT INTO adjudication_reversals SELECT original, rcpid, {self.stamp} FROM m_late")
        self.run(f"""
            INSERT INTO exception_actions
            SELECT nextval('entry_seq'), l.exception_id, 'matched', NULL,
                   CAST(coalesce((SELECT sum(amount) FROM m_late_alloc a WHERE a.rcpid = l.rcpid), 0)
                        AS DECIMAL(18,2)),
                   'linked to its original, claim posting ' || CAST(l.original AS VARCHAR) || ', posted later',
                   {self.user}, {self.stamp},
                   (SELECT min(payment_id) FROM m_late_pay p WHERE p.remittance_id = l.remittance_id)
            FROM m_late l ORDER BY l.rcpid""")
        self.run("""INSERT INTO t_due SELECT DISTINCT a.invoice_id, l.remittance_id
                    FROM m_late l JOIN adjudications a ON a.claim_posting_id = l.original""")
        self.run("DROP TABLE IF EXISTS m_late_alloc; DROP TABLE IF EXISTS m_late_pay; DROP TABLE IF EXISTS m_late_adj")

    def _by_claims(self, statement: Callable[[Callable[..., str]], str]) -> None:
        """Run ``statement(part)`` for pieces of at most :attr:`piece` claims, in file order.

        ``part(alias)`` is the piece's condition on ``alias.ci``. For a statement whose rows
        each depend on one claim and come out in claim order (no file-wide total), the
        pieces write exactly the rows, in the order, one statement over the file would;
        each needs a piece's memory instead of the file's.
        """
        for lo in range(0, max(self.claims, 1), self.piece):
            hi = lo + self.piece
            self.run(statement(lambda alias="", lo=lo, hi=hi: f"{alias}ci > {lo} AND {alias}ci <= {hi}"))

    def _dues(self) -> None:
        """Amounts due of every invoice touched, from its standing adjudications.

        A credit balance this leaves (paid + adjusted + client due above the fee) is the
        worklist's ``overpayment``, derived from the ledger (:func:`recon.reports.overpayment_worklist_sql`).

        At most :attr:`dues_piece` invoices a statement, in ascending invoice ids (each
        invoice's change is its own, and ids are drawn in invoice order either way): over
        a million invoices in one statement DuckDB ran out of a 150 MB limit, which its
        windows and hash tables there cannot spill below.
        """
        row = self.run("SELECT count(DISTINCT invoice_id) FROM t_due").fetchone()
        total = int(row[0]) if row else 0
        if total <= self.piece:
            self.run(f"INSERT INTO due_changes {derive_dues_sql(user=self.user, stamp=self.stamp)}")
            return
        low: str | None = None
        while True:
            after = "TRUE" if low is None else f"invoice_id > {literal(low)}"
            row = self.run(f"""SELECT max(invoice_id) FROM (
                                   SELECT DISTINCT invoice_id FROM t_due WHERE {after}
                                   ORDER BY invoice_id LIMIT {int(self.piece)})""").fetchone()
            high = row[0] if row else None
            if high is None:
                return
            piece = f"(SELECT * FROM t_due WHERE {after} AND invoice_id <= {literal(high)})"
            self.run(f"INSERT INTO due_changes {derive_dues_sql(user=self.user, stamp=self.stamp, due=piece)}")
            low = high

    def check_invariant(self) -> None:
        """Each remittance: its payments + held − matched − PLB = BPR02, or nothing is committed.

        ``matched``: held money a later action (here: a late-linked reversal) turned into a payment.
        """
        bad = self.run("""
            WITH m AS (SELECT e.remittance_id, sum(a.amount) AS amount
                       FROM exception_actions a JOIN exceptions e USING (exception_id)
                       WHERE a.action = 'matched' AND e.remittance_id IN (SELECT remittance_id FROM s_rem)
                       GROUP BY 1)
            SELECT r.remittance_id, r.amount,
                   coalesce(p.amount, 0) + r.unmatched_amount - coalesce(m.amount, 0) - r.plb_amount
            FROM remittances r
            LEFT JOIN (SELECT remittance_id, sum(amount) AS amount FROM payments
                       WHERE remittance_id IN (SELECT remittance_id FROM s_rem UNION
                                               SELECT remittance_id FROM t_due) GROUP BY 1) p USING (remittance_id)
            LEFT JOIN m USING (remittance_id)
            WHERE r.remittance_id IN (SELECT remittance_id FROM s_rem)
              AND r.amount <> coalesce(p.amount, 0) + r.unmatched_amount - coalesce(m.amount, 0)
                               - r.plb_amount""").fetchall()
        if bad:
            detail = "; ".join(f"{r[0]}: BPR02 {r[1]} but posted {r[2]}" for r in bad)
            raise RemittanceError(f"internal check failed, nothing was posted: {detail}")

    def counts(self) -> dict[str, int]:
        return dict(self.run("SELECT outcome, count(*) FROM m_claim GROUP BY 1").fetchall())

    def cleanup(self) -> None:
        for table in self.TABLES:
            self.run(f"DROP TABLE IF EXISTS {table}")
