"""Practice import: defaults, idempotent reloads, and bad rows that reject the whole load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PRACTICE, Run, read_csv, write_practice

# the shared practice plus an admin, so that a second load (by lee) is allowed
ADMIN_PRACTICE = {**PRACTICE, "users.csv": [*PRACTICE["users.csv"], ("lee", "Lee Admin", "admin")]}


@pytest.fixture
def practice_dir(tmp_path: Path) -> Path:
    return write_practice(tmp_path / "practice", ADMIN_PRACTICE)


def counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("clients", "invoices", "users", "client_insurance", "insurance_providers")
        }
    finally:
        con.close()


def test_loading_twice_changes_nothing(cli: Callable[..., Run], db: Path, practice_dir: Path) -> None:
    before = counts(db)
    run = cli("load", practice_dir, "--db", db, "--user", "lee")
    assert run.code == 0 and "invoices: 0 added, 8 unchanged" in run.out
    assert "first admin" not in run.out
    assert (
        counts(db)
        == before
        == {"clients": 3, "invoices": 8, "users": 3, "client_insurance": 3, "insurance_providers": 3}
    )


def _with(table: str, row_index: int, column: str, value: str) -> dict[str, list[tuple[str, ...]]]:
    tables = {k: list(v) for k, v in PRACTICE.items()}
    table = f"{table}.csv"
    header = tables[table][0]
    row = list(tables[table][row_index])
    row[header.index(column)] = value
    tables[table][row_index] = tuple(row)
    return tables


@pytest.mark.parametrize(
    ("table", "row", "column", "value", "message"),
    [
        ("invoices", 3, "client_id", "C404", "invoices.csv:4: client_id: unknown client 'C404'"),
        ("invoices", 2, "fee", "abc", "invoices.csv:3: fee: 'abc' is not valid; expected an amount such as 12.30"),
        (
            "invoices",
            5,
            "fee",
            "12.345",
            "invoices.csv:6: fee: '12.345' is not valid; expected at most two decimal places",
        ),
        ("invoices", 1, "service_date", "2026-02-30", "invoices.csv:2: service_date: '2026-02-30' is not a date"),
        ("clients", 2, "copay", "1.5.0", "clients.csv:3: copay: '1.5.0' is not valid"),
        ("client_insurance", 1, "priority", "first", "client_insurance.csv:2: priority: 'first' is not valid"),
        ("client_insurance", 2, "payer_id", "NOPE", "client_insurance.csv:3: payer_id: unknown payer 'NOPE'"),
    ],
)
def test_bad_row_rejects_whole_load(
    cli: Callable[..., Run], tmp_path: Path, table: str, row: int, column: str, value: str, message: str
) -> None:
    folder = write_practice(tmp_path / "bad", _with(table, row, column, value))
    db = tmp_path / "l.duckdb"
    run = cli("load", folder, "--db", db)
    assert run.code == 1
    assert message in run.err, run.err
    assert "Traceback" not in run.err
    assert counts(db) == {"clients": 0, "invoices": 0, "users": 0, "client_insurance": 0, "insurance_providers": 0}


def test_duplicate_id_with_different_content(cli: Callable[..., Run], tmp_path: Path) -> None:
    tables = {k: list(v) for k, v in PRACTICE.items()}
    tables["invoices.csv"].append(("I1", "C1", "2026-01-05", "90837", "1", "999.00", "", "", "", ""))
    run = cli("load", write_practice(tmp_path / "dup", tables), "--db", tmp_path / "l.duckdb")
    assert run.code == 1 and "invoices.csv:10: duplicate id 'I1' with different content than line 2" in run.err
    # an identical duplicate row is harmless
    tables["invoices.csv"][-1] = tables["invoices.csv"][1]
    assert cli("load", write_practice(tmp_path / "dup2", tables), "--db", tmp_path / "l2.duckdb").code == 0


def test_changed_record_on_reload_is_refused(cli: Callable[..., Run], db: Path, tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "changed", _with("invoices", 1, "fee", "151.00"))
    run = cli("load", folder, "--db", db, "--user", "lee")
    assert run.code == 1 and "invoices.csv:2: 'I1' is already in the ledger with different content" in run.err
    assert counts(db)["invoices"] == 8


def test_physical_line_counts_quoted_newlines(cli: Callable[..., Run], tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "p")
    (folder / "clients.csv").write_text(
        "client_id,first_name,last_name,date_of_birth,copay\n"
        'C1,"Avery\n",Chen,1980-02-03,20.00\n'
        "C2,Blake,Diaz,1975-07-09,x\n"
    )
    run = cli("load", folder, "--db", tmp_path / "l.duckdb")
    assert "clients.csv:4: copay: 'x' is not valid" in run.err


def test_xlsx_workbook_loads_the_same(cli: Callable[..., Run], tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in PRACTICE.items():
        sheet = book.create_sheet(name.removesuffix(".csv"))
        for row in rows:
            sheet.append(list(row))
    book.save(tmp_path / "practice.xlsx")
    db = tmp_path / "x.duckdb"
    run = cli("load", tmp_path / "practice.xlsx", "--db", db)
    assert run.code == 0, run.err
    ledger = {r["invoice_id"]: r for r in read_csv(cli("ledger", "C1", "--db", db, "--format", "csv").out)}
    assert ledger["I1"]["ins_amt_due"] == "130.00" and ledger["I4"]["client_amt_due"] == "5.00"
    # a bad cell names the sheet and row
    book["invoices"]["F3"] = "12.345"
    book.save(tmp_path / "bad.xlsx")
    run = cli("load", tmp_path / "bad.xlsx", "--db", tmp_path / "y.duckdb")
    assert run.code == 1 and "bad.xlsx[invoices]:3: fee:" in run.err


def test_missing_column_and_missing_folder(cli: Callable[..., Run], tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "p")
    (folder / "invoices.csv").write_text("invoice_id,client_id\nI1,C1\n")
    run = cli("load", folder, "--db", tmp_path / "l.duckdb")
    assert run.code == 1 and "invoices.csv:1: missing column(s) service_date, service_code, fee" in run.err
    run = cli("load", tmp_path / "nope", "--db", tmp_path / "l.duckdb")
    assert run.code == 1 and "no such file or folder" in run.err
