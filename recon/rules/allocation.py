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

from recon.errors import OtherPayersInvoice, PaymentRefused
from recon.model import InvoicePick
from recon.money import ZERO, fmt


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """An invoice as the planner needs it: whose, billed to whom, and what is still open.

    ``due_from`` is the payer its open Ins Amt Due now waits on: the billed payer, or,
    once a payer has adjudicated it, the next payer in the client's chain of policies.
    """

    invoice_id: str
    service_date: date
    payer_id: str | None
    ins_open: Decimal
    due_from: str | None = None

    @property
    def owed_by(self) -> str | None:
        return self.due_from or self.payer_id


@dataclass(frozen=True, slots=True)
class Allocation:
    """Money put on an invoice, and whose responsibility it meets (shown before recording)."""

    invoice_id: str
    amount: Decimal
    meets: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """A payment's total, its allocations (in order) and its unapplied credit."""

    total: Decimal
    allocations: tuple[Allocation, ...]
    unapplied: Decimal

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.allocations), ZERO)


def responsibility(inv: OpenInvoice, payer_id: str, chain: Sequence[str]) -> tuple[bool, str]:
    """Whose part of ``inv`` a payment from ``payer_id`` meets: (allowed without confirmation, why).

    - the payer the open Ins Amt Due waits on meets its own part;
    - a payer later in the client's chain (a secondary paying on the primary's invoice)
      meets the part now due from it;
    - anything else (an earlier payer, a payer the invoice was never billed to) would
      put one payer's money on another's balance: it needs the analyst's confirmation.
    """
    owed_by = inv.owed_by
    if owed_by is None or payer_id == owed_by:
        return True, f"the Ins Amt Due from {payer_id}"
    rank = {p: i for i, p in enumerate(chain)}
    if payer_id in rank and owed_by in rank and rank[payer_id] > rank[owed_by]:
        return True, f"the part due from {payer_id}, after {owed_by} (coordination of benefits)"
    return False, f"an invoice whose Ins Amt Due is owed by {owed_by}, not {payer_id}"


def plan_insurance_payment(
    invoices: Sequence[OpenInvoice],
    payer_id: str,
    *,
    amount: Decimal | None = None,
    picks: Sequence[InvoicePick] = (),
    chain: Sequence[str] = (),
    confirm_other_payer: bool = False,
) -> Plan:
    """Plan a payment from ``payer_id`` over a client's ``invoices``.

    - ticked invoices (``pick.amount`` None) are paid their open Ins Amt Due;
      typed Payments are partial payments, never above the open due;
    - with picks and no ``amount`` the total is their sum; an ``amount`` above
      that sum leaves the difference unapplied (it is not spread elsewhere);
    - an ``amount`` alone is applied oldest service first to the open invoices
      whose Ins Amt Due is owed by ``payer_id``, paid ones skipped; the rest is
      unapplied credit;
    - each allocation says whose responsibility it meets (:func:`responsibility`,
      over ``chain``, the client's payers in priority order); a ticked or typed
      invoice owed by another payer is refused unless ``confirm_other_payer``.

    Raises :class:`PaymentRefused` with a one-line reason for anything else.
    """
    if amount is not None and amount <= ZERO:
        raise PaymentRefused(f"Total Amount must be more than 0.00 (got {fmt(amount)})")
    if not picks:
        if amount is None:
            raise PaymentRefused("Enter a Total Amount or tick at least one invoice")
        return _oldest_first(invoices, payer_id, amount, chain)

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
        allowed, meets = responsibility(inv, payer_id, chain)
        if not allowed:
            if not confirm_other_payer:
                raise OtherPayersInvoice(
                    f"Invoice {inv.invoice_id}: its open Ins Amt Due is owed by {inv.owed_by}, not {payer_id}; "
                    f"record it there only if {payer_id} really paid it, by confirming the other payer"
                )
            meets = f"{meets} (confirmed by the analyst)"
        if pick.amount is None:
            if inv.ins_open <= ZERO:
                raise PaymentRefused(
                    f"Invoice {inv.invoice_id} has no open Ins Amt Due to pay (open {fmt(inv.ins_open)})"
                )
            allocations.append(Allocation(inv.invoice_id, inv.ins_open, meets))
            continue
        if pick.amount <= ZERO:
            raise PaymentRefused(f"Payment on invoice {inv.invoice_id} must be more than 0.00 (got {fmt(pick.amount)})")
        if pick.amount > inv.ins_open:
            raise PaymentRefused(
                f"Payment {fmt(pick.amount)} on invoice {inv.invoice_id} is more than its open "
                f"Ins Amt Due of {fmt(max(inv.ins_open, ZERO))}"
            )
        allocations.append(Allocation(inv.invoice_id, pick.amount, meets))

    picked = sum((a.amount for a in allocations), ZERO)
    if amount is None:
        return Plan(picked, tuple(allocations), ZERO)
    if amount < picked:
        raise PaymentRefused(
            f"Total Amount {fmt(amount)} is less than the invoice Payments, which add up to {fmt(picked)}"
        )
    return Plan(amount, tuple(allocations), amount - picked)


def _oldest_first(invoices: Sequence[OpenInvoice], payer_id: str, amount: Decimal, chain: Sequence[str]) -> Plan:
    candidates = sorted(
        (inv for inv in invoices if inv.owed_by == payer_id and inv.ins_open > ZERO),
        key=lambda inv: (inv.service_date, inv.invoice_id),
    )
    left = amount
    allocations: list[Allocation] = []
    for inv in candidates:
        if left <= ZERO:
            break
        part = min(left, inv.ins_open)
        allocations.append(Allocation(inv.invoice_id, part, responsibility(inv, payer_id, chain)[1]))
        left -= part
    return Plan(amount, tuple(allocations), left)
