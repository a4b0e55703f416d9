"""Work the exceptions of posted remittances: match a held claim, appeal or write off a denial.

Exceptions are never edited: each decision is an appended ``exception_actions`` row,
with the ledger entries it made (a payment, adjustments, amount-due changes) in the
same transaction and an audit entry. The status is derived (view ``exception_status``).
Every action needs the Billing permission.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from recon.errors import NotFound, PaymentRefused
from recon.money import ZERO, fmt
from recon.remit.match import PRIMARY, method_sql
from recon.remit.post import write_off_codes
from recon.rules.permissions import require_billing

MATCHABLE = ("unmatched_claim", "not_our_claim", "unmatched_reversal")


def _exception(recon: Any, exception_id: str) -> dict[str, Any]:
    cur = recon.execute("SELECT * FROM exception_status WHERE exception_id = ?", [exception_id])
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"No exception {exception_id!r} in the worklist")
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def _entry(recon: Any) -> int:
    return int(recon.one("SELECT nextval('entry_seq')")[0])


def _act(recon: Any, exception_id: str, action: str, user_id: str, *, invoice_id: str | None = None,
         amount: Decimal | None = None, reason: str | None = None, payment_id: str | None = None) -> None:
    from recon.services import now

    recon.execute("INSERT INTO exception_actions VALUES (nextval('entry_seq'), ?, ?, ?, ?, ?, ?, ?, ?)",
                  [exception_id, action, invoice_id, amount, reason, user_id, now(), payment_id])


def match_claim(recon: Any, exception_id: str, invoice_id: str, user_id: str, *,
                auto_write_off: Any = None) -> str:
    """Post an unmatched claim's held money to ``invoice_id`` as if the claim had matched it.

    A new insurance payment of the held amount (the remittance's payer, method,
    TRN02 and date; payments are never changed, so it is a second payment of the
    remittance for that client) is allocated to the invoice; the claim's adjustments
    go to the invoice (auto write-offs when the payer was primary) and a primary's
    patient responsibility sets the amounts due. Returns the payment id.
    """
    from recon.services import now

    user = recon.user(user_id)
    require_billing(user, "match a remittance claim to an invoice")
    codes = write_off_codes(auto_write_off)
    with recon.transaction():
        exc = _exception(recon, exception_id)
        if exc["kind"] not in MATCHABLE:
            raise PaymentRefused(f"{exception_id} is a {exc['kind']}, not an unmatched claim; appeal or write it off")
        if exc["status"] != "open":
            raise PaymentRefused(f"{exception_id} is already {exc['status']}")
        inv = recon.one("SELECT client_id, fee FROM invoices WHERE invoice_id = ?", [invoice_id])
        if inv is None:
            raise NotFound(f"No invoice {invoice_id!r} in this ledger")
        client_id, fee = inv
        claim = recon.one("SELECT claim_posting_id, status, held_amount FROM remit_claims WHERE claim_posting_id = ?",
                          [_cpid(recon, exception_id)])
        cpid, status, held = claim
        stamp = now()
        pid = recon.next_payment_id()
        recon.execute(f"""
            INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on, payment_number,
                                  notes, user_id, created_at, remittance_id)
            SELECT ?, 'insurance', ?, payer_id, {method_sql('payment_method')}, ?, coalesce(paid_on, ?), trace_number,
                   ?, ?, ?, remittance_id FROM remittances WHERE remittance_id = ?""",
                      [pid, client_id, held, stamp.date(), f"ERA claim {exc['claim_id']} matched ({exception_id})",
                       user.user_id, stamp, exc["remittance_id"]])
        entries: list[tuple[str, int]] = []
        if held != ZERO:
            aid = _entry(recon)
            recon.execute("INSERT INTO allocations VALUES (?, ?, ?, ?, 'insurance', ?, ?)",
                          [aid, pid, invoice_id, client_id, held, stamp])
            entries.append(("allocation", aid))
        if status != "22":
            entries += _adjust(recon, cpid, status, invoice_id, client_id, fee, pid, exc, user.user_id, codes)
        for kind, eid in entries:
            recon.execute("INSERT INTO remit_entries VALUES (?, ?, ?)", [cpid, kind, eid])
        _act(recon, exception_id, "matched", user.user_id, invoice_id=invoice_id, amount=held, payment_id=pid)
        recon.audit(user.user_id, "match_remittance_claim", "exception", exception_id,
                    {"invoice_id": invoice_id, "payment_id": pid, "amount": fmt(held),
                     "remittance_id": exc["remittance_id"], "claim_id": exc["claim_id"]})
    return pid


def _cpid(recon: Any, exception_id: str) -> int:
    return int(recon.one("SELECT claim_posting_id FROM exceptions WHERE exception_id = ?", [exception_id])[0])


def _adjust(recon: Any, cpid: int, status: str, invoice_id: str, client_id: str, fee: Decimal, pid: str,
            exc: dict[str, Any], user_id: str, codes: frozenset[str]) -> list[tuple[str, int]]:
    """The claim's CAS on the invoice, and for a primary payer Client Amt Due = Σ PR."""
    from recon.services import now

    stamp = now()
    primary = status in PRIMARY
    entries: list[tuple[str, int]] = []
    for group, reason, amount in recon.execute(
            "SELECT group_code, reason_code, amount FROM remit_cas WHERE claim_posting_id = ? AND amount <> 0 "
            "ORDER BY line_no", [cpid]).fetchall():
        aid = _entry(recon)
        recon.execute("INSERT INTO adjustments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)",
                      [aid, invoice_id, client_id, pid, exc["remittance_id"], group, reason, amount,
                       primary and f"{group}-{reason}" in codes, user_id, stamp])
        entries.append(("adjustment", aid))
    if not primary:
        return entries
    pr = recon.one("SELECT coalesce(sum(amount), 0) FROM remit_cas WHERE claim_posting_id = ? AND group_code = 'PR'",
                   [cpid])[0]
    cur = recon.one("""SELECT i.client_amt_due + coalesce(sum(d.client_amt_due_delta), 0),
                              i.ins_amt_due + coalesce(sum(d.ins_amt_due_delta), 0)
                       FROM invoices i LEFT JOIN due_changes d USING (invoice_id)
                       WHERE i.invoice_id = ? GROUP BY i.client_amt_due, i.ins_amt_due""", [invoice_id])
    dc, di = pr - cur[0], (fee - pr) - cur[1]
    if dc or di:
        cid = _entry(recon)
        recon.execute("INSERT INTO due_changes VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                      [cid, invoice_id, client_id, dc, di, exc["remittance_id"], user_id, stamp,
                       f"remittance claim {exc['claim_id']} matched ({exc['exception_id']})"])
        entries.append(("due_change", cid))
    return entries


def mark_denial(recon: Any, exception_id: str, action: str, reason: str, user_id: str, *,
                invoice_id: str | None = None) -> list[tuple[str, Decimal]]:
    """``appeal`` (status only) or ``write_off`` a denial, with a reason; returns what was written off.

    A write-off is an adjustment written off (group ``WO``, the reason as note) on each
    matched invoice for the charge denied there, capped at the insurer's open amount so
    the client's share is not written off with it. ``invoice_id`` names the invoice when
    the denied claim matched none.
    """
    from recon.services import now

    user = recon.user(user_id)
    require_billing(user, "work a denial")
    if action not in ("appeal", "write_off"):
        raise PaymentRefused(f"{action!r}: a denial is marked 'appeal' or 'write_off'")
    if not reason or not reason.strip():
        raise PaymentRefused("Give a reason (it is kept with the denial)")
    written: list[tuple[str, Decimal]] = []
    with recon.transaction():
        exc = _exception(recon, exception_id)
        if exc["kind"] != "denial":
            raise PaymentRefused(f"{exception_id} is a {exc['kind']}, not a denial")
        if exc["status"] not in ("open", "appealed"):
            raise PaymentRefused(f"{exception_id} is already {exc['status']}")
        if action == "write_off":
            written = _write_off(recon, exc, invoice_id, reason.strip(), user.user_id, now())
        _act(recon, exception_id, action, user.user_id, invoice_id=written[0][0] if written else None,
             amount=sum((a for _, a in written), ZERO) if written else None, reason=reason.strip())
        recon.audit(user.user_id, f"denial_{action}", "exception", exception_id,
                    {"reason": reason.strip(), "written_off": {i: fmt(a) for i, a in written}})
    return written


def _write_off(recon: Any, exc: dict[str, Any], invoice_id: str | None, reason: str, user_id: str,
               stamp: Any) -> list[tuple[str, Decimal]]:
    from recon.store import queries

    if invoice_id:
        targets = recon.execute("SELECT invoice_id, client_id, ? FROM invoices WHERE invoice_id = ?",
                                [exc["amount"], invoice_id]).fetchall()
        if not targets:
            raise NotFound(f"No invoice {invoice_id!r} in this ledger")
    else:
        targets = recon.execute("SELECT invoice_id, client_id, amount FROM exception_invoices WHERE exception_id = ? "
                                "ORDER BY invoice_id", [exc["exception_id"]]).fetchall()
    if not targets:
        raise PaymentRefused(f"Denied claim {exc['claim_id']} matched no invoice; name the invoice to write off")
    written = []
    for inv, client_id, denied in targets:
        ledger = recon.one(f"SELECT ins_amt_due - ins_amt_paid - ins_adjusted "
                           f"FROM ({queries.ledger_sql('client_id = $1')}) WHERE invoice_id = $2", [client_id, inv])
        amount = min(denied, max(ledger[0], ZERO))
        if amount <= ZERO:
            continue
        recon.execute("INSERT INTO adjustments VALUES (nextval('entry_seq'), ?, ?, NULL, ?, 'WO', ?, ?, TRUE, NULL, "
                      "?, ?, ?)", [inv, client_id, exc["remittance_id"], (exc["reason"] or "denial")[:60], amount,
                                   user_id, stamp, reason])
        written.append((inv, amount))
    if not written:
        raise PaymentRefused(f"Nothing is open on the insurer's side of {', '.join(t[0] for t in targets)}; "
                             "nothing to write off")
    return written
