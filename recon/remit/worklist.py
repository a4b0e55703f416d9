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
from recon.remit.match import derive_dues, method_sql
from recon.remit.post import write_off_codes
from recon.rules.permissions import require_billing

MATCHABLE = ("unmatched_claim", "not_our_claim", "unmatched_reversal", "unmatched_line", "payer_not_on_policy",
             "possible_duplicate", "reversal_mismatch")


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
    """Post a held claim's (or a held line's) money to ``invoice_id`` as if it had matched it.

    Works per line: an ``unmatched_line`` or ``possible_duplicate`` exception moves that
    line only (its SVC03 and CAS with its share of the claim's); a held claim moves the
    claim. A new insurance payment of the held amount (the remittance's payer, method,
    TRN02 and date) is allocated to the invoice, the adjustments go with it, the
    adjudication is recorded and the invoice's amounts due are derived again. Refused,
    with nothing written, when it would take the invoice's balance below zero. Returns
    the payment id.
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
        client_id, _fee = inv
        cpid = _cpid(recon, exception_id)
        claim = recon.one("SELECT status, charge, payer_control FROM remit_claims WHERE claim_posting_id = ?", [cpid])
        status, charge, pcn = claim
        held = exc["held_amount"]
        line = exc.get("line_no")
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
            if line is not None:
                cas = recon.execute("SELECT group_code, reason_code, amount FROM exception_cas WHERE exception_id = ? "
                                    "ORDER BY group_code, reason_code", [exception_id]).fetchall()
                charge = recon.one("SELECT charge FROM remit_lines WHERE claim_posting_id = ? AND line_no = ?",
                                   [cpid, line])[0]
            else:
                cas = recon.execute("SELECT group_code, reason_code, amount FROM remit_cas WHERE claim_posting_id = ? "
                                    "AND amount <> 0 ORDER BY line_no, group_code, reason_code", [cpid]).fetchall()
            entries += _adjust(recon, cas, invoice_id, client_id, pid, exc, user.user_id, codes)
            _adjudicate(recon, cpid, line or 0, invoice_id, client_id, exc, status, pcn, charge, held, cas, codes)
        for kind, eid in entries:
            recon.execute("INSERT INTO remit_entries VALUES (?, ?, ?)", [cpid, kind, eid])
        derive_dues(recon.con, [(invoice_id, exc["remittance_id"])], user_id=user.user_id, stamp=stamp,
                    reason=f"remittance claim {exc['claim_id']} matched ({exception_id})")
        _refuse_below_zero(recon, invoice_id, client_id, f"matching {exception_id} to {invoice_id}")
        _act(recon, exception_id, "matched", user.user_id, invoice_id=invoice_id, amount=held, payment_id=pid)
        recon.audit(user.user_id, "match_remittance_claim", "exception", exception_id,
                    {"invoice_id": invoice_id, "payment_id": pid, "amount": fmt(held), "line_no": line,
                     "remittance_id": exc["remittance_id"], "claim_id": exc["claim_id"]})
    return pid


def _cpid(recon: Any, exception_id: str) -> int:
    return int(recon.one("SELECT claim_posting_id FROM exceptions WHERE exception_id = ?", [exception_id])[0])


def _adjust(recon: Any, cas: list[tuple[str, str, Decimal]], invoice_id: str, client_id: str, pid: str,
            exc: dict[str, Any], user_id: str, codes: frozenset[str]) -> list[tuple[str, int]]:
    """The held claim's or line's CAS on the invoice; those in the auto write-off set are written off."""
    from recon.services import now

    stamp = now()
    entries: list[tuple[str, int]] = []
    for group, reason, amount in cas:
        aid = _entry(recon)
        recon.execute("INSERT INTO adjustments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)",
                      [aid, invoice_id, client_id, pid, exc["remittance_id"], group, reason, amount,
                       group != "PR" and f"{group}-{reason}" in codes, user_id, stamp])
        entries.append(("adjustment", aid))
    return entries


def _adjudicate(recon: Any, cpid: int, line: int, invoice_id: str, client_id: str, exc: dict[str, Any], status: str,
                pcn: str | None, charge: Decimal, paid: Decimal, cas: list[tuple[str, str, Decimal]],
                codes: frozenset[str]) -> None:
    """The adjudication a worklist match makes: what the amounts due of the invoice derive from."""
    from recon.services import now

    priority = {"1": 1, "19": 1, "2": 2, "20": 2, "3": 3, "21": 3}.get(status, 0)
    pr = sum((a for g, _, a in cas if g == "PR"), ZERO)
    wo = sum((a for g, r, a in cas if g != "PR" and f"{g}-{r}" in codes), ZERO)
    other = sum((a for g, r, a in cas if g != "PR" and f"{g}-{r}" not in codes), ZERO)
    recon.execute("INSERT INTO adjudications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [cpid, line, invoice_id, client_id, exc["remittance_id"], exc["payer_id"], priority, status,
                   pcn or None, charge, paid, pr, wo, other, now()])


def _refuse_below_zero(recon: Any, invoice_id: str, client_id: str, what: str) -> None:
    """Raise (the caller's transaction rolls back) when the invoice's balance went below zero."""
    from recon.store import queries

    row = recon.one(f"SELECT fee, ins_amt_paid, ins_adjusted, client_amt_paid, balance "
                    f"FROM ({queries.ledger_sql('client_id = $1')}) WHERE invoice_id = $2", [client_id, invoice_id])
    if row and row[4] < ZERO:
        raise PaymentRefused(f"{what} would take its balance to {fmt(row[4])} (fee {fmt(row[0])}, insurance paid "
                             f"{fmt(row[1])}, adjusted {fmt(row[2])}, client paid {fmt(row[3])}); nothing was "
                             "written")


def bill_client(recon: Any, invoice_id: str, user_id: str, reason: str = "") -> Decimal:
    """Move the patient responsibility waiting on a next payer to the client (audited).

    The last payer that adjudicated the invoice left PR that the brief's rule keeps due
    from the next policy (Ins Amt Due); the analyst decides that payer will not pay it
    (no coverage, timely filing, ...). Recorded as a billing decision at that payer's
    priority, so it holds until a later payer adjudicates. Returns the amount moved.
    """
    from recon.services import now

    user = recon.user(user_id)
    require_billing(user, "bill the client")
    with recon.transaction():
        inv = recon.one("SELECT client_id FROM invoices WHERE invoice_id = ?", [invoice_id])
        if inv is None:
            raise NotFound(f"No invoice {invoice_id!r} in this ledger")
        last = recon.one("""SELECT priority, remittance_id FROM adjudications
                            WHERE invoice_id = ? AND priority > 0
                              AND claim_posting_id NOT IN (SELECT original FROM adjudication_reversals)
                            ORDER BY priority DESC, claim_posting_id DESC LIMIT 1""", [invoice_id])
        if last is None:
            raise PaymentRefused(f"No payer has adjudicated {invoice_id}; there is no patient responsibility to bill")
        before = _client_due(recon, invoice_id)
        stamp = now()
        recon.execute("INSERT INTO billing_decisions VALUES (?, ?, ?, ?, ?)",
                      [invoice_id, last[0], user.user_id, reason.strip() or None, stamp])
        derive_dues(recon.con, [(invoice_id, None)], user_id=user.user_id, stamp=stamp,
                    reason=f"bill client: {reason.strip() or 'the next payer will not pay it'}")
        moved = _client_due(recon, invoice_id) - before
        if moved <= ZERO:
            raise PaymentRefused(f"Nothing of {invoice_id} is waiting on a next payer; Client Amt Due stays "
                                 f"{fmt(before)}")
        recon.audit(user.user_id, "bill_client", "invoice", invoice_id,
                    {"amount": fmt(moved), "priority": last[0], "reason": reason.strip()})
    return moved


def _client_due(recon: Any, invoice_id: str) -> Decimal:
    row = recon.one("""SELECT i.client_amt_due + coalesce(sum(d.client_amt_due_delta), 0)
                       FROM invoices i LEFT JOIN due_changes d USING (invoice_id)
                       WHERE i.invoice_id = ? GROUP BY i.client_amt_due""", [invoice_id])
    return Decimal(row[0]) if row else ZERO


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


# ------------------------------------------------ overpayments (credit balances)
# A credit balance (an invoice side paid above its due, or a payment's unapplied
# credit) is the worklist item ``overpayment``, derived from the ledger
# (recon.reports.credit_items_sql). Working it writes ledger entries and a
# ``credit_actions`` row per source payment, with an audit entry, in one transaction.


def _credit_item(recon: Any, credit_id: str) -> dict[str, Any]:
    """The standing credit balance ``credit_id`` (an ``overpayment`` worklist id)."""
    from recon.reports import credit_items_sql

    cur = recon.execute(f"SELECT * FROM ({credit_items_sql()}) WHERE exception_id = ?", [credit_id])
    row = cur.fetchone()
    if row is None:
        if recon.one("SELECT 1 FROM credit_actions WHERE credit_id = ? LIMIT 1", [credit_id]):
            raise PaymentRefused(f"{credit_id}: no credit stands there any more (it was refunded or applied)")
        raise NotFound(f"No credit balance {credit_id!r} in the worklist (see recon credits)")
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def _credit_sources(recon: Any, item: dict[str, Any], payer: str | None) -> list[tuple[str, str | None, Decimal]]:
    """The payments whose money stands in the credit, newest first: (payment, payer, amount)."""
    if item["source"] == "unapplied":
        rows = [(item["payment_id"], item["payer_id"], item["credit"])]
    else:
        rows = recon.execute(
            """SELECT a.payment_id, any_value(p.payer_id), CAST(sum(a.amount) AS DECIMAL(18,2))
               FROM allocations a JOIN payments p USING (payment_id)
               WHERE a.invoice_id = ? AND a.kind = ? AND p.reverses IS NULL
                 AND a.payment_id NOT IN (SELECT reverses FROM payments WHERE reverses IS NOT NULL)
               GROUP BY a.payment_id HAVING sum(a.amount) > 0
               ORDER BY max(a.created_at) DESC, a.payment_id DESC""",
            [item["invoice_id"], item["responsibility"]],
        ).fetchall()
    if payer is not None:
        wanted = payer.strip()
        names = {r[0]: r[1] for r in recon.execute("SELECT payer_id, name FROM insurance_providers").fetchall()}
        rows = [r for r in rows if wanted in (r[1], names.get(r[1]))]
        if not rows:
            raise PaymentRefused(
                f"No money from {wanted} stands in {item['exception_id']} "
                f"(it came from {item['payer_id'] or 'no payment'})"
            )
    if not rows:
        raise PaymentRefused(
            f"No payment stands in {item['exception_id']}: the credit comes from adjustments or "
            "amounts due, not money received; correct those instead"
        )
    return rows


def _take(
    sources: list[tuple[str, str | None, Decimal]], amount: Decimal, item: dict[str, Any]
) -> list[tuple[str, str | None, Decimal]]:
    """Split ``amount`` over ``sources`` newest first; refused when they hold less."""
    available = sum((s[2] for s in sources), ZERO)
    if amount > available:
        raise PaymentRefused(
            f"{fmt(amount)} is more than the {fmt(available)} of that payer's money standing in {item['exception_id']}"
        )
    parts, left = [], amount
    for payment_id, payer_id, net in sources:
        if left <= ZERO:
            break
        part = min(left, net)
        parts.append((payment_id, payer_id, part))
        left -= part
    return parts


def _credit_amount(amount: Any, item: dict[str, Any], what: str) -> Decimal:
    from recon.money import parse_amount

    credit: Decimal = item["credit"]
    if amount is None:
        return credit
    value = parse_amount(amount, f"{what} amount")
    if value <= ZERO:
        raise PaymentRefused(f"The amount to {what} must be more than 0.00 (got {fmt(value)})")
    if value > credit:
        raise PaymentRefused(f"{fmt(value)} is more than the credit of {fmt(credit)} on {item['exception_id']}")
    return value


def _reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise PaymentRefused("Give a reason (it is kept with the credit balance)")
    return reason.strip()


def _credit_action(
    recon: Any,
    item: dict[str, Any],
    action: str,
    part: tuple[str, str | None, Decimal],
    user_id: str,
    reason: str,
    stamp: Any,
    *,
    target: str | None = None,
    refund_id: str | None = None,
) -> None:
    recon.execute(
        "INSERT INTO credit_actions VALUES (nextval('entry_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            item["exception_id"],
            action,
            item["client_id"],
            item["invoice_id"],
            item["responsibility"],
            part[0],
            part[1],
            part[2],
            target,
            refund_id,
            reason,
            user_id,
            stamp,
        ],
    )


def refund_overpayment(
    recon: Any,
    credit_id: str,
    user_id: str,
    reason: str,
    *,
    amount: Any = None,
    payer: str | None = None,
    method: str = "insurance-check",
    refunded_on: Any = None,
) -> str:
    """Refund a credit balance to the payer it came from; returns the refund's payment id.

    The refund is a negative payment entry (who, when, why, to whom) — allocated
    negatively to the overpaid invoice, or, for unapplied credit, against nothing —
    so the ledger's Paid columns and the client's unapplied credit drop by exactly
    the refund. ``amount`` defaults to the whole credit; ``payer`` names whose money
    to refund when several payers' payments stand on the invoice.
    """
    from datetime import date

    from recon.model import PaymentMethod
    from recon.services import now

    user = recon.user(user_id)
    require_billing(user, "refund a credit balance")
    why = _reason(reason)
    method_value = PaymentMethod.parse(method).value
    with recon.transaction():
        item = _credit_item(recon, credit_id)
        value = _credit_amount(amount, item, "refund")
        sources = _credit_sources(recon, item, payer)
        payers = sorted({s[1] or "" for s in sources})
        if len(payers) > 1:
            raise PaymentRefused(
                f"{credit_id} holds money from {', '.join(p or 'the client' for p in payers)}; name the payer to refund"
            )
        parts = _take(sources, value, item)
        stamp = now()
        rid = recon.next_payment_id()
        payer_id = parts[0][1]
        recon.execute(
            """INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on,
                   notes, user_id, created_at, reason)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                rid,
                item["responsibility"],
                item["client_id"],
                payer_id,
                method_value,
                -value,
                refunded_on or date.today(),
                f"Refund of credit balance {credit_id} to {payer_id or 'the client'}",
                user.user_id,
                stamp,
                why,
            ],
        )
        if item["invoice_id"] is not None:
            recon.execute(
                "INSERT INTO allocations VALUES (nextval('entry_seq'), ?, ?, ?, ?, ?, ?)",
                [rid, item["invoice_id"], item["client_id"], item["responsibility"], -value, stamp],
            )
        for part in parts:
            _credit_action(recon, item, "refund", part, user.user_id, why, stamp, refund_id=rid)
        recon.audit(
            user.user_id,
            "refund_overpayment",
            "credit",
            credit_id,
            {
                "refund_payment_id": rid,
                "amount": fmt(value),
                "payer_id": payer_id,
                "reason": why,
                "client_id": item["client_id"],
                "invoice_id": item["invoice_id"],
                "from_payments": {p[0]: fmt(p[2]) for p in parts},
            },
        )
    return rid


def apply_overpayment(
    recon: Any, credit_id: str, invoice_id: str, user_id: str, reason: str, *, amount: Any = None
) -> list[tuple[str, Decimal]]:
    """Move a credit balance to another open invoice of the same client; returns (payment, amount) moved.

    The money stays with the payments it came from: each gives back its part on the
    overpaid invoice (a negative allocation) and is allocated to ``invoice_id`` on the
    same side (Ins Amt Paid, or Client Amt Paid). An insurer's money goes only to an
    invoice billed to that insurer. Refused when it would take ``invoice_id`` below
    zero; ``amount`` defaults to the smaller of the credit and what is open there.
    """
    from recon.services import now
    from recon.store import queries

    user = recon.user(user_id)
    require_billing(user, "apply a credit balance")
    why = _reason(reason)
    with recon.transaction():
        item = _credit_item(recon, credit_id)
        side = item["responsibility"]
        target = recon.one(
            f"""SELECT invoice_id, payer_id,
                       CASE WHEN $3 = 'client' THEN client_amt_due - client_amt_paid
                            ELSE ins_amt_due - ins_amt_paid - ins_adjusted END
                FROM ({queries.ledger_sql("client_id = $1")}) WHERE invoice_id = $2""",
            [item["client_id"], invoice_id, side],
        )
        if target is None:
            raise PaymentRefused(f"Invoice {invoice_id} is not one of client {item['client_id']}'s invoices")
        if invoice_id == item["invoice_id"]:
            raise PaymentRefused(f"{credit_id} is the credit on {invoice_id} itself; apply it to another invoice")
        what = "Client Amt Due" if side == "client" else "Ins Amt Due"
        open_due: Decimal = target[2]
        if open_due <= ZERO:
            raise PaymentRefused(f"Invoice {invoice_id} has no open {what} to apply a credit to (open {fmt(open_due)})")
        value = _credit_amount(amount, item, "apply")
        if amount is None:
            value = min(value, open_due)
        if value > open_due:
            raise PaymentRefused(
                f"Applying {fmt(value)} to invoice {invoice_id} would take it below zero: "
                f"its open {what} is {fmt(open_due)}"
            )
        sources = _credit_sources(recon, item, None)
        if side == "insurance":
            sources = [s for s in sources if s[1] == target[1]]
            if not sources:
                raise PaymentRefused(
                    f"Invoice {invoice_id} is billed to {target[1] or 'no insurer'} and "
                    f"{credit_id} is money from {item['payer_id']}: refund it, or apply it to "
                    f"an invoice billed to {item['payer_id']}"
                )
        parts = _take(sources, value, item)
        stamp = now()
        for part in parts:
            pid, _payer, part_amount = part
            if item["invoice_id"] is not None:
                recon.execute(
                    "INSERT INTO allocations VALUES (nextval('entry_seq'), ?, ?, ?, ?, ?, ?)",
                    [pid, item["invoice_id"], item["client_id"], side, -part_amount, stamp],
                )
            recon.execute(
                "INSERT INTO allocations VALUES (nextval('entry_seq'), ?, ?, ?, ?, ?, ?)",
                [pid, invoice_id, item["client_id"], side, part_amount, stamp],
            )
            _credit_action(recon, item, "apply", part, user.user_id, why, stamp, target=invoice_id)
        recon.audit(
            user.user_id,
            "apply_overpayment",
            "credit",
            credit_id,
            {
                "invoice_id": invoice_id,
                "amount": fmt(value),
                "reason": why,
                "client_id": item["client_id"],
                "from_invoice_id": item["invoice_id"],
                "from_payments": {p[0]: fmt(p[2]) for p in parts},
            },
        )
    return [(p[0], p[2]) for p in parts]
