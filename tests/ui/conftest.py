"""Fixtures for driving the widgets from Python: an open Recon on the tiny inline
practice (``tests/conftest.py``), a form factory, and a client with 3,000 invoices.

Why from Python: clicking ``button.click()`` and setting ``widget.value`` runs the
very handlers the browser triggers, so every rule the form applies is tested in
milliseconds; the browser test then only has to prove the wiring to JupyterLab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from recon.services import Recon
from recon.ui import InsurancePaymentForm
from recon.ui.payment import INSURANCE_PAYMENT
from tests.conftest import PRACTICE, write_practice


@pytest.fixture(autouse=True)
def _no_ambient_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests say who acts; an analyst's RECON_USER must not leak in."""
    monkeypatch.delenv("RECON_USER", raising=False)
    monkeypatch.delenv("RECON_PROCESSOR", raising=False)


@pytest.fixture
def recon(db: Path) -> Iterator[Recon]:
    with Recon.open(db) as r:
        yield r


@pytest.fixture
def make_form(recon: Recon) -> Callable[..., InsurancePaymentForm]:
    """An Insurance Payment form for C1 with Insurance Payment chosen (as the seed's step)."""

    def make(client_id: str = "C1", user: str | None = "ana", **kw: Any) -> InsurancePaymentForm:
        kw.setdefault("enrolled", False)
        form = InsurancePaymentForm(recon, client_id, user, **kw)
        form.kind.value = INSURANCE_PAYMENT
        return form

    return make


@pytest.fixture
def big_recon(tmp_path: Path) -> Iterator[Recon]:
    """One client (C1, Aetna) with 3,000 invoices: the ledger must stay one page at a time."""
    tables = {k: v for k, v in PRACTICE.items() if k not in ("invoices.csv",)}
    start = date(2024, 1, 1)
    rows = [PRACTICE["invoices.csv"][0]] + [
        (f"B{n:05d}", "C1", (start + timedelta(days=n % 700)).isoformat(), "90834", "1", "120.00",
         "", "", "", "")
        for n in range(3000)
    ]  # fmt: skip
    tables["invoices.csv"] = rows
    folder = write_practice(tmp_path / "big", tables)
    with Recon.open(tmp_path / "big.duckdb") as r:
        r.load_practice(folder, "ana")
        yield r
