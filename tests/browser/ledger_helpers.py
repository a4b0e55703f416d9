"""Helpers for the Client Ledger notebook browser test: a temp ledger, the scenario, page reads.

Why a separate module: the test reads like the seed's steps; what it needs around
them (building a demo ledger, choosing a client the steps work on, reading money
out of the rendered page, opening the ledger once the kernel let go of it) lives here.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from lab import LabServer, set_notebook_kernel

from recon.demo import ensure_demo_ledger, project_root
from recon.services import Recon

if TYPE_CHECKING:
    import duckdb
    from playwright.sync_api import Locator

NOTEBOOK = "01_client_ledger.ipynb"

#: The client the notebook's own code cell records a payment for (as "ana"):
#: the form test keeps away from it so its ledger is only changed by the form.
NOTEBOOK_CODE_CLIENT = "C005"

#: The seed's Client Ledger columns, in its order.
SEED_LEDGER_COLUMNS = (
    "Invoice",
    "Date",
    "Service",
    "Fee",
    "Client Amt Due",
    "Client Amt Paid",
    "Ins Amt Due",
    "Ins Amt Paid",
    "Ins Adjusted",
    "Balance",
)

#: The seed's Insurance Payment form labels (visible text the analyst must find).
SEED_FORM_LABELS = (
    "Insurance Payment",
    "Total Amount",
    "Payment",
    "Payment Method",
    "Insurance",
    "Payment Number",
    "Notes",
    "Record Payment",
)

#: Payment Method choices for a practice not enrolled in payment processing.
RECORDED_METHODS = ("Insurance", "Insurance Check", "Insurance EFT/ACH")


@dataclass(frozen=True)
class OpenInvoice:
    invoice_id: str
    ins_amt_due: Decimal
    ins_amt_paid: Decimal
    ins_open: Decimal


@dataclass(frozen=True)
class Scenario:
    """Who the analyst pays for: a client with two insurers and three open invoices of the primary."""

    client_id: str
    name: str
    search: str
    payer_id: str
    payer_name: str
    other_payer_name: str
    invoices: tuple[OpenInvoice, OpenInvoice, OpenInvoice]

    @property
    def partial(self) -> Decimal:
        """A Payment smaller than the third invoice's open Ins Amt Due."""
        return (self.invoices[2].ins_open / 2).quantize(Decimal("0.01"))

    @property
    def expected_allocations(self) -> dict[str, Decimal]:
        first, second, third = self.invoices
        return {first.invoice_id: first.ins_open, second.invoice_id: second.ins_open, third.invoice_id: self.partial}


def build_demo_ledger(path: Path) -> Path:
    """The demo practice (recon.demo) in ``path``, closed and checkpointed, ready to copy."""
    return ensure_demo_ledger(path)


def copy_ledger(template: Path, dest: Path) -> Path:
    """A private copy of a closed ledger file for one test."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)
    return dest


def choose_scenario(db: Path) -> Scenario:
    """The first client (by id) the seed's steps fully exercise.

    Two insurance policies (so the Insurance drop-down is a real choice), a name no
    other client has, no payment yet (neither demo nor the notebook's code cell),
    and at least three open invoices billed to the primary insurer.
    """
    with Recon.open(db) as recon:
        paid = {str(r[0]) for r in recon.execute("SELECT DISTINCT client_id FROM payments").fetchall()}
        clients = recon.clients("").sort_values("client_id")
        names = [f"{r.first_name} {r.last_name}" for r in clients.itertuples(index=False)]
        for row, name in zip(clients.itertuples(index=False), names, strict=True):
            cid = str(row.client_id)
            if cid in paid or cid == NOTEBOOK_CODE_CLIENT or names.count(name) != 1:
                continue
            client = recon.client(cid)
            if len(client.policies) < 2:
                continue
            primary = next(p for p in client.policies if p.priority == "primary")
            other = next(p for p in client.policies if p.payer_id != primary.payer_id)
            rows = [r for r in recon.ledger_rows(cid) if r.payer_id == primary.payer_id and r.ins_open > 0]
            rows = [r for r in rows if r.ins_amt_paid == 0 and r.ins_open > Decimal("1.00")]
            if len(rows) < 3:
                continue
            picked = tuple(OpenInvoice(r.invoice_id, r.ins_amt_due, r.ins_amt_paid, r.ins_open) for r in rows[:3])
            return Scenario(
                client_id=cid,
                name=name,
                search=str(row.last_name),
                payer_id=primary.payer_id,
                payer_name=primary.payer_name,
                other_payer_name=other.payer_name,
                invoices=picked,  # type: ignore[arg-type]
            )
    raise AssertionError(f"no client in {db} has two policies and three open invoices of its primary insurer")


def prepare_notebook(lab_server: LabServer, db: Path, user: str, subdir: str) -> str:
    """Copy notebooks/01_client_ledger.ipynb into the lab root, on a kernel with RECON_DB/RECON_USER.

    Returns the notebook's path relative to the lab root. ``RECON_PROCESSOR=none``
    pins the practice as not enrolled in payment processing, so the Payment Method
    drop-down offers exactly the three recorded methods whatever the machine's
    settings file says.
    """
    kernel = lab_server.add_kernelspec(
        f"recon-ledger-{subdir}",
        {"RECON_DB": str(db), "RECON_USER": user, "RECON_PROCESSOR": "none"},
        display_name=f"Python 3 (recon ledger, {user})",
    )
    target = lab_server.root / subdir / NOTEBOOK
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project_root() / "notebooks" / NOTEBOOK, target)
    set_notebook_kernel(target, kernel)
    return f"{subdir}/{NOTEBOOK}"


def open_released(db: Path, timeout: float = 60) -> duckdb.DuckDBPyConnection:
    """The ledger file opened read-only once no other process holds it (call after the kernels shut down).

    DuckDB lets one process open a file for writing; the kernel held it. A plain
    read-only connection (not ``Recon``) means the check can neither change what it
    checks nor depend on how ``Recon`` manages its connection.
    """
    import duckdb

    deadline = time.monotonic() + timeout
    while True:
        try:
            return duckdb.connect(str(db), read_only=True)
        except duckdb.IOException as exc:  # "Could not set lock on file": the kernel is still exiting
            if time.monotonic() > deadline:
                raise AssertionError(f"{db} still locked {timeout:.0f}s after the kernels shut down: {exc}") from exc
            time.sleep(0.2)


def money(text: str) -> Decimal:
    """An amount as the page shows it ("1,234.50", "$20.00", "") as a Decimal."""
    cleaned = text.strip().replace(",", "").replace("$", "")
    return Decimal(cleaned) if cleaned else Decimal("0.00")


def ledger_cell(table: Locator, invoice_id: str, column: str) -> Locator:
    """The cell of the Client Ledger table in ``column`` (a seed header) for ``invoice_id``."""
    index = SEED_LEDGER_COLUMNS.index(column)
    return table.locator(f'tr[data-invoice="{invoice_id}"] td').nth(index)


def invoice_row_cells(form: Locator, invoice_id: str) -> dict[str, str]:
    """The Accept Payment row of ``invoice_id`` as {header: text}, headers read from the form."""
    headers = [t.strip() for t in form.locator(".recon-invoice-header .recon-cell").all_inner_texts()]
    row = form.locator(".recon-invoice-row", has=form.page.locator(f".recon-tick-{invoice_id}"))
    cells = [t.strip() for t in row.locator(".recon-cell").all_inner_texts()]
    # the header has Invoice (the checkbox) first and Payment (the text field) last
    inner = headers[1:-1]
    assert len(cells) == len(inner), f"row {invoice_id}: {cells} does not line up with headers {headers}"
    return dict(zip(inner, cells, strict=True))
