"""notebooks/01_client_ledger.ipynb used by an analyst in JupyterLab, in Chromium.

Why: the Insurance Payment form is what billing analysts touch. Only a real
browser proves that the seed's steps work end to end on the notebook we ship:
Clients → click a Client Name → Client Details → Ledger → Accept Payment →
Insurance Payment → tick invoices (Total Amount follows) → a partial Payment →
Payment Method, Insurance, Payment Number, Notes → Record Payment → the
confirmation and the Client Ledger refreshed in place. A second run, as a user
without the Billing permission, must refuse in one readable line and record nothing.

Each test gets its own copy of the demo ledger and a kernelspec whose env names
it (``RECON_DB``) and the analyst (``RECON_USER``). What was recorded is checked
twice: in the page (the ledger table), and in the ledger file itself, opened
read-only after the kernel that held it shut down.

Screenshots (test-artifacts/): ledger-00-client-details.png,
ledger-01-form-filled.png, ledger-02-recorded.png, ledger-03-refused.png.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lab import LabNotebook, LabServer
from ledger_helpers import (
    RECORDED_METHODS,
    SEED_FORM_LABELS,
    SEED_LEDGER_COLUMNS,
    Scenario,
    build_demo_ledger,
    choose_scenario,
    copy_ledger,
    invoice_row_cells,
    ledger_cell,
    money,
    open_released,
    prepare_notebook,
)

from recon.services import Recon

if TYPE_CHECKING:  # imported lazily so a machine without playwright skips cleanly
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

#: Kernel round trips on a loaded 2-core box can take a while; no test sleeps.
UI_TIMEOUT = 60_000
PAYMENT_NUMBER = "CHK-774120"
NOTES = "EOB 2026-06 batch 14, browser test"


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo practice built once; each test works on its own copy."""
    return build_demo_ledger(tmp_path_factory.mktemp("ledger-template") / "demo.duckdb")


@pytest.fixture(scope="module")
def scenario(demo_template: Path) -> Scenario:
    return choose_scenario(demo_template)


def _run_notebook(page: Page, lab_server: LabServer, path: str) -> tuple[LabNotebook, Locator]:
    """Open, Run All, wait for the workbench; no error output anywhere."""
    nb = LabNotebook.open(page, lab_server, path, timeout=180)
    assert nb.run_all(timeout=300), "Run All stopped at a failing cell"
    assert nb.wait_for_widgets(timeout=90) >= 1
    nb.assert_no_output_errors()
    workbench = nb.panel.locator(".recon-workbench")
    assert workbench.count() == 1, "the notebook shows no workbench"
    return nb, workbench


def _open_client_ledger(nb: LabNotebook, wb: Locator, sc: Scenario, *, shot: str | None = None) -> Locator:
    """Clients → search → click the Client Name → Client Details → Ledger; returns the ledger table."""
    from playwright.sync_api import expect

    wb.get_by_label("Search", exact=True).fill(sc.search)
    client_button = wb.locator(".recon-client-list").get_by_role("button", name=sc.name, exact=True)
    expect(client_button).to_be_visible(timeout=UI_TIMEOUT)
    client_button.click()
    details = wb.locator(".recon-client-details")
    expect(details).to_contain_text(f"Client Details — {sc.name}", timeout=UI_TIMEOUT)
    expect(details).to_contain_text(sc.client_id)
    expect(details).to_contain_text(sc.payer_name)
    expect(details).to_contain_text(sc.other_payer_name)
    if shot:
        nb.screenshot(shot, full=True, locator=wb)
    wb.locator(".recon-ledger-button").click()
    table = wb.locator(".recon-ledger-table")
    expect(wb.locator(".recon-ledger-header")).to_contain_text(f"Client Ledger — {sc.name}", timeout=UI_TIMEOUT)
    expect(table.locator(f'tr[data-invoice="{sc.invoices[0].invoice_id}"]')).to_be_visible(timeout=UI_TIMEOUT)
    headers = [h.strip() for h in table.locator("th").all_inner_texts()]
    assert headers == list(SEED_LEDGER_COLUMNS), f"Client Ledger columns are {headers}"
    return table


def _accept_insurance_payment(wb: Locator) -> Locator:
    """Accept Payment → Insurance Payment radio; returns the form."""
    from playwright.sync_api import expect

    wb.get_by_role("button", name="Accept Payment").click()
    form = wb.locator(".recon-payment-form")
    expect(form).to_be_visible(timeout=UI_TIMEOUT)
    form.get_by_role("radio", name="Insurance Payment").check()
    expect(form.get_by_label("Total Amount")).to_be_visible(timeout=UI_TIMEOUT)
    return form


def _assert_seed_labels_readable(form: Locator) -> None:
    """Every seed label of the form is on screen and not cut off (text wider than its box)."""
    from playwright.sync_api import expect

    for label in ("Total Amount", "Payment Method", "Insurance", "Payment Number", "Notes"):
        expect(form.get_by_label(label, exact=True)).to_be_visible()
    expect(form.get_by_role("radio", name="Insurance Payment")).to_be_visible()
    expect(form.get_by_role("button", name="Record Payment")).to_be_visible()
    expect(form.locator(".recon-invoice-header")).to_contain_text("Payment")
    texts: list[str] = [t.strip() for t in form.locator("label.widget-label").all_inner_texts()]
    texts += [t.strip() for t in form.locator(".recon-invoice-header .recon-cell").all_inner_texts()]
    missing = [
        label
        for label in SEED_FORM_LABELS
        if label not in texts and label not in ("Insurance Payment", "Record Payment")
    ]
    assert not missing, f"seed labels not shown as labels: {missing} (labels: {texts})"
    cut = form.evaluate(
        """(el) => Array.from(el.querySelectorAll('label.widget-label, .recon-invoice-header .recon-cell, button'))
             .filter(n => n.offsetParent !== null && n.scrollWidth > n.clientWidth + 1)
             .map(n => n.innerText.trim())"""
    )
    assert not cut, f"labels cut off in the Insurance Payment form: {cut}"


def _option_texts(select: Locator) -> list[str]:
    """A drop-down's choices as read (ipywidgets writes spaces as no-break spaces)."""
    return [t.replace("\xa0", " ").strip() for t in select.locator("option").all_inner_texts() if t.strip()]


def _no_traceback(nb: LabNotebook) -> None:
    text = nb.panel.inner_text()
    for marker in ("Traceback", "Error displaying widget", "most recent call last"):
        assert marker not in text, f"the analyst sees {marker!r} in the notebook"


def test_record_insurance_payment_in_the_client_ledger(
    page: Page, lab_server: LabServer, demo_template: Path, scenario: Scenario, tmp_path: Path
) -> None:
    """The seed's Record an Insurance Payment, step by step, as a user with Billing."""
    from playwright.sync_api import expect

    t0 = time.monotonic()
    sc = scenario
    db = copy_ledger(demo_template, tmp_path / "ledger.duckdb")
    path = prepare_notebook(lab_server, db, "ana", "ledger-ana")
    nb, wb = _run_notebook(page, lab_server, path)
    t_run = time.monotonic() - t0
    expect(wb.get_by_label("User", exact=True)).to_have_value(re.compile(r"\(ana\)$"))

    table = _open_client_ledger(nb, wb, sc, shot="ledger-00-client-details")
    paid_before = {
        i.invoice_id: money(ledger_cell(table, i.invoice_id, "Ins Amt Paid").inner_text()) for i in sc.invoices
    }
    assert paid_before == {i.invoice_id: i.ins_amt_paid for i in sc.invoices}

    form = _accept_insurance_payment(wb)
    total_box = form.get_by_label("Total Amount")
    expect(total_box).to_have_value("")

    # Tick two invoices: each Payment fills with its open Ins Amt Due, Total Amount is their sum.
    first, second, third = sc.invoices
    shown: dict[str, Decimal] = {}
    for inv in (first, second):
        cells = invoice_row_cells(form, inv.invoice_id)
        assert money(cells["Ins Amt Due"]) - money(cells["Ins Amt Paid"]) - money(cells["Ins Adjusted"]) == money(
            cells["Open"]
        ), f"row {inv.invoice_id}: {cells}"
        shown[inv.invoice_id] = money(cells["Open"])
        form.locator(f".recon-tick-{inv.invoice_id} input").check()
        expect(form.locator(f".recon-pay-{inv.invoice_id} input")).to_have_value(
            f"{shown[inv.invoice_id]:.2f}", timeout=UI_TIMEOUT
        )
    ticked_sum = shown[first.invoice_id] + shown[second.invoice_id]
    assert ticked_sum == first.ins_open + second.ins_open, "the page's open Ins Amt Due differs from the ledger"
    expect(total_box).to_have_value(f"{ticked_sum:.2f}", timeout=UI_TIMEOUT)

    # A smaller amount typed in the third invoice's Payment field: a partial payment.
    assert sc.partial < money(invoice_row_cells(form, third.invoice_id)["Open"])
    pay_third = form.locator(f".recon-pay-{third.invoice_id} input")
    pay_third.fill(f"{sc.partial:.2f}")
    pay_third.press("Tab")
    expect(total_box).to_have_value(f"{ticked_sum + sc.partial:.2f}", timeout=UI_TIMEOUT)
    expect(form.locator(f".recon-tick-{third.invoice_id} input")).not_to_be_checked()
    expect(form.locator(".recon-selection")).to_contain_text("2 ticked, 1 partial", timeout=UI_TIMEOUT)
    preview = form.locator(".recon-preview")
    for invoice_id, amount in sc.expected_allocations.items():
        expect(preview.locator("tr", has_text=invoice_id)).to_contain_text(f"{amount:.2f}", timeout=UI_TIMEOUT)

    # Payment Method (recorded methods only: not enrolled in processing), Insurance, number, notes.
    method = form.get_by_label("Payment Method")
    options = _option_texts(method)
    assert options == list(RECORDED_METHODS), f"Payment Method offers {options}"
    method.select_option(label="Insurance Check")
    insurance = form.get_by_label("Insurance", exact=True)
    insurer_options = _option_texts(insurance)
    assert sorted(insurer_options) == sorted([sc.payer_name, sc.other_payer_name]), insurer_options
    insurance.select_option(label=sc.other_payer_name)  # a real choice: away and back
    insurance.select_option(label=sc.payer_name)
    form.get_by_label("Payment Number").fill(PAYMENT_NUMBER)
    form.get_by_label("Notes").fill(NOTES)
    form.get_by_label("Notes").press("Tab")
    record = form.get_by_role("button", name="Record Payment")
    expect(record).to_be_enabled(timeout=UI_TIMEOUT)
    expect(preview).to_contain_text(f"Total Amount {ticked_sum + sc.partial:.2f}", timeout=UI_TIMEOUT)
    _assert_seed_labels_readable(form)
    nb.screenshot("ledger-01-form-filled", full=True, locator=wb)

    # Record Payment: confirmation with the payment id, the ledger refreshed in place. A double
    # click, as analysts do: the file check below proves it recorded one payment, not two.
    record.dblclick()
    message = form.locator(".recon-message .recon-msg")
    expect(message).to_contain_text("Recorded payment PAY-", timeout=UI_TIMEOUT)
    text = message.inner_text()
    match = re.search(r"Recorded payment (PAY-\d+)", text)
    assert match, text
    payment_id = match.group(1)
    assert f"{ticked_sum + sc.partial:.2f}" in text and "Insurance Check" in text and sc.payer_name in text, text
    assert "applied" in text and "3 invoice(s)" in text, text
    for invoice_id, amount in sc.expected_allocations.items():
        row = table.locator(f'tr[data-invoice="{invoice_id}"]')
        expect(row).to_have_class(re.compile(r"recon-just-paid"), timeout=UI_TIMEOUT)
        expect(ledger_cell(table, invoice_id, "Ins Amt Paid")).to_have_text(f"{paid_before[invoice_id] + amount:.2f}")
    expect(table.locator("tr.recon-just-paid")).to_have_count(3)
    # the form is ready for the next payment; Record Payment rests until an edit (no double record)
    expect(total_box).to_have_value("", timeout=UI_TIMEOUT)
    expect(record).to_be_disabled()
    expect(form.locator(f".recon-tick-{first.invoice_id}")).to_have_count(0)  # paid in full: no longer open
    expect(form.locator(f".recon-pay-{third.invoice_id} input")).to_have_value("")  # still open, for the rest
    _no_traceback(nb)
    nb.assert_no_output_errors()
    nb.screenshot("ledger-02-recorded", full=True, locator=wb)
    t_ui = time.monotonic() - t0 - t_run

    # The ledger file itself, once the kernel let go of it: exactly this payment, these allocations.
    lab_server.shutdown_kernels()
    with open_released(db) as con:
        pay = con.execute(
            "SELECT client_id, payer_id, method, amount, payment_number, notes, user_id, kind "
            "FROM payments WHERE payment_id = ?",
            [payment_id],
        ).fetchall()
        assert pay == [
            (
                sc.client_id,
                sc.payer_id,
                "insurance-check",
                ticked_sum + sc.partial,
                PAYMENT_NUMBER,
                NOTES,
                "ana",
                "insurance",
            )
        ]
        allocations = con.execute(
            "SELECT invoice_id, amount, kind FROM allocations WHERE payment_id = ? ORDER BY invoice_id", [payment_id]
        ).fetchall()
        assert {inv: amt for inv, amt, _k in allocations} == sc.expected_allocations
        assert len(allocations) == 3 and {k for *_x, k in allocations} == {"insurance"}
        others = con.execute(
            "SELECT payment_id FROM payments WHERE client_id = ? AND payment_id <> ?", [sc.client_id, payment_id]
        ).fetchall()
        assert others == [], f"a double click (or anything else) recorded more for {sc.client_id}: {others}"
    with Recon.open(db) as recon:  # the library's own view of the Client Ledger agrees
        rows = {r.invoice_id: r for r in recon.ledger_rows(sc.client_id)}
        for invoice_id, amount in sc.expected_allocations.items():
            assert rows[invoice_id].ins_amt_paid == paid_before[invoice_id] + amount
    print(f"\nclient ledger notebook: open+run-all {t_run:.1f}s, analyst steps {t_ui:.1f}s ({payment_id})")


def test_record_payment_refused_without_billing_permission(
    page: Page, lab_server: LabServer, demo_template: Path, scenario: Scenario, tmp_path: Path
) -> None:
    """Ben (scheduling only) fills the same form: one line naming Billing, nothing recorded."""
    from playwright.sync_api import expect

    sc = scenario
    db = copy_ledger(demo_template, tmp_path / "ledger.duckdb")
    path = prepare_notebook(lab_server, db, "ben", "ledger-ben")
    nb, wb = _run_notebook(page, lab_server, path)
    expect(wb.get_by_label("User", exact=True)).to_have_value(re.compile(r"\(ben\)$"))

    table = _open_client_ledger(nb, wb, sc)
    ledger_before = table.inner_text()
    form = _accept_insurance_payment(wb)
    first, second, _third = sc.invoices
    for inv in (first, second):
        form.locator(f".recon-tick-{inv.invoice_id} input").check()
    total = first.ins_open + second.ins_open
    expect(form.get_by_label("Total Amount")).to_have_value(f"{total:.2f}", timeout=UI_TIMEOUT)
    form.get_by_label("Payment Method").select_option(label="Insurance EFT/ACH")
    form.get_by_label("Insurance", exact=True).select_option(label=sc.payer_name)
    form.get_by_label("Payment Number").fill("EFT-31337")
    form.get_by_label("Notes").fill("should be refused")
    form.get_by_label("Notes").press("Tab")
    record = form.get_by_role("button", name="Record Payment")
    expect(record).to_be_enabled(timeout=UI_TIMEOUT)
    record.click()

    error = form.locator(".recon-message .recon-msg-error")
    expect(error).to_contain_text("Billing permission", timeout=UI_TIMEOUT)
    line = error.inner_text().strip()
    assert "\n" not in line and len(line) < 300, f"the refusal is not one line: {line!r}"
    assert "ben" in line.lower(), line
    expect(form.locator(".recon-msg-ok")).to_have_count(0)
    expect(table.locator("tr.recon-just-paid")).to_have_count(0)
    assert table.inner_text() == ledger_before, "the Client Ledger changed after a refused payment"
    expect(record).to_be_enabled()  # the analyst may fix the user and retry
    _no_traceback(nb)
    nb.assert_no_output_errors()
    nb.screenshot("ledger-03-refused", full=True, locator=wb)

    lab_server.shutdown_kernels()
    with open_released(db) as con:
        recorded = con.execute("SELECT payment_id FROM payments WHERE client_id = ?", [sc.client_id]).fetchall()
        assert recorded == [], f"a refused payment was recorded: {recorded}"
        assert con.execute("SELECT count(*) FROM payments WHERE user_id = 'ben'").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM allocations WHERE client_id = ?", [sc.client_id]).fetchone() == (0,)
