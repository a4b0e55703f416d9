"""Reports a billing lead reads: A/R aging by payer, payments by method and payer,
unapplied credit by client — SQL over the ledger, returned as exact DataFrames.

Every money column stays DECIMAL(18,2) (a pandas ``ArrowDtype`` decimal), because
these tables are read against bank statements and must add up to the cent. The
plot helpers are the one place amounts become floats: a bar's height is not money,
and each such line is marked ``# not money: plotting``.

All aggregation happens in DuckDB (set-based), so a practice with hundreds of
thousands of invoices reports as quickly as the demo.
"""

from __future__ import annotations

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
    """
    as_of = as_of or date.today()
    sql = f"""
    WITH l AS ({queries.ledger_sql()}),
    open_items AS (
        SELECT payer_id,
               ins_amt_due - ins_amt_paid - ins_adjusted AS ins_open,
               client_amt_due - client_amt_paid AS client_open,
               date_diff('day', service_date, CAST($as_of AS DATE)) AS age
        FROM l WHERE service_date <= CAST($as_of AS DATE)),
    items AS (
        SELECT 'insurance' AS responsibility, payer_id, ins_open AS amount, age
        FROM open_items WHERE ins_open <> 0
        UNION ALL
        SELECT 'client', NULL, client_open, age FROM open_items WHERE client_open <> 0)
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
           count(*) AS invoices
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
