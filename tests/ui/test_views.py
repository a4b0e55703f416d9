"""Clients → Client Details → Client Ledger → Accept Payment, and a client with 3,000 invoices."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import NotFound
from recon.model import PaymentMethod
from recon.services import Recon
from recon.ui import ClientLedgerView, client_ledger, workbench
from recon.ui.ledger import LEDGER_HEADERS
from recon.ui.payment import INSURANCE_PAYMENT


def client_buttons(app: object) -> list[str]:
    return [row.children[0].description for row in app.clients.results.children]  # type: ignore[attr-defined]


def test_the_seed_path_through_the_workbench(recon: Recon) -> None:
    app = workbench(recon, user="ana", enrolled=False)
    assert client_buttons(app) == ["Avery Chen", "Blake Diaz", "Casey Ellis"]
    app.clients.search.value = "diaz"
    assert client_buttons(app) == ["Blake Diaz"]
    app.clients.search.value = "C1"
    assert client_buttons(app) == ["Avery Chen"]
    app.clients.search.value = "nobody"
    assert "No client matches" in app.clients.message.value
    app.clients.search.value = ""

    # Click on a Client Name → Client Details (policies with priority, member id, co-pay)
    app.clients.results.children[0].children[0].click()
    assert app.screen.children == (app.details,)
    details = app.details.info.value
    for text in ("Avery Chen", "Aetna", "Primary", "M100", "Blue Cross", "Secondary", "5.00",
                 "Co-pay: <b>20.00</b>", "Unapplied credit: 0.00"):  # fmt: skip
        assert text in details

    # Ledger button → Client Ledger with the seed's columns
    app.details.ledger_button.click()
    view = app.ledger_view
    assert isinstance(view, ClientLedgerView)
    assert app.screen.children == (view,)
    html = view.table.table.value
    for header in LEDGER_HEADERS:
        assert f">{header}<" in html
    assert html.count("data-invoice=") == 6

    # Accept Payment → Insurance Payment → record; the ledger refreshes in place
    view.accept_button.click()
    form = view.form
    assert form is not None and form.user_picker is app.user_picker
    form.kind.value = INSURANCE_PAYMENT
    form.tick("I2").value = True
    form.method.value = PaymentMethod.INSURANCE
    form.record_button.click()
    assert view.table.highlight == {"I2"}
    row = re.search(r'<tr data-invoice="I2" class="recon-just-paid">(.*?)</tr>', view.table.table.value)
    assert row is not None and "100.00" in row.group(1)
    assert {r.invoice_id: r.ins_amt_paid for r in recon.ledger_rows("C1")}["I2"] == Decimal("100.00")

    # Ledger in the navigation bar comes back to the same client
    app.nav_clients.click()
    assert app.screen.children == (app.clients,)
    app.nav_ledger.click()
    assert app.screen.children == (view,)


def test_a_click_on_a_client_listed_before_the_search_narrowed_still_opens_it(recon: Recon) -> None:
    """The list follows each keystroke; a click sent just before a refresh must not be lost.

    (CI saw this in Chromium: the button clicked was closed by the refresh that the
    typing caused, and Client Details never opened.)
    """
    app = workbench(recon, user="ana", enrolled=False)
    before = {row.children[0].description: row.children[0] for row in app.clients.results.children}
    app.clients.search.value = "Chen"
    assert client_buttons(app) == ["Avery Chen"]
    assert app.clients.results.children[0].children[0] is before["Avery Chen"]
    assert before["Blake Diaz"].comm is None  # the rows no longer listed are closed
    before["Avery Chen"].click()
    assert app.screen.children == (app.details,)
    assert "Avery Chen" in app.details.info.value


def test_ledger_nav_waits_for_a_client(recon: Recon) -> None:
    app = workbench(recon, user="ana", enrolled=False)
    assert app.nav_ledger.disabled


def test_workbench_opens_the_notebook_ledger_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No db given: RECON_DB (here a temp file), made from the demo practice when missing."""
    monkeypatch.setenv("RECON_DB", str(tmp_path / "demo.duckdb"))
    app = workbench(enrolled=False)
    try:
        assert (tmp_path / "demo.duckdb").exists()
        assert app.clients.pager.count == 40
    finally:
        app.recon.close()


def test_unknown_recon_user_is_named(recon: Recon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_USER", "zed")
    app = workbench(recon, enrolled=False)
    assert app.user_picker.value is None
    assert "'zed' (RECON_USER) is not a user of this ledger" in app.message.value


def test_client_ledger_for_one_client(recon: Recon) -> None:
    view = client_ledger(recon, "C2", "ana", enrolled=False)
    assert "Blake Diaz" in view.header.value
    assert view.table.rendered_rows == 1
    form = view.open_payment_form()
    assert form.open_invoice_ids == ["I6"]
    with pytest.raises(NotFound):
        client_ledger(recon, "C404", "ana")


def test_unapplied_credit_shows_on_details_and_ledger(recon: Recon) -> None:
    app = workbench(recon, user="ana", enrolled=False)
    view = app.open_ledger("C1")
    assert view is not None
    form = view.open_payment_form()
    form.kind.value = INSURANCE_PAYMENT
    form.total.value = "450.00"
    form.method.value = PaymentMethod.INSURANCE_CHECK
    form.record_button.click()
    assert "Unapplied credit <b>20.00</b>" in view.header.value
    app.open_client("C1")
    assert "Unapplied credit: 20.00" in app.details.info.value


def test_three_thousand_invoices_render_one_page(big_recon: Recon) -> None:
    view = client_ledger(big_recon, "C1", "ana", enrolled=False)
    assert len(view.table.rows) == 3000
    assert view.table.rendered_rows == 50
    assert view.table.table.value.count("data-invoice=") == 50
    assert "1–50 of 3,000" in view.table.pager.label.value
    view.table.pager.next.click()
    assert "51–100 of 3,000" in view.table.pager.label.value
    assert view.table.table.value.count("data-invoice=") == 50

    form = view.open_payment_form()
    form.kind.value = INSURANCE_PAYMENT
    assert len(form.open_invoice_ids) == 3000
    assert form.rendered_rows == 25  # widgets for one page of rows, never 3,000
    last = form.open_invoice_ids[-1]
    form.tick(last).value = True  # moves to the last page
    assert form.pager.page == form.pager.pages - 1
    assert form.rendered_rows == 25
    first = form.open_invoice_ids[0]
    form.tick(first).value = True  # back on page 1; the tick on the last page is kept
    assert form.total.value == "200.00"
    form.show_invoice(last)
    assert form.tick(last).value is True

    # a lump sum over thousands of invoices previews a bounded table
    form.tick(first).value = False
    form.tick(last).value = False
    form.total.value = "5000.00"
    assert form.preview.value.count("<tr>") <= 13
    assert "more invoices" in form.preview.value
    form.method.value = PaymentMethod.INSURANCE_EFT_ACH
    form.record_button.click()
    assert "applied 5000.00 to 50 invoice(s)" in form.message.value
    assert view.table.highlight and view.table.rendered_rows == 50
