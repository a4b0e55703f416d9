"""The analyst's app (what ``recon app`` serves) driven from Python: pick a client, record a
payment, post a batch, work an exception, read the reports; one User across the tabs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recon.model import PaymentMethod
from recon.services import Recon
from recon.ui.analyst_app import TAB_TITLES, AnalystApp, analyst_app
from recon.ui.payment import INSURANCE_PAYMENT
from tests.deposits.era_files import AETNA_MARCH, BCBS_MARCH, write_835
from tests.ui.test_era_batch import DEPOSITS


def test_the_analyst_day_through_the_app(recon: Recon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_EXPORT_DIR", str(tmp_path / "exports"))
    files = [write_835(tmp_path / "a.835", AETNA_MARCH, 1), write_835(tmp_path / "b.835", BCBS_MARCH, 2)]
    (tmp_path / "bank.csv").write_bytes(DEPOSITS)
    app = AnalystApp(recon, "ana", era_files=files, era_deposits=tmp_path / "bank.csv", enrolled=False)
    assert [app.tabs.get_title(i) for i in range(4)] == list(TAB_TITLES)
    assert "recon-analyst-app" in app._dom_classes

    # the batch is previewed at start, nothing posted
    assert "Preview (nothing posted)" in app.era.message.value
    assert recon.one("SELECT count(*) FROM remittances") == (0,)

    # Clients → Client Details → Ledger → Accept Payment → Insurance Payment → Record Payment
    wb = app.workbench
    wb.open_client("C1")
    wb.details.ledger_button.click()
    view = wb.ledger_view
    assert view is not None
    view.accept_button.click()
    form = view.form
    assert form is not None
    form.kind.value = INSURANCE_PAYMENT
    form.tick("I3").value = True
    form.method.value = PaymentMethod.INSURANCE_CHECK
    form.record_button.click()
    assert "Recorded payment" in form.message.value
    assert {r.invoice_id: r.ins_amt_paid for r in recon.ledger_rows("C1")}["I3"] == Decimal("100.00")

    # ERA batch: Post, then work an exception (appeal a denial with a reason)
    app.show("ERA batch")
    app.era.post_button.click()
    assert "Posted batch: 2 file(s)" in app.era.message.value
    denial = recon.one("SELECT exception_id FROM exceptions WHERE claim_id = 'I1'")
    assert denial is not None
    app.era.exception.value = denial[0]
    app.era.reason.value = "records sent"
    app.era.appeal_button.click()
    assert "marked for appeal" in app.era.message.value

    # Reports: refreshed when the tab opens, with the payment just recorded; export with a link
    app.show("Reports")
    tables = app.reports.tables.value
    for title in ("A/R aging by payer", "Payments by method and payer", "Reconciliation with the bank"):
        assert title in tables
    assert "100.00" in tables
    written = app.reports.export()
    assert (tmp_path / "exports" / "ledger.xlsx") in written
    assert 'class="recon-download"' in app.reports.downloads.value


def test_one_user_for_every_tab(recon: Recon) -> None:
    app = AnalystApp(recon, None, enrolled=False)
    app.workbench.user_picker.value = "ben"
    assert app.era.user_picker.value == "ben"
    app.era.user_picker.value = "ana"
    assert app.workbench.user_picker.value == "ana"


def test_the_app_opens_the_default_ledger_with_the_demo_batch(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_DB", str(db))
    app = analyst_app(demo_batch=True)
    try:
        assert len(app.era.local_files) == 3 and (db.parent / "era_demo" / "bank_deposits.csv").exists()
        assert "Preview (nothing posted)" in app.era.message.value
    finally:
        app.recon.close()
