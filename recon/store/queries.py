"""SQL over the ledger: the derived views (ledger balances, payments with applied and
unapplied) and small typed readers. Every money column stays DECIMAL(18,2)."""

from __future__ import annotations

LEDGER_COLUMNS = (
    "invoice_id",
    "service_date",
    "service_code",
    "fee",
    "client_amt_due",
    "client_amt_paid",
    "ins_amt_due",
    "ins_amt_paid",
    "ins_adjusted",
    "balance",
)


def ledger_sql(where: str = "TRUE") -> str:
    """Invoices with every ledger amount derived from the entry tables.

    ``where`` filters invoices (and, by client_id, the entry tables) so one client's
    ledger reads only that client's rows; it is built by recon, never from input.
    """
    entry_where = where.replace("client_id", "e.client_id") if "client_id" in where else "TRUE"
    return f"""
    WITH inv AS (SELECT * FROM invoices WHERE {where}),
    dc AS (
        SELECT e.invoice_id, sum(e.client_amt_due_delta) AS c, sum(e.ins_amt_due_delta) AS i
        FROM due_changes e WHERE {entry_where} GROUP BY 1),
    al AS (
        SELECT e.invoice_id,
               sum(e.amount) FILTER (WHERE e.kind = 'client') AS cp,
               sum(e.amount) FILTER (WHERE e.kind = 'insurance') AS ip
        FROM allocations e WHERE {entry_where} GROUP BY 1),
    ad AS (
        SELECT e.invoice_id, sum(e.amount) FILTER (WHERE e.written_off) AS adj
        FROM adjustments e WHERE {entry_where} GROUP BY 1),
    amounts AS (
        SELECT inv.invoice_id, inv.client_id, inv.service_date, inv.service_code, inv.units,
               inv.fee, inv.payer_id, inv.claim_id,
               CAST(inv.client_amt_due + coalesce(dc.c, 0) AS DECIMAL(18,2)) AS client_amt_due,
               CAST(coalesce(al.cp, 0) AS DECIMAL(18,2)) AS client_amt_paid,
               CAST(inv.ins_amt_due + coalesce(dc.i, 0) AS DECIMAL(18,2)) AS ins_amt_due,
               CAST(coalesce(al.ip, 0) AS DECIMAL(18,2)) AS ins_amt_paid,
               CAST(coalesce(ad.adj, 0) AS DECIMAL(18,2)) AS ins_adjusted
        FROM inv
        LEFT JOIN dc USING (invoice_id)
        LEFT JOIN al USING (invoice_id)
        LEFT JOIN ad USING (invoice_id))
    SELECT invoice_id, service_date, service_code, fee, client_amt_due, client_amt_paid,
           ins_amt_due, ins_amt_paid, ins_adjusted,
           CAST(client_amt_due - client_amt_paid + ins_amt_due - ins_amt_paid - ins_adjusted
                AS DECIMAL(18,2)) AS balance,
           client_id, payer_id, claim_id, units
    FROM amounts
    ORDER BY service_date, invoice_id
    """


CLIENT_PART, POLICY_PART, PAYER_PART = 0, 1, 2
"""What a row of :func:`client_sql` is: the client, one of their policies, or a payer (for its name)."""


def client_sql() -> str:
    """Client ``$1`` (part 0: first and last name, date of birth, co-pay), each of their policies
    (part 1: payer, member id, priority, co-pay) and every payer (part 2: payer, name).

    One statement without joins: on the 10M-invoice bench ledger a join of clients, policies
    and payers cost ~4x these three index or tiny scans in one UNION ALL.
    """
    return f"""
    SELECT {CLIENT_PART} AS part, first_name AS a, last_name AS b, NULL AS c, date_of_birth AS born, copay
    FROM clients WHERE client_id = $1
    UNION ALL
    SELECT {POLICY_PART}, payer_id, member_id, priority, NULL, copay FROM client_insurance WHERE client_id = $1
    UNION ALL
    SELECT {PAYER_PART}, payer_id, name, NULL, NULL, NULL FROM insurance_providers
    """


def client_credit_sql() -> str:
    """Client ``$1``'s unapplied credit: :func:`payments_sql`'s ``unapplied`` summed over the
    client's payments, without its per-payment join and its scan of every payment for voids
    (a voided payment and its reversal each net to what was applied of them)."""
    return """
    SELECT CAST(coalesce(sum(p.amount), 0)
                - coalesce((SELECT sum(a.amount) FROM allocations a
                            WHERE a.client_id = $1
                              AND a.payment_id IN (SELECT payment_id FROM payments WHERE client_id = $1)), 0)
                AS DECIMAL(18,2))
    FROM payments p WHERE p.client_id = $1
    """


def client_invoices_sql() -> str:
    """Client ``$1``'s invoices as billed, with the columns a Client Ledger row shows (no order)."""
    return """
    SELECT invoice_id, service_date, service_code, fee, client_amt_due, ins_amt_due, payer_id, claim_id
    FROM invoices WHERE client_id = $1
    """


def client_open_sql() -> str:
    """Client ``$1``'s invoices as planning a payment needs them: id, service date, billed payer,
    Ins Amt Due as billed (no order; the entries of :func:`client_moves_sql` move the amount)."""
    return "SELECT invoice_id, service_date, payer_id, ins_amt_due FROM invoices WHERE client_id = $1"


def client_adjudicated_sql() -> str:
    """Client ``$1``'s invoices a payer (priority above 0) adjudicated, each with the highest priority
    among its adjudications no claim posting reversed: what :func:`due_from_sql` reads, for a caller
    that ranks the payers itself."""
    return """
    SELECT invoice_id, max(priority)
    FROM adjudications a
    WHERE client_id = $1 AND priority > 0
      AND NOT EXISTS (SELECT 1 FROM adjudication_reversals r WHERE r.original = a.claim_posting_id)
    GROUP BY invoice_id
    """


def client_moves_sql() -> str:
    """Client ``$1``'s entries summed per invoice that has any: (invoice_id, Client Amt Due delta,
    Ins Amt Due delta, Client Amt Paid, Ins Amt Paid, Ins Adjusted), exact DECIMAL sums.

    The sums :func:`ledger_sql` makes for a ``client_id`` filter (due changes, client and
    insurance allocations, written-off adjustments), without its joins to the invoices and
    its sort: the caller adds them to :func:`client_invoices_sql`'s rows itself.
    """
    return """
    SELECT invoice_id, coalesce(sum(c_due), 0), coalesce(sum(i_due), 0), coalesce(sum(c_paid), 0),
           coalesce(sum(i_paid), 0), coalesce(sum(adjusted), 0)
    FROM (
        SELECT invoice_id, client_amt_due_delta AS c_due, ins_amt_due_delta AS i_due,
               NULL AS c_paid, NULL AS i_paid, NULL AS adjusted
        FROM due_changes WHERE client_id = $1
        UNION ALL
        SELECT invoice_id, NULL, NULL, CASE WHEN kind = 'client' THEN amount END,
               CASE WHEN kind = 'insurance' THEN amount END, NULL
        FROM allocations WHERE client_id = $1 AND kind IN ('client', 'insurance')
        UNION ALL
        SELECT invoice_id, NULL, NULL, NULL, NULL, amount FROM adjustments WHERE client_id = $1 AND written_off
    )
    GROUP BY invoice_id
    """


def payments_sql(where: str = "TRUE") -> str:
    """Payments with what was applied, what is unapplied credit, and a status.

    status: ``recorded``; ``voided`` once a reversing entry names it; ``reversal``
    for that reversing entry itself (negative amount).
    """
    entry_where = where.replace("client_id", "e.client_id") if "client_id" in where else "TRUE"
    return f"""
    WITH pay AS (SELECT * FROM payments WHERE {where}),
    applied AS (
        SELECT e.payment_id, sum(e.amount) AS applied FROM allocations e
        WHERE {entry_where} GROUP BY 1),
    voided AS (SELECT DISTINCT reverses AS payment_id FROM payments WHERE reverses IS NOT NULL)
    SELECT p.payment_id, p.received_on, p.method, p.payer_id, p.payment_number, p.amount,
           CAST(coalesce(a.applied, 0) AS DECIMAL(18,2)) AS applied,
           CAST(p.amount - coalesce(a.applied, 0) AS DECIMAL(18,2)) AS unapplied,
           CASE WHEN p.reverses IS NOT NULL THEN 'reversal'
                WHEN v.payment_id IS NOT NULL THEN 'voided'
                ELSE 'recorded' END AS status,
           p.user_id, p.client_id, p.kind, p.notes, p.created_at, p.processor, p.processor_ref,
           p.card_brand, p.card_last4, p.remittance_id, p.reverses, p.reason
    FROM pay p
    LEFT JOIN applied a USING (payment_id)
    LEFT JOIN voided v USING (payment_id)
    ORDER BY p.created_at, p.payment_id
    """


PAYMENT_COLUMNS = (
    "payment_id",
    "received_on",
    "method",
    "payer_id",
    "payment_number",
    "amount",
    "applied",
    "unapplied",
    "status",
    "user_id",
    "notes",
)


def adjudications_sql(where: str = "TRUE") -> str:
    """Each payer's adjudication of each invoice (``where`` filters ``a``, e.g. ``a.invoice_id = $1``):
    who acted at which priority, with which CLP07, what it paid, left to the patient and adjusted,
    and whether it stands or which claim posting reversed it. The amounts due derive from the
    standing ones (:func:`recon.remit.match.derive_dues_sql`)."""
    return f"""
    SELECT a.invoice_id, a.payer_id, a.priority, a.status, a.payer_control, r.trace_number, r.paid_on,
           CAST(sum(a.charge) AS DECIMAL(18,2)) AS charge, CAST(sum(a.paid) AS DECIMAL(18,2)) AS paid,
           CAST(sum(a.patient_resp) AS DECIMAL(18,2)) AS patient_resp,
           CAST(sum(a.written_off) AS DECIMAL(18,2)) AS written_off,
           CAST(sum(a.other_adj) AS DECIMAL(18,2)) AS other_adj,
           CASE WHEN any_value(x.reversal) IS NULL THEN 'stands'
                ELSE 'reversed by claim posting ' || CAST(any_value(x.reversal) AS VARCHAR) END AS standing,
           a.claim_posting_id
    FROM adjudications a LEFT JOIN remittances r USING (remittance_id)
    LEFT JOIN adjudication_reversals x ON x.original = a.claim_posting_id
    WHERE {where}
    GROUP BY a.invoice_id, a.claim_posting_id, a.payer_id, a.priority, a.status, a.payer_control, r.trace_number,
             r.paid_on
    ORDER BY a.invoice_id, a.priority, a.claim_posting_id
    """


ADJUDICATION_COLUMNS = (
    "payer_id",
    "priority",
    "status",
    "payer_control",
    "trace_number",
    "paid",
    "patient_resp",
    "written_off",
    "other_adj",
    "standing",
)


def waiting_on_sql() -> str:
    """For invoice ``$1``: the payer its open insurance balance now waits on (the next policy of
    the client that has not adjudicated after the last standing adjudication), or NULL."""
    return """
    WITH last AS (SELECT a.priority, a.client_id FROM adjudications a
                  WHERE a.invoice_id = $1 AND a.priority > 0
                    AND a.claim_posting_id NOT IN (SELECT original FROM adjudication_reversals)
                  ORDER BY a.priority DESC, a.claim_posting_id DESC LIMIT 1)
    SELECT p.payer_id FROM client_insurance p JOIN last ON p.client_id = last.client_id
    WHERE CASE lower(p.priority) WHEN 'primary' THEN 1 WHEN 'secondary' THEN 2 WHEN 'tertiary' THEN 3 ELSE 9 END
          > last.priority
    ORDER BY CASE lower(p.priority) WHEN 'primary' THEN 1 WHEN 'secondary' THEN 2 WHEN 'tertiary' THEN 3 ELSE 9 END
    LIMIT 1
    """


def due_from_sql() -> str:
    """For client ``$1``: each invoice whose open insurance balance waits on a payer other than the
    one billed, i.e. the next policy in the client's chain after the last standing adjudication
    (the set-based form of :func:`waiting_on_sql`, for planning a manual payment)."""
    return """
    WITH rank AS (
        SELECT payer_id,
               CASE lower(priority) WHEN 'primary' THEN 1 WHEN 'secondary' THEN 2 WHEN 'tertiary' THEN 3
                    ELSE 9 END AS r
        FROM client_insurance WHERE client_id = $1),
    last AS (
        SELECT a.invoice_id, max(a.priority) AS priority FROM adjudications a
        WHERE a.client_id = $1 AND a.priority > 0
          AND a.claim_posting_id NOT IN (SELECT original FROM adjudication_reversals)
        GROUP BY a.invoice_id)
    SELECT last.invoice_id, arg_min(rank.payer_id, rank.r) AS payer_id
    FROM last JOIN rank ON rank.r > last.priority
    GROUP BY last.invoice_id
    """
