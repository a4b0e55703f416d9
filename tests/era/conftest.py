"""An ERA practice: the shared PRACTICE plus a two-line claim (CLM-20) for C2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recon.cli import main
from recon.services import Recon
from recon.store import queries
from tests.conftest import PRACTICE, write_practice

ERA_PRACTICE = {**PRACTICE, "invoices.csv": [
    *PRACTICE["invoices.csv"],
    ("I9", "C2", "2026-02-03", "90834", "1", "100.00", "", "", "", "CLM-20"),
    ("I10", "C2", "2026-02-10", "90837", "1", "150.00", "", "", "", "CLM-20"),
]}


@pytest.fixture
def era_db(tmp_path: Path, ledger_target: Path | str) -> Path | str:
    """The ERA practice in a ledger on each engine (a DuckDB file, a PostgreSQL database)."""
    practice = write_practice(tmp_path / "era_practice", ERA_PRACTICE)
    assert main(["load", str(practice), "--db", str(ledger_target)]) == 0
    return ledger_target


@pytest.fixture
def recon(era_db: Path) -> Iterator[Recon]:
    with Recon.open(era_db) as r:
        yield r


def ledger(recon: Recon) -> dict[str, tuple[str, ...]]:
    """invoice -> (client due, client paid, ins due, ins paid, ins adjusted, balance) as text."""
    return {r[0]: tuple(f"{v:.2f}" for v in r[4:10]) for r in recon.execute(queries.ledger_sql()).fetchall()}


def assert_invariant(recon: Recon) -> None:
    """Every remittance: its payments + money still held − PLB = BPR02, exactly.

    Money held at posting and matched later from the worklist became a payment, so
    what is still held is ``unmatched_amount`` less the matched actions.
    """
    rows = recon.execute("""
        SELECT r.remittance_id, r.amount,
               coalesce((SELECT sum(p.amount) FROM payments p WHERE p.remittance_id = r.remittance_id), 0)
               + r.unmatched_amount
               - coalesce((SELECT sum(a.amount) FROM exception_actions a JOIN exceptions e USING (exception_id)
                           WHERE e.remittance_id = r.remittance_id AND a.action = 'matched'), 0)
               - r.plb_amount
        FROM remittances r""").fetchall()
    assert rows, "no remittance was posted"
    for rid, amount, total in rows:
        assert amount == total, f"{rid}: BPR02 {amount} but payments + held − PLB = {total}"


def counts(recon: Recon) -> dict[str, int]:
    tables = ("remittances", "payments", "allocations", "adjustments", "due_changes", "exceptions",
              "remit_claims", "remit_plb", "audit_log", "exception_actions")
    return {t: recon.one(f"SELECT count(*) FROM {t}")[0] for t in tables}
