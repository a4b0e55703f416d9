"""Plan an insurance payment: which invoices get how much, and what is left unapplied.

This is the one function the Accept Payment form previews and the one the ledger
records, so the preview is never a lie. It is pure: it sees only the client's
invoices as they stand and what the analyst entered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from recon.errors import PaymentRefused
from recon.model import InvoicePick
from recon.money import ZERO, fmt


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """An invoice as the planner needs it: whose, billed to whom, and what is still open."""

    invoice_id: str
    service_date: date
    payer_id: str | None
    ins_open: Decimal


@dataclass(frozen=True, slots=True)
class Allocation:
    invoice_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Plan:
    """A payment's total, its allocations (in order) and its unapplied credit."""

    total: Decimal
    allocations: tuple[Allocation, ...]
    unapplied: Decimal

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.allocations), ZERO)


def plan_insurance_payment(
    invoices: Sequence[OpenInvoice],
    payer_id: str,
    *,
    amount: Decimal | None = None,
    picks: Sequence[InvoicePick] = (),
) -> Plan:
    """Plan a payment from ``payer_id`` over a client's ``invoices``.

    - ticked invoices (``pick.amount`` None) are paid their open Ins Amt Due;
      typed Payments are partial payments, never above the open due;
    - with picks and no ``amount`` the total is their sum; an ``amount`` above
      that sum leaves the difference unapplied (it is not spread elsewhere);
    - an ``amount`` alone is applied oldest service first to the open invoices
      billed to ``payer_id``, paid ones skipped; the rest is unapplied credit.

    Raises :class:`PaymentRefused` with a one-line reason for anything else.
    """
    if amount is not None and amount <= ZERO:
        raise PaymentRefused(f"Total Amount must be more than 0.00 (got {fmt(amount)})")
    if not picks:
        if amount is None:
            raise PaymentRefused("Enter a Total Amount or tick at least one invoice")
        return _oldest_first(invoices, payer_id, amount)

    by_id = {inv.invoice_id: inv for inv in invoices}
    seen: set[str] = set()
    allocations: list[Allocation] = []
    for pick in picks:
        inv = by_id.get(pick.invoice_id)
        if inv is None:
            raise PaymentRefused(f"Invoice {pick.invoice_id} is not one of this client's invoices")
        if pick.invoice_id in seen:
            raise PaymentRefused(f"Invoice {pick.invoice_id} is given twice")
        seen.add(pick.invoice_id)
        if pick.amount is None:
            if inv.ins_open <= ZERO:
                raise PaymentRefused(
                    f"Invoice {inv.invoice_id} has no open Ins Amt Due to pay (open {fmt(inv.ins_open)})"
                )
            allocations.append(Allocation(inv.invoice_id, inv.ins_open))
            continue
        if pick.amount <= ZERO:
            raise PaymentRefused(f"Payment on invoice {inv.invoice_id} must be more than 0.00 (got {fmt(pick.amount)})")
        if pick.amount > inv.ins_open:
            raise PaymentRefused(
                f"Payment {fmt(pick.amount)} on invoice {inv.invoice_id} is more than its open "
                f"Ins Amt Due of {fmt(max(inv.ins_open, ZERO))}"
            )
        allocations.append(Allocation(inv.invoice_id, pick.amount))

    picked = sum((a.amount for a in allocations), ZERO)
    if amount is None:
        return Plan(picked, tuple(allocations), ZERO)
    if amount < picked:
        raise PaymentRefused(
            f"Total Amount {fmt(amount)} is less than the invoice Payments, which add up to {fmt(picked)}"
        )
    return Plan(amount, tuple(allocations), amount - picked)


def _oldest_first(invoices: Sequence[OpenInvoice], payer_id: str, amount: Decimal) -> Plan:
    candidates = sorted(
        (inv for inv in invoices if inv.payer_id == payer_id and inv.ins_open > ZERO),
        key=lambda inv: (inv.service_date, inv.invoice_id),
    )
    left = amount
    allocations: list[Allocation] = []
    for inv in candidates:
        if left <= ZERO:
            break
        part = min(left, inv.ins_open)
        allocations.append(Allocation(inv.invoice_id, part))
        left -= part
    return Plan(amount, tuple(allocations), left)
