"""``recon app`` (the workbench as a Voilà page) used by an analyst in Chromium.

Why: ``recon app`` is what an analyst without JupyterLab opens. The widget tests
(tests/ui) prove each handler from Python and test_lab_cli proves the page is
served; only a real browser proves the wiring of the served page end to end: pick
a client in Clients & Ledger, Accept Payment → Insurance Payment → tick an invoice
→ Payment Method → Record Payment, then in the ERA batch tab upload an 835,
preview and post it, and appeal one of its denials from the worklist.

The app runs as the analyst starts it (``python -m recon.cli app --db ...``) on the
tiny practice of tests/conftest.py; the 835 is the hand-written Aetna file of
tests/deposits/era_files.py (two denials, one paid claim, one claim for no
invoice), uploaded through the page's own file picker. What was recorded is
checked in the page and, after SIGTERM stopped the app and its kernel, in the
ledger file opened read-only.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lab import ARTIFACTS_DIR, REPO_ROOT, collect_console, free_port, save_failure_artifacts
from ledger_helpers import ledger_cell, open_released

from recon.cli import main as recon_cli
from tests.conftest import write_practice
from tests.deposits.era_files import AETNA_MARCH, write_835

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

#: Kernel round trips on a loaded 2-core box can take a while; no test sleeps.
UI_TIMEOUT = 60_000
#: Voilà starts a kernel and runs the page's cell before it sends the page.
RENDER_TIMEOUT = 240_000
PAYMENT_NUMBER = "CHK-55120"
APPEAL_REASON = "medical records sent"


class App:
    """One ``recon app`` subprocess on a free loopback port."""

    def __init__(self, db: Path, folder: Path) -> None:
        self.db = db
        self.port = free_port()
        self.log_path = folder / "app.log"
        env = {**os.environ, "RECON_USER": "ana", "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}
        env.pop("RECON_DB", None)  # --db names the ledger
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recon.cli", "app", "--db", str(db), "--no-browser", "--",
             f"--port={self.port}", "--Voila.ip=127.0.0.1"],
            cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_listening(self, seconds: float = 120) -> None:
        """Until Voilà accepts connections (it starts in a few seconds; the page renders later)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"recon app exited with {self.proc.returncode}: {self.log_path.read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.25)
        raise AssertionError(f"recon app did not listen on {self.port} within {seconds:.0f}s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> int:
        """SIGTERM, as a terminal's close does; returns the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    assert recon_cli(["load", str(write_practice(tmp_path / "practice")), "--db", str(path)]) == 0
    return path


@pytest.fixture
def app(db: Path, tmp_path: Path) -> Iterator[App]:
    started = App(db, tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def app_page(request: pytest.FixtureRequest, browser: Browser, app: App) -> Iterator[Page]:
    """A fresh browser context on the app; on failure: screenshot, console and the app's log in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    console = collect_console(pg)
    try:
        yield pg
    finally:
        failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
        if failed:
            saved = save_failure_artifacts(request.node.nodeid, page=pg, console=console)
            ARTIFACTS_DIR.mkdir(exist_ok=True)
            log = ARTIFACTS_DIR / f"FAILED-{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.nodeid)}-app.log"
            if app.log_path.exists():
                log.write_bytes(app.log_path.read_bytes())
                saved.append(log)
            print("browser test artifacts:", *map(str, saved), sep="\n  ")
        context.close()


def _option_label(select: Locator, needle: str) -> str:
    """The drop-down choice containing ``needle``, as the page writes it (no-break spaces kept)."""
    labels: list[str] = select.locator("option").evaluate_all("os => os.map(o => o.label)")
    found = [label for label in labels if needle in label.replace("\xa0", " ")]
    assert len(found) == 1, f"no single choice with {needle!r} in {labels}"
    return found[0]


def test_the_app_records_a_payment_posts_a_batch_and_works_an_exception(
    app_page: Page, app: App, db: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    t0 = time.monotonic()
    page = app_page
    era_file = write_835(tmp_path / "aetna.835", AETNA_MARCH, 1)
    app.wait_listening()
    page.goto(app.url, timeout=RENDER_TIMEOUT, wait_until="domcontentloaded")
    wb = page.locator(".recon-workbench")
    expect(wb).to_be_visible(timeout=RENDER_TIMEOUT)
    t_render = time.monotonic() - t0
    assert "from recon.ui.analyst_app" not in page.content()  # the page shows no code

    # Clients & Ledger: find Avery Chen, open the Client Ledger.
    wb.get_by_label("Search", exact=True).fill("Chen")
    expect(wb.locator(".recon-client-list .recon-client-link")).to_have_count(1, timeout=UI_TIMEOUT)
    client = wb.locator(".recon-client-list").get_by_role("button", name="Avery Chen", exact=True)
    expect(client).to_be_visible(timeout=UI_TIMEOUT)
    client.click()
    expect(wb.locator(".recon-client-details")).to_contain_text("Client Details — Avery Chen", timeout=UI_TIMEOUT)
    wb.locator(".recon-ledger-button").click()
    table = wb.locator(".recon-ledger-table")
    expect(table.locator('tr[data-invoice="I8"]')).to_be_visible(timeout=UI_TIMEOUT)
    expect(ledger_cell(table, "I8", "Ins Amt Paid")).to_have_text("0.00")

    # Accept Payment → Insurance Payment → tick I8 (100.00 open) → Insurance Check → Record Payment.
    wb.get_by_role("button", name="Accept Payment").click()
    form = wb.locator(".recon-payment-form")
    expect(form).to_be_visible(timeout=UI_TIMEOUT)
    form.get_by_role("radio", name="Insurance Payment").check()
    total = form.get_by_label("Total Amount")
    expect(total).to_be_visible(timeout=UI_TIMEOUT)
    form.locator(".recon-tick-I8 input").check()
    expect(form.locator(".recon-pay-I8 input")).to_have_value("100.00", timeout=UI_TIMEOUT)
    expect(total).to_have_value("100.00", timeout=UI_TIMEOUT)
    form.get_by_label("Payment Method").select_option(label="Insurance Check")
    form.get_by_label("Insurance", exact=True).select_option(label="Aetna")
    form.get_by_label("Payment Number").fill(PAYMENT_NUMBER)
    form.get_by_label("Payment Number").press("Tab")
    record = form.get_by_role("button", name="Record Payment")
    expect(record).to_be_enabled(timeout=UI_TIMEOUT)
    record.click()
    message = form.locator(".recon-message .recon-msg")
    expect(message).to_contain_text("Recorded payment PAY-", timeout=UI_TIMEOUT)
    found = re.search(r"Recorded payment (PAY-\d+)", message.inner_text())
    assert found, message.inner_text()
    payment_id = found.group(1)
    expect(table.locator('tr[data-invoice="I8"]')).to_have_class(re.compile(r"recon-just-paid"), timeout=UI_TIMEOUT)
    expect(ledger_cell(table, "I8", "Ins Amt Paid")).to_have_text("100.00", timeout=UI_TIMEOUT)

    # ERA batch: upload the Aetna 835 through the page's picker, preview, post.
    page.get_by_role("tab", name="ERA batch").click()
    era = page.locator(".recon-era-batch")
    expect(era).to_be_visible(timeout=UI_TIMEOUT)
    with page.expect_file_chooser(timeout=UI_TIMEOUT) as chooser:  # the analyst's click opens the picker
        era.locator(".recon-era-upload").click()
    chooser.value.set_files(str(era_file))
    expect(era.locator(".recon-era-files")).to_contain_text("aetna.835", timeout=UI_TIMEOUT)
    era_message = era.locator(".recon-era-message")
    era.locator(".recon-era-preview-button").click()
    expect(era_message).to_contain_text("Preview (nothing posted): 1 file(s): 1 dry run", timeout=UI_TIMEOUT)
    expect(era.locator('.recon-era-preview .recon-era-file[data-status="dry_run"]')).to_have_count(1)
    era.locator(".recon-era-post").click()
    expect(era_message).to_contain_text("Posted batch: 1 file(s): 1 posted", timeout=UI_TIMEOUT)
    expect(era.locator('.recon-era-preview .recon-era-file[data-status="posted"]')).to_have_count(1)

    # The worklist: appeal I1's denial with a reason; it leaves the open exceptions.
    choice = era.locator(".recon-worklist-exception select")
    expect(choice.locator("option", has_text="claim I1")).to_have_count(1, timeout=UI_TIMEOUT)
    worklist = era.locator(".recon-worklist-table")
    expect(worklist).to_contain_text("I1", timeout=UI_TIMEOUT)
    choice.select_option(label=_option_label(choice, "claim I1 "))
    reason = era.locator(".recon-worklist-reason input")
    reason.fill(APPEAL_REASON)
    reason.press("Tab")
    appeal = era.locator(".recon-worklist-appeal")
    expect(appeal).to_be_enabled(timeout=UI_TIMEOUT)
    appeal.click()
    expect(era_message).to_contain_text("marked for appeal", timeout=UI_TIMEOUT)
    expect(choice.locator("option", has_text="claim I1")).to_have_count(0, timeout=UI_TIMEOUT)
    expect(choice.locator("option", has_text="claim I2")).to_have_count(1)
    for marker in ("Traceback", "most recent call last", "Error displaying widget"):
        assert marker not in page.inner_text("body"), f"the analyst sees {marker!r}"
    t_ui = time.monotonic() - t0 - t_render

    # Stopped as a terminal stops it; then the ledger file itself.
    assert app.stop() == 128 + signal.SIGTERM
    with open_released(db) as con:
        pay = con.execute(
            "SELECT client_id, payer_id, method, amount, payment_number, user_id, kind FROM payments "
            "WHERE payment_id = ?",
            [payment_id],
        ).fetchall()
        assert pay == [("C1", "AET", "insurance-check", Decimal("100.00"), PAYMENT_NUMBER, "ana", "insurance")]
        assert con.execute(
            "SELECT invoice_id, amount FROM allocations WHERE payment_id = ?", [payment_id]
        ).fetchall() == [("I8", Decimal("100.00"))]
        assert con.execute("SELECT trace_number, amount FROM remittances").fetchall() == [
            ("AET-TRACE-1", Decimal("150.00"))
        ]
        states = dict(con.execute("SELECT claim_id, status FROM exception_status").fetchall())
        assert states == {"I1": "appealed", "I2": "open", "X-404": "open"}, states
        note = con.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'denial_appeal' AND user_id = 'ana'"
        ).fetchone()
        assert note == (1,)
    print(f"\nrecon app: render {t_render:.1f}s, analyst steps {t_ui:.1f}s ({payment_id})")
