"""Reports over the ledger: exact decimals, buckets that add up, the same numbers as the ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import matplotlib
import pytest

from recon import reports
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon

matplotlib.use("Agg")

AS_OF = date(2026, 3, 10)  # I1 (2026-01-05) is 64 days old, I8 (2026-02-09) 29


def pay(recon: Recon, **kw: object) -> str:
    request = PaymentRequest(client_id="C1", payer="AET", method=PaymentMethod.INSURANCE_CHECK, **kw)  # type: ignore[arg-type]
    return recon.record_payment(request, "ana").payment_id


def money_columns(frame: object) -> list[str]:
    return [c for c, t in frame.dtypes.items() if "decimal" in str(t)]  # type: ignore[attr-defined]


def test_ar_aging_by_payer(recon: Recon) -> None:
    pay(recon, picks=(InvoicePick("I1"),))
    aging = reports.ar_aging(recon, AS_OF)
    assert set(money_columns(aging)) == {*reports.AGING_BUCKETS, "total"}
    rows = {(r.responsibility, r.payer): r for r in aging.itertuples()}
    aet = rows[("insurance", "Aetna")]
    # I2 (57 days) 100 + I3 (50 days) 100 → 31–60; I8 (29 days) 100 → 0–30; I1 paid
    assert (aet.days_0_30, aet.days_31_60, aet.days_61_90, aet.days_over_90, aet.total) == (
        Decimal("100.00"), Decimal("200.00"), Decimal("0.00"), Decimal("0.00"), Decimal("300.00"),
    )  # fmt: skip
    assert rows[("insurance", "Blue Cross")].total == Decimal("265.00")  # I4 95 + I6 170
    # every open balance is in exactly one bucket: the report adds up to the ledger
    ledger = recon.ledger()
    assert sum(aging["total"], Decimal(0)) == sum(ledger["balance"], Decimal(0))
    for r in aging.itertuples():
        assert r.days_0_30 + r.days_31_60 + r.days_61_90 + r.days_over_90 == r.total
    assert list(aging["responsibility"])[-1] == "client"


def test_aging_leaves_out_services_after_the_date(recon: Recon) -> None:
    aging = reports.ar_aging(recon, date(2026, 1, 6))  # only I1 (Jan 5) is on or before
    assert list(aging["invoices"]) == [1, 1]


def test_payments_by_method_and_payer_leave_out_voids(recon: Recon) -> None:
    pay(recon, picks=(InvoicePick("I1"),), payment_number="A")
    voided = pay(recon, picks=(InvoicePick("I2"),), payment_number="B")
    recon.void_payment(voided, "ana", "keyed twice")
    recon.record_payment(
        PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_EFT_ACH, amount=Decimal("500.00")),
        "ana",
    )
    frame = reports.payments_by_method_and_payer(recon)
    got = {(r.method, r.payer): (r.payments, r.amount, r.unapplied) for r in frame.itertuples()}
    assert got == {
        ("Insurance Check", "Aetna"): (1, Decimal("130.00"), Decimal("0.00")),
        ("Insurance EFT/ACH", "Aetna"): (1, Decimal("500.00"), Decimal("200.00")),
    }
    assert reports.payments_by_method_and_payer(recon, start=date(2000, 1, 1), end=date(2000, 1, 2)).empty


def test_unapplied_credit_by_client_matches_client_details(recon: Recon) -> None:
    assert reports.unapplied_credit_by_client(recon).empty
    recon.record_payment(
        PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_EFT_ACH, amount=Decimal("450.00")),
        "ana",
    )
    frame = reports.unapplied_credit_by_client(recon)
    assert list(frame["client_id"]) == ["C1"]
    assert frame["unapplied"].iloc[0] == recon.client("C1").unapplied_credit == Decimal("20.00")


@pytest.mark.parametrize("plot", [reports.plot_aging, reports.plot_payments])
def test_plots_draw(recon: Recon, plot: object) -> None:
    pay(recon, picks=(InvoicePick("I1"),))
    frame = (reports.ar_aging(recon, AS_OF) if plot is reports.plot_aging
             else reports.payments_by_method_and_payer(recon))  # fmt: skip
    ax = plot(frame)  # type: ignore[operator]
    assert ax.get_title()
