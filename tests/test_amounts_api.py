"""Issue 8 item 7: the library refuses amounts that are not exact two-place money.

Before: ``record_payment`` with ``Decimal("100.005")`` recorded 100.01 (its receipt
said 100.005, its audit 100.00), and a Payment of ``0.004`` recorded 0.00. The CLI
and the form refused these; now the one API does, when the request is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import InvalidAmount
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon


@pytest.fixture
def db(any_db: Path | str) -> Path | str:
    """These tests run on both engines (a DuckDB file, a PostgreSQL database)."""
    return any_db


@pytest.fixture
def recon(db: Path) -> Iterator[Recon]:
    with Recon.open(db) as r:
        yield r


def _nothing_recorded(recon: Recon) -> None:
    assert recon.one("SELECT count(*) FROM payments") == (0,)
    assert recon.one("SELECT count(*) FROM allocations") == (0,)
    assert recon.one("SELECT count(*) FROM audit_log WHERE action = 'record_payment'") == (0,)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("100.005"), "Total Amount: 100.005 is not valid; expected at most two decimal places"),
        (Decimal("0.004"), "Total Amount: 0.004 is not valid; expected at most two decimal places"),
        (Decimal("NaN"), "Total Amount: NaN is not valid; expected a finite amount"),
        (Decimal("Infinity"), "Total Amount: Infinity is not valid; expected a finite amount"),
        (100.5, "Total Amount: 100.5 is not valid; expected an exact Decimal amount"),
        ("100.50", "Total Amount: '100.50' is not valid; expected an exact Decimal amount"),
        (True, "Total Amount: True is not valid"),
    ],
)
def test_total_amount_must_be_exact_money(recon: Recon, value: object, expected: str) -> None:
    with pytest.raises(InvalidAmount) as refused:
        recon.record_payment(PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, amount=value), "ana")  # type: ignore[arg-type]
    assert str(refused.value).startswith(expected), str(refused.value)
    assert refused.value.field == "Total Amount"
    _nothing_recorded(recon)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.004"), "Payment on invoice I1: 0.004 is not valid; expected at most two decimal places"),
        (Decimal("65.555"), "Payment on invoice I1: 65.555 is not valid; expected at most two decimal places"),
        (Decimal("-Infinity"), "Payment on invoice I1: -Infinity is not valid; expected a finite amount"),
        (0.1, "Payment on invoice I1: 0.1 is not valid; expected an exact Decimal amount"),
    ],
)
def test_invoice_payment_must_be_exact_money(recon: Recon, value: object, expected: str) -> None:
    with pytest.raises(InvalidAmount) as refused:
        recon.record_payment(
            PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, picks=(InvoicePick("I1", value),)),  # type: ignore[arg-type]
            "ana",
        )
    assert str(refused.value).startswith(expected), str(refused.value)
    _nothing_recorded(recon)


def test_a_changed_request_is_checked_again(recon: Recon) -> None:
    request = PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, amount=Decimal("10.00"))
    with pytest.raises(InvalidAmount, match="Total Amount"):
        dataclasses.replace(request, amount=Decimal("10.001"))
    _nothing_recorded(recon)


def test_exact_amounts_are_recorded_as_given(recon: Recon) -> None:
    trailing = PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, amount=Decimal("100.000"))
    assert trailing.amount == Decimal("100.00") and str(trailing.amount) == "100.00"
    whole = PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, picks=[InvoicePick("I1", 30)])  # type: ignore[arg-type]
    assert whole.picks == (InvoicePick("I1", Decimal("30.00")),)
    plan = recon.plan_payment(whole)
    assert plan.total == Decimal("30.00")
    receipt = recon.record_payment(whole, "ana")
    assert receipt.amount == Decimal("30.00") and receipt.allocations == (("I1", Decimal("30.00")),)
    assert recon.one("SELECT amount FROM payments") == (Decimal("30.00"),)
