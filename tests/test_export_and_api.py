"""Export equals the ledger; the Python API keeps money exact; encryption at rest."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recon.errors import LedgerError, PermissionDenied
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon
from tests.conftest import Run, read_csv


def _pay(cli: Callable[..., Run], db: Path) -> None:
    for args in (["--invoice", "I1", "--invoice", "I2=33.33"], ["--amount", "40.00"]):
        assert cli("pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "insurance", *args).code == 0
    assert cli("void", "PAY-000002", "--db", db, "--user", "ana", "--reason", "duplicate").code == 0


def test_csv_export_equals_ledger(cli: Callable[..., Run], db: Path, tmp_path: Path) -> None:
    _pay(cli, db)
    out = tmp_path / "export"
    assert cli("export", "--db", db, "--out", out).code == 0
    invoices = {r["invoice_id"]: r for r in read_csv((out / "invoices.csv").read_text())}
    for client in ("C1", "C2", "C3"):
        for row in read_csv(cli("ledger", client, "--db", db, "--format", "csv").out):
            exported = invoices[row["invoice_id"]]
            assert {k: exported[k] for k in row} == row
    assert {p.name for p in out.iterdir()} >= {
        "invoices.csv",
        "payments.csv",
        "allocations.csv",
        "adjustments.csv",
        "audit_log.csv",
    }
    audit = read_csv((out / "audit_log.csv").read_text())
    assert [a["action"] for a in audit][-3:] == ["record_payment", "record_payment", "void_payment"]


def test_parquet_and_xlsx_exports(cli: Callable[..., Run], db: Path, tmp_path: Path) -> None:
    _pay(cli, db)
    assert cli("export", "--db", db, "--out", tmp_path / "pq", "--format", "parquet").code == 0
    table = pq.read_table(tmp_path / "pq" / "invoices.parquet")
    assert str(table.schema.field("balance").type) == "decimal128(18, 2)"
    paid = {r["invoice_id"]: r["ins_amt_paid"] for r in table.to_pylist()}
    assert paid["I1"] == Decimal("130.00") and paid["I2"] == Decimal("33.33")
    assert cli("export", "--db", db, "--out", tmp_path / "ledger.xlsx").code == 0
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "ledger.xlsx", read_only=True)
    assert {"invoices", "payments", "allocations", "adjustments", "audit_log"} <= set(book.sheetnames)
    rows = list(book["invoices"].iter_rows(values_only=True))
    header = rows[0]
    i1 = next(r for r in rows[1:] if r[0] == "I1")
    assert i1[header.index("ins_amt_paid")] == 130


def test_python_api_frames_are_exact(db: Path) -> None:
    with Recon.open(db) as recon:
        for _ in range(3):
            recon.record_payment(
                PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, picks=(InvoicePick("I2", Decimal("0.10")),)), "ana"
            )
        frame = recon.ledger("C1")
        assert isinstance(frame["ins_amt_paid"].dtype, pd.ArrowDtype)
        assert frame.set_index("invoice_id").loc["I2", "ins_amt_paid"] == Decimal("0.30")
        assert frame["ins_amt_paid"].sum() == Decimal("0.30")
        with pytest.raises(PermissionDenied):
            recon.record_payment(PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, amount=Decimal("1")), "ben")
        assert len(recon.payments("C1")) == 3
        assert recon.client("C1").unapplied_credit == Decimal("0.00")


def test_encrypted_ledger(tmp_path: Path, practice_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "secret.duckdb"
    env = {"RECON_DB_KEY": "correct horse battery staple"}
    run = subprocess.run(
        [sys.executable, "-m", "recon.cli", "load", str(practice_dir), "--db", str(db)],
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    raw = db.read_bytes() + (Path(str(db) + ".wal").read_bytes() if Path(str(db) + ".wal").exists() else b"")
    for phi in (b"Avery", b"Chen", b"M100", b"1980-02-03"):
        assert phi not in raw
    monkeypatch.delenv("RECON_DB_KEY", raising=False)
    with pytest.raises(LedgerError, match="is encrypted: set RECON_DB_KEY"):
        Recon.open(db)
    with pytest.raises(LedgerError, match="encryption key is wrong"):
        Recon.open(db, key="wrong")
    run = subprocess.run(
        [sys.executable, "-m", "recon.cli", "ledger", "C1", "--db", str(db)],
        capture_output=True,
        text=True,
        env={k: v for k, v in __import__("os").environ.items() if k != "RECON_DB_KEY"},
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr and "encrypted" in run.stderr
    with Recon.open(db, key=env["RECON_DB_KEY"]) as recon:
        assert recon.client("C1").name == "Avery Chen"


def test_demo_runs_twice(tmp_path: Path) -> None:
    from recon.demo import run_demo

    first = run_demo(tmp_path / "demo.duckdb")
    second = run_demo(tmp_path / "demo.duckdb")
    assert "3 insurance payments recorded" in first
    assert "3 insurance payments recorded" in second
