"""Reports a billing lead reads: A/R aging by payer, payments by method and payer,
unapplied credit by client, credit balances — SQL over the ledger, returned as exact DataFrames.

Every money column stays DECIMAL(18,2) (a pandas ``ArrowDtype`` decimal), because
these tables are read against bank statements and must add up to the cent. The
plot helpers are the one place amounts become floats: a bar's height is not money,
and each such line is marked ``# not money: plotting``.

All aggregation happens in DuckDB (set-based), so a practice with hundreds of
thousands of invoices reports as quickly as the demo.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from recon.model import PaymentMethod
from recon.store import queries

AGING_BUCKETS = ("days_0_30", "days_31_60", "days_61_90", "days_over_90")
"""Aging columns, by days from service date: 0–30, 31–60, 61–90, 90+."""

BUCKET_LABELS = {
    "days_0_30": "0–30",
    "days_31_60": "31–60",
    "days_61_90": "61–90",
    "days_over_90": "90+",
}


def _method_label_sql(column: str) -> str:
    """SQL turning a stored method value into the label the form shows."""
    cases = " ".join(f"WHEN '{m.value}' THEN '{m.label}'" for m in PaymentMethod)
    return f"CASE {column} {cases} ELSE {column} END"


def ar_aging(recon: Any, as_of: date | None = None) -> Any:
    """A/R aging by payer as of ``as_of`` (default today).

    One row per insurance provider with open Ins Amt Due (``responsibility``
    'insurance'), and one row 'Clients' for the open Client Amt Due
    (``responsibility`` 'client'). Age is days from the service date to ``as_of``;
    invoices with a later service date are left out. Open amounts are the ledger
    as it stands now (payments recorded after ``as_of`` count as paid).

    Only amounts still owed are aged: an overpaid side of an invoice (a negative open
    amount) is a credit balance, listed by :func:`credit_balances`, never netted into
    a bucket where it would hide both the credit and the money still owed.
    """
    as_of = as_of or date.today()
    # The open amounts of queries.ledger_sql, derived here without its per-invoice columns and sort: on a
    # 10-million-invoice ledger those cost seconds (docs/benchmarks.md). Each entry moves one side of its
    # invoice (a due change both); one join adds those moves to the amounts billed; only then is an
    # invoice's open side kept when it is owed (> 0), summed per payer and service date, and aged per day.
    sql = """
    WITH moves AS (
        SELECT invoice_id, sum(c)::DECIMAL(18,2) AS c, sum(i)::DECIMAL(18,2) AS i
        FROM (
            SELECT invoice_id, client_amt_due_delta AS c, ins_amt_due_delta AS i FROM due_changes
            UNION ALL
            SELECT invoice_id,
                   CASE WHEN kind = 'client' THEN -amount ELSE 0 END,
                   CASE WHEN kind = 'insurance' THEN -amount ELSE 0 END
            FROM allocations
            UNION ALL
            SELECT invoice_id, 0, -amount FROM adjustments WHERE written_off)
        GROUP BY invoice_id),
    open_items AS (
        SELECT inv.payer_id, inv.service_date,
               inv.ins_amt_due + coalesce(m.i, 0) AS ins_open,
               inv.client_amt_due + coalesce(m.c, 0) AS client_open
        FROM invoices inv LEFT JOIN moves m USING (invoice_id)
        WHERE inv.service_date <= CAST($as_of AS DATE)),
    per_day AS (
        SELECT payer_id, date_diff('day', service_date, CAST($as_of AS DATE)) AS age,
               sum(ins_open) FILTER (WHERE ins_open > 0) AS ins_amount,
               count(*) FILTER (WHERE ins_open > 0) AS ins_count,
               sum(client_open) FILTER (WHERE client_open > 0) AS client_amount,
               count(*) FILTER (WHERE client_open > 0) AS client_count
        FROM open_items GROUP BY payer_id, service_date),
    items AS (
        SELECT 'insurance' AS responsibility, payer_id, ins_amount AS amount, ins_count AS n, age
        FROM per_day WHERE ins_count > 0
        UNION ALL
        SELECT 'client', NULL, client_amount, client_count, age FROM per_day WHERE client_count > 0)
    SELECT i.responsibility, i.payer_id,
           CASE WHEN i.responsibility = 'client' THEN 'Clients'
                ELSE coalesce(p.name, i.payer_id, '(no payer)') END AS payer,
           CAST(coalesce(sum(amount) FILTER (WHERE age <= 30), 0) AS DECIMAL(18,2)) AS days_0_30,
           CAST(coalesce(sum(amount) FILTER (WHERE age BETWEEN 31 AND 60), 0) AS DECIMAL(18,2))
               AS days_31_60,
           CAST(coalesce(sum(amount) FILTER (WHERE age BETWEEN 61 AND 90), 0) AS DECIMAL(18,2))
               AS days_61_90,
           CAST(coalesce(sum(amount) FILTER (WHERE age > 90), 0) AS DECIMAL(18,2)) AS days_over_90,
           CAST(sum(amount) AS DECIMAL(18,2)) AS total,
           CAST(sum(n) AS BIGINT) AS invoices
    FROM items i LEFT JOIN insurance_providers p USING (payer_id)
    GROUP BY 1, 2, 3
    ORDER BY 1 DESC, 3
    """
    return recon.frame(sql.replace("$as_of", "?"), [as_of] * sql.count("$as_of"))


def payments_by_method_and_payer(recon: Any, start: date | None = None, end: date | None = None) -> Any:
    """Recorded payments (voided ones and their reversals left out) by Payment Method and payer.

    ``start``/``end`` bound the received date (inclusive). Columns: method (the
    form's label), payer_id, payer, payments, amount, applied, unapplied.
    """
    where = ["status = 'recorded'"]
    params: list[Any] = []
    if start is not None:
        where.append("received_on >= ?")
        params.append(start)
    if end is not None:
        where.append("received_on <= ?")
        params.append(end)
    sql = f"""
    SELECT {_method_label_sql("p.method")} AS method, p.payer_id,
           coalesce(ip.name, p.payer_id, '(client)') AS payer,
           count(*) AS payments,
           CAST(sum(p.amount) AS DECIMAL(18,2)) AS amount,
           CAST(sum(p.applied) AS DECIMAL(18,2)) AS applied,
           CAST(sum(p.unapplied) AS DECIMAL(18,2)) AS unapplied
    FROM ({queries.payments_sql()}) p
    LEFT JOIN insurance_providers ip USING (payer_id)
    WHERE {" AND ".join(where)}
    GROUP BY ALL
    ORDER BY method, payer
    """
    return recon.frame(sql, params)


def unapplied_credit_by_client(recon: Any) -> Any:
    """Money received but not applied to an invoice, per client and payer (never dropped).

    Voided payments net to zero with their reversals, so every payment row counts.
    Only clients with credit are listed.
    """
    sql = f"""
    SELECT p.client_id, c.first_name || ' ' || c.last_name AS client, p.payer_id,
           coalesce(ip.name, p.payer_id, '(client)') AS payer,
           count(*) FILTER (WHERE p.status = 'recorded' AND p.unapplied <> 0) AS payments,
           CAST(sum(p.unapplied) AS DECIMAL(18,2)) AS unapplied
    FROM ({queries.payments_sql()}) p
    JOIN clients c USING (client_id)
    LEFT JOIN insurance_providers ip USING (payer_id)
    GROUP BY ALL
    HAVING sum(p.unapplied) <> 0
    ORDER BY unapplied DESC, p.client_id
    """
    return recon.frame(sql)


CREDIT_BALANCE_COLUMNS = (
    "exception_id",
    "client_id",
    "client",
    "source",
    "invoice_id",
    "service_date",
    "responsibility",
    "payer_id",
    "due",
    "paid",
    "credit",
    "payments",
)
"""The columns ``recon credits`` prints as a table (csv and json carry every column)."""

OVERPAYMENT_ID = "overpayment:"
"""Worklist id prefix of a credit balance: ``overpayment:INVOICE`` (the insurer's side),
``overpayment:INVOICE:client`` and ``overpayment:payment:PAYMENT`` (unapplied credit)."""


def credit_items_sql() -> str:
    """Every credit balance standing now, one row each, with the payments behind it.

    - ``source`` 'invoice': a side of an invoice paid above what is due there (Ins Amt
      Paid + Ins Adjusted > Ins Amt Due, or Client Amt Paid > Client Amt Due). ``due``
      is what that side is owed net of write-offs, ``paid`` what was applied to it,
      ``credit`` the difference; ``payments`` lists each payment with money standing on
      that side (``PAY-1 AET 130.00``, an ERA's trace in brackets) and ``payer_id`` their
      payer(s).
    - ``source`` 'unapplied': a payment's money applied to no invoice (payment − its
      allocations − what was refunded of it). ``paid`` is the payment, ``due`` what of it
      was applied or refunded.

    Voided payments and their reversing entries net to nothing and are left out; a
    refund entry (a negative payment) is not a credit. (No ``?`` or ``$`` in this SQL:
    it is embedded in statements whose values :func:`recon.store.sql.bind` fills in.)
    """
    return f"""
    WITH l AS ({queries.ledger_sql()}),
    sides AS (
        SELECT client_id, invoice_id, service_date, claim_id, 'insurance' AS responsibility,
               CAST(ins_amt_due - ins_adjusted AS DECIMAL(18,2)) AS due, ins_amt_paid AS paid
        FROM l WHERE ins_amt_due - ins_amt_paid - ins_adjusted < 0
        UNION ALL
        SELECT client_id, invoice_id, service_date, claim_id, 'client', client_amt_due, client_amt_paid
        FROM l WHERE client_amt_due - client_amt_paid < 0),
    voids AS (  -- a voided payment and its reversing entry net to nothing
        SELECT reverses AS payment_id FROM payments WHERE reverses IS NOT NULL
        UNION ALL
        SELECT payment_id FROM payments WHERE reverses IS NOT NULL),
    src AS (
        SELECT a.invoice_id, a.kind AS responsibility, a.payment_id,
               CAST(sum(a.amount) AS DECIMAL(18,2)) AS net, max(a.created_at) AS last_at
        FROM allocations a JOIN sides s ON s.invoice_id = a.invoice_id AND s.responsibility = a.kind
        WHERE a.payment_id NOT IN (SELECT payment_id FROM voids)
        GROUP BY a.invoice_id, a.kind, a.payment_id
        HAVING sum(a.amount) > 0),
    by_side AS (
        SELECT src.invoice_id, src.responsibility,
               array_to_string(list_sort(list_distinct(list(p.payer_id))), ', ') AS payer_id,
               string_agg(src.payment_id || ' ' || coalesce(p.payer_id, 'client') || ' ' || CAST(src.net AS VARCHAR)
                          || CASE WHEN p.remittance_id IS NULL THEN ''
                                  ELSE coalesce(' (ERA trace ' || p.payment_number || ')', ' (ERA)') END,
                          '; ' ORDER BY src.last_at, src.payment_id) AS payments,
               arg_max(p.remittance_id, src.last_at) AS remittance_id,
               arg_max(p.payment_number, src.last_at) AS trace_number,
               max(src.last_at) AS created_at
        FROM src JOIN payments p USING (payment_id)
        GROUP BY src.invoice_id, src.responsibility),
    refunded AS (
        SELECT source_payment_id AS payment_id, sum(amount) AS amount FROM credit_actions
        WHERE action = 'refund' AND invoice_id IS NULL AND refund_payment_id NOT IN (SELECT payment_id FROM voids)
        GROUP BY 1),
    pay AS (
        SELECT p.*, CAST(p.unapplied - coalesce(r.amount, 0) AS DECIMAL(18,2)) AS credit
        FROM ({queries.payments_sql()}) p LEFT JOIN refunded r USING (payment_id)
        WHERE p.status = 'recorded' AND p.amount > 0),
    items AS (
        SELECT '{OVERPAYMENT_ID}' || s.invoice_id
                   || CASE s.responsibility WHEN 'client' THEN ':client' ELSE '' END AS exception_id,
               s.client_id, 'invoice' AS source, s.invoice_id, s.service_date, s.claim_id, s.responsibility,
               b.payer_id, s.due, s.paid, CAST(s.paid - s.due AS DECIMAL(18,2)) AS credit, b.payments,
               CAST(NULL AS VARCHAR) AS payment_id, b.remittance_id, b.trace_number, b.created_at
        FROM sides s LEFT JOIN by_side b USING (invoice_id, responsibility)
        UNION ALL
        SELECT '{OVERPAYMENT_ID}payment:' || payment_id, client_id, 'unapplied', NULL, received_on, NULL, kind,
               payer_id, CAST(amount - credit AS DECIMAL(18,2)), amount, credit,
               payment_id || ' ' || coalesce(payer_id, 'client') || ' ' || CAST(credit AS VARCHAR)
                   || CASE WHEN remittance_id IS NULL THEN ''
                           ELSE coalesce(' (ERA trace ' || payment_number || ')', ' (ERA)') END,
               payment_id, remittance_id, payment_number, created_at
        FROM pay WHERE credit > 0)
    SELECT i.exception_id, i.client_id, c.first_name || ' ' || c.last_name AS client,
           i.* EXCLUDE (exception_id, client_id)
    FROM items i JOIN clients c USING (client_id)
    """


def credit_balances(recon: Any, client_id: str | None = None) -> Any:
    """Credit balances apart from A/R: which invoice (or payment), how much, from which payments and payer.

    One row per overpaid invoice side and per payment with unapplied credit (see
    :func:`credit_items_sql`), each with the id of its ``overpayment`` worklist item
    (refund it to the payer or apply it to another open invoice:
    :mod:`recon.remit.worklist`). ``client_id`` narrows it to one client.
    """
    where, params = ("TRUE", []) if client_id is None else ("client_id = ?", [client_id])
    sql = f"""
    SELECT exception_id, client_id, client, source, invoice_id, service_date, responsibility, payer_id,
           due, paid, credit, payments, payment_id, remittance_id
    FROM ({credit_items_sql()}) WHERE {where}
    ORDER BY client_id, source, service_date, invoice_id, payment_id
    """
    return recon.frame(sql, params)


def overpayment_worklist_sql() -> str:
    """The worklist's ``overpayment`` items in the exceptions' shape.

    A credit balance is open while it stands; once worked down to nothing it stays
    listed as ``refunded`` or ``applied`` (its last action), with who and why.
    Columns: exception_id, kind, status, remittance_id, trace_number, payer_id,
    claim_id, amount, reason, invoice_id, created_at, resolution, resolved_by,
    resolved_at, deposit_id.
    """
    return f"""
    WITH c AS ({credit_items_sql()}),
    acted AS (
        SELECT credit_id, arg_max(action, action_id) AS action, arg_max(reason, action_id) AS reason,
               arg_max(user_id, action_id) AS user_id, max("at") AS resolved_at, min("at") AS created_at,
               any_value(invoice_id) AS invoice_id,
               array_to_string(list_sort(list_distinct(list(payer_id))), ', ') AS payer_id,
               CAST(sum(amount) AS DECIMAL(18,2)) AS amount
        FROM credit_actions GROUP BY credit_id)
    SELECT c.exception_id, 'overpayment' AS kind, 'open' AS status, c.remittance_id, c.trace_number, c.payer_id,
           c.claim_id, c.credit AS amount,
           CASE c.source
               WHEN 'invoice' THEN
                   CASE c.responsibility WHEN 'insurance' THEN 'Ins Amt Paid ' || CAST(c.paid AS VARCHAR)
                        || ' is above Ins Amt Due less Ins Adjusted ' || CAST(c.due AS VARCHAR)
                        ELSE 'Client Amt Paid ' || CAST(c.paid AS VARCHAR) || ' is above Client Amt Due '
                        || CAST(c.due AS VARCHAR) END
                   || ' on ' || c.invoice_id || ': credit ' || CAST(c.credit AS VARCHAR)
                   || coalesce(' from ' || c.payments, ' (no payment stands on it)')
               ELSE 'unapplied credit ' || CAST(c.credit AS VARCHAR) || ' of payment ' || c.payment_id || ' ('
                   || CAST(c.paid AS VARCHAR) || ' from ' || coalesce(c.payer_id, 'the client') || ')'
           END AS reason,
           c.invoice_id, coalesce(c.created_at, a.created_at) AS created_at, a.reason AS resolution,
           a.user_id AS resolved_by, a.resolved_at, CAST(NULL AS VARCHAR) AS deposit_id
    FROM c LEFT JOIN acted a ON a.credit_id = c.exception_id
    UNION ALL
    SELECT a.credit_id, 'overpayment', CASE a.action WHEN 'refund' THEN 'refunded' ELSE 'applied' END, NULL, NULL,
           a.payer_id, NULL, a.amount, 'credit of ' || CAST(a.amount AS VARCHAR) || ' worked off', a.invoice_id,
           a.created_at, a.reason, a.user_id, a.resolved_at, NULL
    FROM acted a WHERE a.credit_id NOT IN (SELECT exception_id FROM c)
    """


def export_tables(recon: Any) -> Iterator[tuple[str, Any]]:
    """The report tables an export carries beside the ledger's (exact Arrow tables)."""
    yield (
        "credit_balances",
        recon.arrow(
            f"SELECT * EXCLUDE (claim_id, trace_number, created_at) FROM ({credit_items_sql()}) "
            "ORDER BY client_id, source, service_date, invoice_id, payment_id"
        ),
    )


# ----------------------------------------------------------------- plotting
def plot_aging(aging: Any, ax: Any = None) -> Any:
    """Stacked horizontal bars: each payer's open A/R by age bucket."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * max(1, len(aging))))
    names = list(aging["payer"])
    left = [0.0] * len(names)  # not money: plotting
    colours = ("#4c9f70", "#e0b84c", "#e07b39", "#c0392b")
    for bucket, colour in zip(AGING_BUCKETS, colours, strict=True):
        heights = [float(v) for v in aging[bucket]]  # not money: plotting
        ax.barh(names, heights, left=left, color=colour, label=BUCKET_LABELS[bucket])
        left = [a + b for a, b in zip(left, heights, strict=True)]  # not money: plotting
    ax.invert_yaxis()
    ax.set_xlabel("Open balance")
    ax.set_title("A/R aging by payer (days from service date)")
    ax.legend(title="Days", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax


def plot_payments(payments: Any, ax: Any = None) -> Any:
    """Grouped bars: amount received per payer, one bar per Payment Method."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 4))
    payers = sorted(set(payments["payer"]))
    methods = sorted(set(payments["method"]))
    width = 0.8 / max(1, len(methods))
    for n, method in enumerate(methods):
        subset = payments[payments["method"] == method]
        by_payer = dict(zip(subset["payer"], subset["amount"], strict=True))
        heights = [float(by_payer.get(p, 0)) for p in payers]  # not money: plotting
        xs = [i + n * width for i in range(len(payers))]
        ax.bar(xs, heights, width=width, label=method)
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(payers))])
    ax.set_xticklabels(payers, rotation=20, ha="right")
    ax.set_ylabel("Amount received")
    ax.set_title("Payments by method and payer")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax


# ------------------------------------------------------------ ERA and bank
CARC_DESCRIPTIONS = {
    "1": "Deductible",
    "2": "Coinsurance",
    "3": "Co-payment",
    "16": "Claim lacks information or has submission/billing error(s)",
    "18": "Exact duplicate claim/service",
    "22": "May be covered by another payer (coordination of benefits)",
    "27": "Expenses incurred after coverage terminated",
    "29": "The time limit for filing has expired",
    "45": "Charge exceeds fee schedule/maximum allowable",
    "50": "Not deemed a medical necessity by the payer",
    "96": "Non-covered charge(s)",
    "97": "Included in the payment for another service already adjudicated",
    "119": "Benefit maximum for this time period has been reached",
    "197": "Precertification/authorization/notification absent",
    "204": "Service not covered under the patient's current benefit plan",
    "242": "Services not provided by network/primary care providers",
    "253": "Sequestration - reduction in federal payment",
}
"""Short descriptions of the Claim Adjustment Reason Codes a behavioral-health
practice meets most; a code not listed shows without a description."""

RECONCILIATION_STATUSES = {
    "deposits": ("matched", "amount_mismatch", "unmatched"),
    "remittances": ("reconciled", "amount_mismatch", "awaiting_deposit", "no_payment"),
}


def _carc_sql(column: str) -> str:
    quoted = {code: text.replace("'", "''") for code, text in CARC_DESCRIPTIONS.items()}
    cases = " ".join(f"WHEN '{code}' THEN '{text}'" for code, text in quoted.items())
    return f"CASE {column} {cases} END"


def denials_by_reason(recon: Any, start: date | None = None, end: date | None = None) -> Any:
    """Denied claims (CLP02 = 4) by payer and CARC reason, with what happened to them.

    A denied claim counts once under each reason code it carries (a claim denied
    CO-50 and CO-197 shows under both); ``denied_amount`` is the sum of that code's
    CAS amounts, so a row says how much money that reason held back. ``charge`` is
    the billed charge of those claims. ``open``/``appealed``/``written_off`` count
    the worklist status of those denials. ``start``/``end`` bound BPR16 (inclusive).
    """
    where = ["c.status = '4'"]
    params: list[Any] = []
    if start is not None:
        where.append("r.paid_on >= ?")
        params.append(start)
    if end is not None:
        where.append("r.paid_on <= ?")
        params.append(end)
    sql = f"""
    WITH denied AS (
        SELECT c.claim_posting_id, c.charge, r.payer_id
        FROM remit_claims c JOIN remittances r USING (remittance_id)
        WHERE {" AND ".join(where)}),
    coded AS (
        SELECT d.claim_posting_id, d.payer_id, d.charge, a.group_code, a.reason_code,
               CAST(sum(a.amount) AS DECIMAL(18,2)) AS amount
        FROM denied d JOIN remit_cas a USING (claim_posting_id)
        GROUP BY ALL),
    state AS (
        SELECT e.claim_posting_id, any_value(s.status) AS status
        FROM exceptions e JOIN exception_status s USING (exception_id)
        WHERE e.kind = 'denial' GROUP BY 1)
    SELECT x.payer_id, coalesce(p.name, x.payer_id) AS payer,
           x.group_code || '-' || x.reason_code AS carc, x.group_code, x.reason_code,
           {_carc_sql("x.reason_code")} AS description,
           count(DISTINCT x.claim_posting_id) AS claims,
           CAST(sum(x.amount) AS DECIMAL(18,2)) AS denied_amount,
           CAST(sum(x.charge) AS DECIMAL(18,2)) AS charge,
           count(*) FILTER (WHERE coalesce(s.status, 'open') = 'open') AS open,
           count(*) FILTER (WHERE s.status = 'appealed') AS appealed,
           count(*) FILTER (WHERE s.status = 'written_off') AS written_off
    FROM coded x
    LEFT JOIN state s USING (claim_posting_id)
    LEFT JOIN insurance_providers p USING (payer_id)
    GROUP BY x.payer_id, p.name, x.group_code, x.reason_code
    ORDER BY denied_amount DESC, payer, carc
    """
    return recon.frame(sql, params)


def reconciliation_status(recon: Any) -> Any:
    """How much of the money is reconciled: deposits and remittances by status.

    One row per (side, status), every status listed even when empty, so the
    table reads the same every day: ``count``, ``amount`` (the side's own amounts:
    deposit amounts, or BPR02) and ``difference`` (deposit − remittance, for the
    amount mismatches).
    """
    statuses = [(side, s) for side, values in RECONCILIATION_STATUSES.items() for s in values]
    keys = " UNION ALL ".join(
        f"SELECT '{side}' AS side, '{s}' AS status, {n} AS ord" for n, (side, s) in enumerate(statuses)
    )
    sql = f"""
    WITH k AS ({keys}),
    v AS (
        SELECT 'deposits' AS side, status, amount, difference FROM deposit_reconciliation
        UNION ALL
        SELECT 'remittances', status, amount, difference FROM remittance_reconciliation)
    SELECT k.side, k.status, count(v.status) AS count,
           CAST(coalesce(sum(v.amount), 0) AS DECIMAL(18,2)) AS amount,
           CAST(coalesce(sum(v.difference) FILTER (WHERE k.status = 'amount_mismatch'), 0) AS DECIMAL(18,2))
               AS difference
    FROM k LEFT JOIN v USING (side, status)
    GROUP BY k.side, k.status, k.ord
    ORDER BY k.ord
    """
    return recon.frame(sql)


def unmatched_deposits(recon: Any) -> Any:
    """Money in the bank that no posted remittance explains, and why (exact DataFrame)."""
    return recon.frame(
        """SELECT deposit_id, deposit_date, amount, trace_number, description, reason
           FROM deposit_reconciliation WHERE status = 'unmatched' ORDER BY deposit_date, deposit_id"""
    )


def remittances_awaiting_deposit(recon: Any, as_of: date | None = None) -> Any:
    """Posted remittances whose money has not been seen in the bank (a check not yet deposited).

    ``days_waiting`` counts from BPR16 to ``as_of`` (default today): an EFT waiting
    more than a few days is worth a call to the payer.
    """
    as_of = as_of or date.today()
    return recon.frame(
        """SELECT rr.remittance_id, rr.payer_id, coalesce(p.name, rr.payer_id) AS payer, rr.trace_number,
                  r.payment_method, rr.amount, rr.paid_on,
                  date_diff('day', rr.paid_on, CAST(? AS DATE)) AS days_waiting, r.file_name
           FROM remittance_reconciliation rr JOIN remittances r USING (remittance_id)
           LEFT JOIN insurance_providers p ON p.payer_id = rr.payer_id
           WHERE rr.status = 'awaiting_deposit'
           ORDER BY rr.paid_on, rr.remittance_id""",
        [as_of],
    )


def amount_differences(recon: Any) -> Any:
    """Deposits that matched a remittance by trace but not by amount (deposit − BPR02)."""
    return recon.frame(
        """SELECT deposit_id, deposit_date, trace_number, remittance_id, payer_id, amount AS deposit_amount,
                  remittance_amount, difference
           FROM deposit_reconciliation WHERE status = 'amount_mismatch' ORDER BY deposit_date, deposit_id"""
    )


def plot_denials(denials: Any, ax: Any = None, top: int = 12) -> Any:
    """Horizontal bars: denied amount per CARC reason, stacked by payer (the ``top`` reasons)."""
    import matplotlib.pyplot as plt

    totals: dict[str, Any] = {}
    for carc, amount in zip(denials["carc"], denials["denied_amount"], strict=True):
        totals[carc] = totals.get(carc, 0) + amount
    reasons = sorted(totals, key=lambda c: totals[c], reverse=True)[:top]
    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 0.6 + 0.4 * max(1, len(reasons))))
    left = [0.0] * len(reasons)  # not money: plotting
    for payer in sorted(set(denials["payer"])):
        subset = denials[denials["payer"] == payer]
        by_reason = dict(zip(subset["carc"], subset["denied_amount"], strict=True))
        widths = [float(by_reason.get(c, 0)) for c in reasons]  # not money: plotting
        ax.barh(reasons, widths, left=left, label=payer)
        left = [a + b for a, b in zip(left, widths, strict=True)]  # not money: plotting
    ax.invert_yaxis()
    ax.set_xlabel("Amount denied")
    ax.set_title("Denials by reason (CARC) and payer")
    if reasons:
        ax.legend(title="Payer", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax


def plot_reconciliation(status: Any, ax: Any = None) -> Any:
    """Two bars (deposits, remittances) split by reconciliation status, in amounts."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 2.6))
    colours = {
        "matched": "#4c9f70", "reconciled": "#4c9f70", "amount_mismatch": "#e0b84c",
        "unmatched": "#c0392b", "awaiting_deposit": "#e07b39", "no_payment": "#9aa5b1",
    }  # fmt: skip
    sides = list(RECONCILIATION_STATUSES)
    left = [0.0] * len(sides)  # not money: plotting
    seen: set[str] = set()
    for side_index, side in enumerate(sides):
        rows = status[status["side"] == side]
        for state, amount in zip(rows["status"], rows["amount"], strict=True):
            width = float(amount)  # not money: plotting
            label = state.replace("_", " ") if state not in seen else None
            seen.add(state)
            ax.barh([side], [width], left=[left[side_index]], color=colours.get(state, "#888"), label=label)
            left[side_index] += width  # not money: plotting
    ax.invert_yaxis()
    ax.set_xlabel("Amount")
    ax.set_title("Deposits and remittances by reconciliation status")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax
