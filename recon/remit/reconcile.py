"""The ERA side of the export, and the one worklist query both sides share.

Why here and not in the posting code: the export and the reports read the posting
tables (``remittances``, ``remit_claims``, ``exceptions``) together with the bank
side (``deposits`` and the reconciliation views of ``15_deposits.sql``); keeping
that union in one place means the CLI, the widget, the reports and the export show
the same worklist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recon.reports import overpayment_worklist_sql

WORKLIST_SQL = f"""
SELECT exception_id, kind, remittance_id, trace_number, payer_id, claim_id, amount, reason,
       created_at, status, resolution, resolved_by, resolved_at, CAST(NULL AS VARCHAR) AS deposit_id
FROM exception_status
UNION ALL
SELECT exception_id, kind, remittance_id, trace_number, payer_id, claim_id, amount, reason,
       created_at, 'open', NULL, NULL, NULL, deposit_id
FROM deposit_exceptions
UNION ALL
SELECT exception_id, kind, remittance_id, trace_number, payer_id, claim_id, amount, reason,
       created_at, status, resolution, resolved_by, resolved_at, deposit_id
FROM ({overpayment_worklist_sql()})
"""
"""Every exception: the posting worklist (claims, denials), the bank side (unmatched
deposits, amount mismatches, which stay open until the data changes) and the credit
balances (``overpayment``, open while the credit stands)."""

EXPORT_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "remittances",
        """SELECT r.*, rr.status AS reconciliation_status, rr.deposit_id, rr.difference AS deposit_difference
           FROM remittances r LEFT JOIN remittance_reconciliation rr USING (remittance_id)
           ORDER BY r.posted_at, r.remittance_id""",
    ),
    (
        "remittance_claims",
        """SELECT c.*, r.trace_number, r.payer_id
           FROM remit_claims c JOIN remittances r USING (remittance_id)
           ORDER BY c.claim_posting_id""",
    ),
    (
        "remittance_adjustments",
        """SELECT c.remittance_id, a.claim_posting_id, c.claim_id, a.line_no, a.group_code, a.reason_code, a.amount
           FROM remit_cas a JOIN remit_claims c USING (claim_posting_id)
           ORDER BY a.claim_posting_id, a.line_no, a.group_code, a.reason_code""",
    ),
    ("remittance_plb", "SELECT * FROM remit_plb ORDER BY remittance_id, seq"),
    ("exceptions", f"SELECT * FROM ({WORKLIST_SQL}) ORDER BY created_at, exception_id"),
    ("exception_actions", "SELECT * FROM exception_actions ORDER BY action_id"),
    (
        "deposits",
        """SELECT deposit_id, deposit_date, amount, trace_number, description, status, matched_by,
                  remittance_id, payer_id, paid_on, remittance_amount, difference, reason, source_file, loaded_at
           FROM deposit_reconciliation ORDER BY deposit_date, deposit_id""",
    ),
    # matches of deposits by hand and their undos (append-only: who, when, why)
    ("deposit_matches", "SELECT * FROM deposit_match_entries ORDER BY entry_id"),
    ("remittance_reconciliation", "SELECT * FROM remittance_reconciliation ORDER BY paid_on, remittance_id"),
    # BAI2 details that are not deposits (sweeps, interest, returns, debits...): the rest of the bank file
    ("other_bank_activity", "SELECT * FROM other_bank_activity ORDER BY as_of_date, activity_id"),
)
"""Export table name → query; money stays DECIMAL(18,2) (Arrow decimal128)."""


def worklist(recon: Any, status: str | None = "open") -> Any:
    """The exceptions worklist as an exact DataFrame (``status`` None: every exception)."""
    where, params = ("TRUE", []) if status is None else ("status = ?", [status])
    return recon.frame(f"SELECT * FROM ({WORKLIST_SQL}) WHERE {where} ORDER BY created_at, exception_id", params)


def export_tables(recon: Any) -> Iterator[tuple[str, Any]]:
    """The ERA and bank tables of an export (skipped in a ledger without the posting tables)."""
    import duckdb

    for name, sql in EXPORT_QUERIES:
        try:
            table = recon.arrow(sql)
        except duckdb.CatalogException:  # a part of the schema this checkout does not have
            continue
        yield name, table
