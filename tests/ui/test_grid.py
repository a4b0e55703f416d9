"""The grids of long tables: exact amounts as text, sort/filter/paging options, every table."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon
from recon.ui.grid import TABLES, TablesView, grid, grid_frame, table_frame


def test_amounts_reach_the_grid_as_exact_text(recon: Recon) -> None:
    frame = grid_frame(recon.ledger("C1"))
    row = frame[frame["invoice_id"] == "I1"].iloc[0]
    assert row["fee"] == "150.00" and isinstance(row["fee"], str)
    assert row["service_date"] == "2026-01-05"
    assert not any(isinstance(v, float) for v in frame.to_numpy().ravel())


def test_the_grid_sorts_filters_and_pages(big_recon: Recon) -> None:
    itables = pytest.importorskip("itables.widget")
    ledger = big_recon.ledger("C1")
    widget = grid(ledger, "ledger")
    assert isinstance(widget, itables.ITable)
    assert "recon-grid" in widget._dom_classes and "recon-grid-ledger" in widget._dom_classes
    args = widget._dt_args
    assert args["pageLength"] == 25
    assert args["layout"]["topEnd"] == "search" and args["layout"]["bottomEnd"] == "paging"
    data = json.loads(args["data_json"])
    assert len(data) == len(ledger) == 3000  # every row: the browser pages, nothing is cut
    assert any("120.00" in row for row in data)


def test_without_itables_a_table_says_what_to_install(recon: Recon, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "itables.widget", None)
    widget = grid(recon.payments(), "payments")
    assert "itables" in widget.value and "recon-grid" in widget._dom_classes


def test_every_table_opens(recon: Recon) -> None:
    recon.record_payment(PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CHECK, picks=(InvoicePick("I2"),)), "ana")
    for table in TABLES:
        table_frame(recon, table)
    assert Decimal("100.00") in set(table_frame(recon, "Payments", "C1")["amount"])
    view = TablesView(recon)
    view.choice.value = "Payments"
    view.client.value = "C1"
    assert view.current is not None and "recon-grid-payments" in view.current._dom_classes
    view.choice.value = "Worklist"
    assert view.client.layout.display == "none" and "recon-grid-worklist" in view.current._dom_classes
    assert view.message.value == ""
