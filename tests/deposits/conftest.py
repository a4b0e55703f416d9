"""Fixtures for the bank side: an open ledger, remittances put in directly, deposit files.

Why remittances are inserted directly: the matching views read only the posted
``remittances`` rows (trace, payer, BPR02, BPR16), so tests of matching do not need
an 835 to be posted; the end-to-end test posts real files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon.services import Recon


@pytest.fixture
def db(any_db: Path | str) -> Path | str:
    """The deposits tests run on both engines."""
    return any_db


@pytest.fixture
def recon(db: Path) -> Iterator[Recon]:
    with Recon.open(db) as r:
        yield r


@pytest.fixture
def add_remittance(recon: Recon) -> Callable[..., str]:
    """Insert one posted remittance row (the columns the contract promises)."""

    def add(rid: str, trace: str, amount: str, paid_on: date, payer: str = "AET", method: str = "ACH") -> str:
        recon.execute(
            """INSERT INTO remittances (remittance_id, payer_id, trace_number, payment_method, amount,
                   plb_amount, paid_on, file_name, posted_at, user_id, unmatched_amount, claims)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP, 'ana', 0, 0)""",
            [rid, payer, trace, method, Decimal(amount), Decimal("0.00"), paid_on, f"{rid}.835"],
        )
        return rid

    return add


@pytest.fixture
def deposit_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a deposit CSV from rows (header added unless ``header`` is given)."""
    counter = iter(range(1000))

    def write(
        *rows: str, header: str = "deposit_id,deposit_date,amount,trace_number,description", name: str = ""
    ) -> Path:
        path = tmp_path / (name or f"deposits_{next(counter)}.csv")
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write
