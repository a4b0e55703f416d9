"""Property tests of the allocation planner (the function the form previews and records)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recon.errors import OtherPayersInvoice, PaymentRefused
from recon.model import InvoicePick
from recon.rules.allocation import OpenInvoice, plan_insurance_payment

cents = st.integers(min_value=0, max_value=500_00).map(lambda c: Decimal(c).scaleb(-2))
positive = st.integers(min_value=1, max_value=2_000_00).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def invoices(draw: st.DrawFn) -> list[OpenInvoice]:
    n = draw(st.integers(min_value=0, max_value=25))
    start = date(2026, 1, 1)
    return [
        OpenInvoice(
            f"I{i}",
            start + timedelta(days=draw(st.integers(0, 90))),
            draw(st.sampled_from(["AET", "AET", "BCBS"])),
            draw(cents),
        )
        for i in range(n)
    ]


@given(invoices(), positive)
def test_lump_sum_properties(invs: list[OpenInvoice], amount: Decimal) -> None:
    plan = plan_insurance_payment(invs, "AET", amount=amount)
    by_id = {i.invoice_id: i for i in invs}
    assert plan.applied + plan.unapplied == amount == plan.total
    assert plan.unapplied >= 0
    for a in plan.allocations:
        inv = by_id[a.invoice_id]
        assert inv.owed_by == "AET"
        assert Decimal("0") < a.amount <= inv.ins_open
    # oldest first: every allocation but the last pays its invoice in full
    keys = [(by_id[a.invoice_id].service_date, a.invoice_id) for a in plan.allocations]
    assert keys == sorted(keys)
    for a in plan.allocations[:-1]:
        assert a.amount == by_id[a.invoice_id].ins_open
    # nothing open is skipped while money is left
    if plan.unapplied > 0:
        open_aet = sum((i.ins_open for i in invs if i.payer_id == "AET"), Decimal("0"))
        assert plan.applied == open_aet


@given(invoices(), st.data())
def test_picks_properties(invs: list[OpenInvoice], data: st.DataObject) -> None:
    payable = [i for i in invs if i.ins_open > 0]
    if not payable:
        return
    chosen = data.draw(st.lists(st.sampled_from(payable), min_size=1, unique_by=lambda i: i.invoice_id))
    picks = []
    for inv in chosen:
        partial = data.draw(st.booleans())
        amount = (
            data.draw(st.integers(1, int(inv.ins_open * 100)).map(lambda c: Decimal(c).scaleb(-2))) if partial else None
        )
        picks.append(InvoicePick(inv.invoice_id, amount))
    extra = data.draw(cents)
    # AET is the client's secondary: on BCBS's invoices it meets the part due from it
    plan = plan_insurance_payment(invs, "AET", picks=picks, chain=("BCBS", "AET"))
    assert plan.unapplied == 0 and plan.total == plan.applied
    for pick, alloc in zip(picks, plan.allocations, strict=True):
        assert alloc.invoice_id == pick.invoice_id
        assert alloc.amount == (
            pick.amount
            if pick.amount is not None
            else next(i.ins_open for i in invs if i.invoice_id == pick.invoice_id)
        )
    bigger = (
        plan_insurance_payment(invs, "AET", picks=picks, amount=plan.total + extra, chain=("BCBS", "AET"))
        if plan.total + extra > 0
        else plan
    )
    assert bigger.allocations == plan.allocations and bigger.unapplied == extra


def test_partial_above_open_is_refused() -> None:
    inv = [OpenInvoice("I1", date(2026, 1, 1), "AET", Decimal("10.00"))]
    with pytest.raises(PaymentRefused, match=r"more than its open Ins Amt Due of 10\.00"):
        plan_insurance_payment(inv, "AET", picks=[InvoicePick("I1", Decimal("10.01"))])


def test_nothing_entered_is_refused() -> None:
    with pytest.raises(PaymentRefused, match="Enter a Total Amount or tick"):
        plan_insurance_payment([], "AET")


def _inv(invoice_id: str, payer: str, due_from: str | None = None, open_: str = "100.00") -> OpenInvoice:
    return OpenInvoice(invoice_id, date(2026, 1, 1), payer, Decimal(open_), due_from)


def test_a_secondary_on_the_primarys_invoice_meets_the_part_due_from_it() -> None:
    plan = plan_insurance_payment([_inv("I1", "UHC")], "AET", picks=[InvoicePick("I1")], chain=("UHC", "AET"))
    (alloc,) = plan.allocations
    assert alloc.amount == Decimal("100.00")
    assert alloc.meets == "the part due from AET, after UHC (coordination of benefits)"


def test_the_payer_an_invoice_waits_on_meets_its_own_part() -> None:
    # UHC adjudicated; the rest waits on AET
    plan = plan_insurance_payment([_inv("I1", "UHC", "AET")], "AET", picks=[InvoicePick("I1")], chain=("UHC", "AET"))
    assert plan.allocations[0].meets == "the Ins Amt Due from AET"


@pytest.mark.parametrize(
    "invoice, payer",
    [
        (_inv("I1", "AET"), "UHC"),  # the primary on an invoice billed to the secondary
        (_inv("I1", "UHC", "AET"), "UHC"),  # the primary again, after its adjudication moved the rest to AET
        (_inv("I1", "BCBS"), "UHC"),  # a payer outside the invoice's chain
    ],
)
def test_money_on_another_payers_invoice_needs_confirmation(invoice: OpenInvoice, payer: str) -> None:
    with pytest.raises(OtherPayersInvoice, match=rf"Invoice I1: its open Ins Amt Due is owed by \w+, not {payer}"):
        plan_insurance_payment([invoice], payer, picks=[InvoicePick("I1", Decimal("10.00"))], chain=("UHC", "AET"))
    plan = plan_insurance_payment(
        [invoice], payer, picks=[InvoicePick("I1", Decimal("10.00"))], chain=("UHC", "AET"), confirm_other_payer=True
    )
    assert plan.allocations[0].amount == Decimal("10.00")
    assert plan.allocations[0].meets.endswith("(confirmed by the analyst)")


def test_a_lump_sum_goes_to_the_invoices_owed_by_the_payer() -> None:
    invs = [_inv("I1", "UHC"), _inv("I2", "UHC", "AET", "30.00"), _inv("I3", "AET", None, "20.00")]
    plan = plan_insurance_payment(invs, "AET", amount=Decimal("60.00"), chain=("UHC", "AET"))
    assert [(a.invoice_id, a.amount) for a in plan.allocations] == [("I2", Decimal("30.00")), ("I3", Decimal("20.00"))]
    assert plan.unapplied == Decimal("10.00")
