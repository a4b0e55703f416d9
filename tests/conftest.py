"""Shared fixtures: a tiny practice written inline, and the CLI run in-process."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recon.cli import main
from tests import pgserver

PRACTICE = {
    "users.csv": [
        ("user_id", "name", "permissions"),
        ("ana", "Ana Analyst", "billing;reports"),
        ("ben", "Ben Front Desk", "scheduling"),
    ],
    "insurance_providers.csv": [
        ("payer_id", "name", "payer_identifier"),
        ("AET", "Aetna", "60054"),
        ("BCBS", "Blue Cross", "00570"),
        ("UHC", "UnitedHealthcare", "87726"),
    ],
    "clients.csv": [
        ("client_id", "first_name", "last_name", "date_of_birth", "copay"),
        ("C1", "Avery", "Chen", "1980-02-03", "20.00"),
        ("C2", "Blake", "Diaz", "1975-07-09", "10.00"),
        ("C3", "Casey", "Ellis", "1990-01-01", "0"),
    ],
    "client_insurance.csv": [
        ("client_id", "payer_id", "member_id", "priority", "copay"),
        ("C1", "AET", "M100", "primary", ""),
        ("C1", "BCBS", "M101", "secondary", "5.00"),
        ("C2", "BCBS", "M200", "primary", "30.00"),
    ],
    "invoices.csv": [
        (
            "invoice_id",
            "client_id",
            "service_date",
            "service_code",
            "units",
            "fee",
            "payer_id",
            "client_amt_due",
            "ins_amt_due",
            "claim_id",
        ),
        ("I1", "C1", "2026-01-05", "90837", "1", "150.00", "", "", "", ""),
        ("I2", "C1", "2026-01-12", "90834", "1", "120.00", "", "", "", ""),
        ("I3", "C1", "2026-01-19", "90834", "1", "120.00", "", "", "", "CLM-9"),
        ("I4", "C1", "2026-01-26", "90846", "1", "100.00", "BCBS", "", "", ""),
        ("I5", "C1", "2026-02-02", "90834", "1", "10.00", "", "", "", ""),
        ("I6", "C2", "2026-01-07", "90791", "1", "200.00", "", "", "", ""),
        ("I7", "C3", "2026-01-08", "90834", "1", "120.00", "", "", "", ""),
        ("I8", "C1", "2026-02-09", "90837", "1", "150.00", "AET", "50.00", "", ""),
    ],
}


def write_practice(folder: Path, tables: dict[str, list[tuple[str, ...]]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (tables or PRACTICE).items():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        (folder / name).write_text(buf.getvalue())
    return folder


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def practice_dir(tmp_path: Path) -> Path:
    return write_practice(tmp_path / "practice")


@pytest.fixture
def db(tmp_path: Path, practice_dir: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    assert main(["load", str(practice_dir), "--db", str(path)]) == 0
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URI of a real PostgreSQL server (see tests/pgserver.py).

    Skipped only where no server binary exists and CI is not set; in CI a missing
    server fails the tests that need it.
    """
    given = os.environ.get("RECON_TEST_PG")
    if given:
        yield given
        return
    found = pgserver.binaries()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no PostgreSQL server binary (initdb) is installed")
        pytest.skip("no PostgreSQL server binary (initdb) on this machine")
    with pgserver.started(found) as uri:
        yield uri


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    """Which engine holds the ledger: the ledger, ERA, deposits and reports tests run on both."""
    return str(request.param)


@pytest.fixture
def ledger_target(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path | str]:
    """An empty ledger's ``--db``: a DuckDB file, or a fresh database on the PostgreSQL server."""
    if engine == "duckdb":
        yield tmp_path / "ledger.duckdb"
        return
    with pgserver.fresh_database(request.getfixturevalue("pg_server")) as uri:
        yield uri


@pytest.fixture
def any_db(ledger_target: Path | str, practice_dir: Path) -> Path | str:
    """The tiny practice loaded into a ledger on each engine."""
    assert main(["load", str(practice_dir), "--db", str(ledger_target)]) == 0
    return ledger_target


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def run(*args: str) -> Run:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
