"""Card forms in a real browser: Stripe (localstripe's Stripe.js) and Vantage (Accept.js stand-in).

Why: the promise that the card never touches Python can only be checked where the
card is typed. Each test opens a client's ledger in JupyterLab, goes Accept
Payment → Insurance Payment → tick an invoice → Insurance Credit/Debit Card →
Charge Payment Method, types a test card into the processor's form key by key,
submits, and reads the outcome in the form, in the ledger view and — by a cell
run in the kernel — in the ledger database. Each test then greps every file it
wrote (its ledger file, its saved notebook with the widget state, the server and
kernel logs, the browser console) for the card numbers: no test depends on
another having run, or on how tests are spread over workers.

The peers (localstripe; the Authorize.Net test double) are started by the
session fixtures of ``tests/peers/fixtures.py`` on loopback; the kernels get the
practice's payment settings through a kernelspec's environment, as a practice
would set them.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab import ARTIFACTS_DIR, LabNotebook, LabServer, write_notebook
from playwright.sync_api import Locator, Page, expect

from recon.cli import main as recon_cli
from tests.conftest import write_practice
from tests.peers import authnet_server
from tests.peers.fixtures import (  # noqa: F401  (session fixtures, found by name)
    STRIPE_PUBLISHABLE,
    STRIPE_SECRET,
    authnet_url,
    localstripe_url,
)

STRIPE_OK = "4242424242424242"
STRIPE_DECLINED = "4000000000000341"  # localstripe: accepted by the form, declined when charged
VANTAGE_OK = "4111111111111111"
VANTAGE_DECLINE_ZIP = "46282"  # Authorize.Net sandbox trigger: declined
CARD_NUMBERS = (STRIPE_OK, STRIPE_DECLINED, VANTAGE_OK)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

CELLS = [
    ("markdown", "# Accept an insurer's card\nThe card goes to the processor, not to Python."),
    """\
import os
from recon.services import Recon
from recon.ui import client_ledger

recon = Recon.open(os.environ["RECON_DB"])
view = client_ledger(recon, "C1", "ana")
view
""",
    """\
rows = recon.execute(
    "SELECT payment_id, method, amount, processor, card_brand, card_last4 "
    "FROM payments WHERE client_id = 'C1' ORDER BY created_at"
).fetchall()
tries = recon.execute(
    "SELECT status, processor, reason FROM card_attempts ORDER BY created_at"
).fetchall()
print("PAYMENTS", [(r[0], r[1], str(r[2]), r[3], r[4], r[5]) for r in rows])
print("ATTEMPTS", tries)
""",
    """\
import ipywidgets, json
state = json.dumps(ipywidgets.Widget.get_manager_state(drop_defaults=False), default=str)
print("WIDGET STATE", len(state), "chars")
""",
]


@pytest.fixture(scope="module", autouse=True)
def _save_widget_state(lab_server: LabServer) -> None:
    """Save widget state into the .ipynb, so the final grep also reads what widgets held."""
    target = lab_server.home / "settings" / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"saveState": True}))


def _reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5).close()


def _settings_env(processor: str, localstripe: str, authnet: str) -> dict[str, str]:
    if processor == "stripe":
        _reset(localstripe + "/_config/data")
        return {
            "RECON_PROCESSOR": "stripe",
            "RECON_STRIPE_SECRET_KEY": STRIPE_SECRET,
            "RECON_STRIPE_PUBLISHABLE_KEY": STRIPE_PUBLISHABLE,
            "RECON_STRIPE_API_BASE": localstripe,
            "RECON_STRIPE_JS_URL": localstripe + "/js.stripe.com/v3/",
        }
    _reset(authnet + "/_test/data")
    return {
        "RECON_PROCESSOR": "vantage",
        "RECON_VANTAGE_API_LOGIN_ID": authnet_server.LOGIN,
        "RECON_VANTAGE_TRANSACTION_KEY": authnet_server.TRANSACTION_KEY,
        "RECON_VANTAGE_CLIENT_KEY": authnet_server.CLIENT_KEY,
        "RECON_VANTAGE_API_URL": authnet + "/xml/v1/request.api",
        "RECON_VANTAGE_ACCEPT_JS_URL": authnet + "/v1/Accept.js",
    }


@dataclass(frozen=True)
class CardCase:
    """One card test's notebook, the folder it writes to and its browser console."""

    nb: LabNotebook
    folder: Path
    console: list[str]


@pytest.fixture
def card_notebook(
    request: pytest.FixtureRequest,
    lab_server: LabServer,
    localstripe_url: str,  # noqa: F811
    authnet_url: str,  # noqa: F811
) -> Iterator[Any]:
    """Make ``(page, processor)`` → an open notebook on a fresh tiny ledger for that processor."""

    def make(page: Page, processor: str) -> CardCase:
        case = f"card-{processor}-{secrets.token_hex(3)}"
        folder = lab_server.root / case
        console: list[str] = []
        db = folder / "ledger.duckdb"
        assert recon_cli(["load", str(write_practice(folder / "practice")), "--db", str(db)]) == 0
        env = {
            "RECON_DB": str(db),
            "RECON_USER": "ana",
            **_settings_env(processor, localstripe_url, authnet_url),
        }
        kernel = lab_server.add_kernelspec(case, env)
        write_notebook(folder / "cards.ipynb", CELLS, kernel_name=kernel)
        page.on("console", lambda msg: console.append(msg.text))
        page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
        nb = LabNotebook.open(page, lab_server, f"{case}/cards.ipynb")
        assert nb.run_all(), f"run-all failed: {nb.output_errors()}"
        nb.wait_for_widgets()
        nb.assert_no_output_errors()
        return CardCase(nb, folder, console)

    yield make


def _open_card_form(nb: LabNotebook, processor: str) -> Locator:
    """Accept Payment → Insurance Payment → tick I1 → card method → Charge Payment Method.

    The seed names that button per processor: Charge Payment Method for Stripe, Save
    (before the card fields) for Vantage.
    """
    panel = nb.panel
    panel.get_by_role("button", name="Accept Payment").click()
    panel.locator(".recon-payment-kind label", has_text="Insurance Payment").click()
    panel.locator(".recon-tick-I1 input[type=checkbox]").check()
    expect(panel.locator(".recon-total-amount input")).to_have_value("130.00")
    panel.get_by_label("Payment Method").select_option(label="Insurance Credit/Debit Card")
    opener = "Charge Payment Method" if processor == "stripe" else "Save"
    # Anchored at the end only: the button's accessible name starts with its icon's glyph.
    panel.get_by_role("button", name=re.compile(rf"{re.escape(opener)}$")).click()
    form = panel.locator(".recon-card-form")
    expect(form.locator(".recon-card-heading")).to_contain_text("Charge 130.00")
    return form


def _type(locator: Locator, text: str) -> None:
    locator.click()
    locator.press_sequentially(text, delay=25)


def _fill_stripe(form: Locator, number: str) -> None:
    for label in ("Card Number", "Expiration", "CVC", "Country", "Zip"):
        expect(form.locator(".recon-card-label", has_text=re.compile(f"^{label}$"))).to_be_visible()
    _type(form.get_by_label("Card Number"), number)
    _type(form.locator(".recon-card-expiration input").nth(0), "12")
    _type(form.locator(".recon-card-expiration input").nth(1), "34")
    _type(form.get_by_label("CVC"), "123")
    form.get_by_label("Country").select_option(label="United States")
    _type(form.get_by_label("Zip"), "10001")


def _fill_vantage(form: Locator, number: str, zip_code: str) -> None:
    for label in ("Name on Card", "Card Number", "Expiration Date", "Billing Zip Code"):
        expect(form.locator(".recon-card-label", has_text=re.compile(f"^{label}$"))).to_be_visible()
    _type(form.get_by_label("Name on Card"), "Pat Payer")
    _type(form.get_by_label("Card Number"), number)
    _type(form.get_by_label("Expiration Date"), "12/34")
    _type(form.get_by_label("Billing Zip Code"), zip_code)


def _kernel_ledger(nb: LabNotebook) -> str:
    idx = nb.cell_index('print("PAYMENTS"')
    assert nb.run_cell(idx)
    return nb.cell_stdout(idx)


def _save(nb: LabNotebook) -> None:
    """Save the notebook (outputs and widget state) like Ctrl+S."""
    idx = nb.cell_index("WIDGET STATE")
    assert nb.run_cell(idx)
    nb._execute("docmanager:save", None, 30, "the notebook to save")


def _assert_card_fields_empty(form: Locator) -> None:
    for input_ in form.locator("input").all():
        value = input_.input_value()
        assert not re.search(r"\d{12,}", value), "the card number stayed in the page"


@pytest.mark.parametrize("processor", ["stripe", "vantage"])
def test_card_charge_through_the_processor_form(
    page: Page, card_notebook: Any, processor: str, lab_server: LabServer
) -> None:
    case = card_notebook(page, processor)
    nb = case.nb
    form = _open_card_form(nb, processor)
    if processor == "stripe":
        _fill_stripe(form, STRIPE_OK)
        last4 = "4242"
        form.get_by_role("button", name="Submit").click()
    else:
        _fill_vantage(form, VANTAGE_OK, "10001")
        last4 = "1111"
        form.get_by_role("button", name="Save").click()

    status = form.locator(".recon-card-status")
    expect(status).to_contain_text("recorded payment PAY-", timeout=30_000)
    expect(status).to_contain_text(f"Charged 130.00 to Visa ending {last4}")
    _assert_card_fields_empty(form)
    expect(nb.panel.locator(".recon-payment-form .recon-message")).to_contain_text("Recorded payment PAY-")
    row = nb.panel.locator('.recon-ledger-table tr[data-invoice="I1"]')
    expect(row).to_contain_text("130.00")

    out = _kernel_ledger(nb)
    payment_id = status.inner_text().rsplit("recorded payment ", 1)[1].strip()
    assert f"('{payment_id}', 'insurance-card', '130.00', '{processor}', 'visa', '{last4}')" in out, out
    assert f"('succeeded', '{processor}', None)" in out, out
    _save(nb)
    nb.screenshot(f"card-form-{processor}-charged", full=True)
    _assert_no_card_numbers(case, lab_server, kept=f"'visa', '{last4}'")


@pytest.mark.parametrize("processor", ["stripe", "vantage"])
def test_card_decline_shows_the_reason_and_records_no_money(
    page: Page, card_notebook: Any, processor: str, lab_server: LabServer
) -> None:
    case = card_notebook(page, processor)
    nb = case.nb
    form = _open_card_form(nb, processor)
    if processor == "stripe":
        _fill_stripe(form, STRIPE_DECLINED)
        form.get_by_role("button", name="Submit").click()
        reason = "Your card was declined."
    else:
        _fill_vantage(form, VANTAGE_OK, VANTAGE_DECLINE_ZIP)
        form.get_by_role("button", name="Save").click()
        reason = "This transaction has been declined."

    status = form.locator(".recon-card-status")
    expect(status).to_contain_text(f"The card was declined: {reason}", timeout=30_000)
    expect(status).to_contain_text("no money was recorded")
    expect(status).to_have_attribute("data-status", "declined")
    expect(nb.panel.locator(".recon-payment-form .recon-message")).to_contain_text("The card was declined")
    # The form stays open for another card; the ledger is unchanged.
    expect(form.get_by_role("button", name="Submit" if processor == "stripe" else "Save")).to_be_enabled()
    row = nb.panel.locator('.recon-ledger-table tr[data-invoice="I1"]')
    expect(row).to_contain_text("0.00")

    out = _kernel_ledger(nb)
    assert "PAYMENTS []" in out, out
    assert f"('declined', '{processor}', '{reason}')" in out, out
    _save(nb)
    nb.screenshot(f"card-form-{processor}-declined", full=True)
    _assert_no_card_numbers(case, lab_server, kept=f"'{processor}'")


def _files_under(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield path


def _dump_ledger(path: Path) -> str:
    """Every row of every table of a ledger file, as text (the kernels have closed it)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        lines = []
        for table in tables:
            for row in con.execute(f'SELECT * FROM "{table}"').fetchall():
                lines.append(f"{table}: {tuple(str(v) for v in row)}")
        return "\n".join(lines)
    finally:
        con.close()


def _assert_no_card_numbers(case: CardCase, lab: LabServer, kept: str) -> None:
    """Grep what this test wrote: ledger, saved notebook (outputs, widget state), logs, console.

    The kernels are shut down first so the ledger file is closed and can be read.
    ``kept`` is text the ledger must hold (brand and last 4, or the processor of a
    declined attempt): proof that the search reads the values it is meant to read.
    """
    lab.shutdown_kernels()
    files = list(_files_under(case.folder))
    files += list(_files_under(lab.home))  # server log, kernel runtime, IPython history
    files += [p for p in (Path("/tmp/recon-last-error.log"),) if p.exists()]
    databases = [p for p in files if p.suffix == ".duckdb"]
    notebooks = [p for p in files if p.suffix == ".ipynb" and case.folder in p.parents]
    assert len(databases) >= 1 and len(notebooks) >= 1, (databases, notebooks)

    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        widgets = nb["metadata"].get("widgets", {})
        state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        assert any("recon-card-form-widget" in json.dumps(m.get("state", {})) for m in state.values()), (
            f"{nb_path} was saved without the card form's widget state"
        )

    haystacks = [(str(p), p.read_bytes()) for p in files]
    # DuckDB may compress strings on disk, so the raw bytes alone prove little: search
    # every value of every table too, as text.
    dumps = {str(db): _dump_ledger(db) for db in databases}
    haystacks += [(f"{name} (every table, as text)", text.encode()) for name, text in dumps.items()]
    haystacks.append(("browser console", "\n".join(case.console).encode()))
    found = []
    for number in CARD_NUMBERS:
        spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
        for name, data in haystacks:
            if number.encode() in data or spaced.encode() in data:
                found.append(f"{number} in {name}")
    assert not found, "card numbers found:\n" + "\n".join(found)
    assert kept in "\n".join(dumps.values()), f"the ledger dump lacks {kept!r}: the search reads nothing"
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    (ARTIFACTS_DIR / f"card-grep-{case.folder.name}.txt").write_text(
        f"searched {len(files)} files + console for {len(CARD_NUMBERS)} card numbers: none found\n"
    )
