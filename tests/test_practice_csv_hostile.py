"""Issue 9 §6: hostile practice CSVs are refused as ``file:line: field: what was expected``, nothing loaded.

Before: units ``²`` and a 200,000-character field were internal errors (exit 3),
units ``٣`` was stored as 3, dues of 150 + 150 on a fee of 180 loaded with a
balance of 300, and U+2028 in an unquoted name was reported as "3 fields".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PRACTICE, Run, write_practice

TABLES = ("users", "insurance_providers", "clients", "client_insurance", "invoices")


def _loaded(db: Path) -> dict[str, int]:
    if not db.exists():
        return dict.fromkeys(TABLES, 0)
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]
    finally:
        con.close()


def _with(table: str, row: int, column: str, value: str) -> dict[str, list[tuple[str, ...]]]:
    tables = {k: list(v) for k, v in PRACTICE.items()}
    header = tables[f"{table}.csv"][0]
    cells = list(tables[f"{table}.csv"][row])
    cells[header.index(column)] = value
    tables[f"{table}.csv"][row] = tuple(cells)
    return tables


def _refused(cli: Callable[..., Run], tmp_path: Path, folder: Path, where: str, *expected: str) -> str:
    db = tmp_path / "l.duckdb"
    run = cli("load", folder, "--db", db)
    assert run.code == 1, (run.code, run.err)
    assert "internal error" not in run.err and "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert run.err.startswith(f"recon: error: {where}"), run.err
    for text in expected:
        assert text in run.err, run.err
    assert _loaded(db) == dict.fromkeys(TABLES, 0)
    return run.err


@pytest.mark.parametrize(
    ("table", "row", "column", "value", "where", "expected"),
    [
        ("invoices", 1, "units", "²", "invoices.csv:2: units: ", "whole number of units"),
        ("invoices", 1, "units", "٣", "invoices.csv:2: units: ", "digits 0-9"),
        ("invoices", 1, "units", "３", "invoices.csv:2: units: ", "digits 0-9"),
        ("invoices", 1, "units", "999999999999", "invoices.csv:2: units: ", "1 to 99999"),
        ("invoices", 2, "fee", "١٢٠.٠٠", "invoices.csv:3: fee: ", "expected an amount such as 12.30"),
        ("invoices", 2, "fee", "1,20", "invoices.csv:3: fee: ", "expected an amount such as 12.30"),
        ("clients", 1, "copay", "２0", "clients.csv:2: copay: ", "expected an amount such as 12.30"),
        ("clients", 1, "date_of_birth", "١٩٨٠-02-03", "clients.csv:2: date_of_birth: ", "expected YYYY-MM-DD"),
        ("invoices", 3, "service_date", "2026-0١-19", "invoices.csv:4: service_date: ", "expected YYYY-MM-DD"),
        ("clients", 2, "first_name", "Bl\u2028ake", "clients.csv:3: first_name: ", "U+2028"),
        ("clients", 2, "last_name", "Diaz\x00", "clients.csv:3: last_name: ", "U+0000"),
        ("clients", 2, "last_name", "Di\taz", "clients.csv:3: last_name: ", "U+0009"),
        ("clients", 2, "last_name", "\u202eziaD", "clients.csv:3: last_name: ", "U+202E"),
        ("invoices", 1, "service_code", "908\u000b37", "invoices.csv:2: service_code: ", "U+000B"),
        ("users", 1, "permissions", "billing;bill ing", "users.csv:2: permissions: ", "not a permission"),
        ("invoices", 1, "fee", "1" * 500, "invoices.csv:2: fee: ", "at most 40 characters"),
        ("invoices", 1, "fee", "1" * 1_000_001, "invoices.csv:2: fee: ", "1,000,001 characters; expected at most"),
    ],
)
def test_bad_value_is_refused_by_line_and_field(
    cli: Callable[..., Run],
    tmp_path: Path,
    table: str,
    row: int,
    column: str,
    value: str,
    where: str,
    expected: str,
) -> None:
    folder = write_practice(tmp_path / "p", _with(table, row, column, value))
    err = _refused(cli, tmp_path, folder, where, expected)
    assert len(err) < 400  # a bad value is quoted cut short, never whole


def test_unicode_line_separator_in_an_unquoted_name_is_named(cli: Callable[..., Run], tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "p")
    (folder / "clients.csv").write_text(
        "client_id,first_name,last_name,date_of_birth,copay\n"
        "C1,Avery,Chen,1980-02-03,20.00\n"
        "C2,Bla\u2028ke,Diaz,1975-07-09,10.00\n"
        "C3,Casey,Ellis,1990-01-01,0\n",
        encoding="utf-8",
    )
    err = _refused(cli, tmp_path, folder, "clients.csv:3: first_name: ", "U+2028 (LINE SEPARATOR)")
    assert "fields; expected" not in err


@pytest.mark.parametrize("size", [5_000, 200_000])
def test_an_oversized_field_is_refused_by_line_and_column(cli: Callable[..., Run], tmp_path: Path, size: int) -> None:
    folder = write_practice(tmp_path / "p", _with("clients", 2, "last_name", "x" * size))
    _refused(cli, tmp_path, folder, "clients.csv:3: last_name: ", f"{size:,} characters; expected at most 1,000")


def test_an_oversized_quoted_field_spanning_lines_names_its_first_line(cli: Callable[..., Run], tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "p")
    big = "y\n" * 100_000
    (folder / "clients.csv").write_text(
        f'client_id,first_name,last_name,date_of_birth,copay\nC1,Avery,Chen,1980-02-03,20.00\nC2,"{big}",D,,0\n'
    )
    _refused(cli, tmp_path, folder, "clients.csv:3: first_name: ", "200,000 characters")


def test_dues_above_the_fee_are_refused(cli: Callable[..., Run], tmp_path: Path) -> None:
    tables = _with("invoices", 1, "fee", "180.00")
    tables = {**tables, "invoices.csv": list(tables["invoices.csv"])}
    row = list(tables["invoices.csv"][1])
    header = tables["invoices.csv"][0]
    row[header.index("client_amt_due")] = "150.00"
    row[header.index("ins_amt_due")] = "150.00"
    tables["invoices.csv"][1] = tuple(row)
    folder = write_practice(tmp_path / "p", tables)
    _refused(cli, tmp_path, folder, "invoices.csv:2: ins_amt_due: ", "= 300.00 is more than the fee 180.00")
    # dues that add up to the fee, or less, load
    row[header.index("client_amt_due")] = "30.00"
    tables["invoices.csv"][1] = tuple(row)
    ok = cli("load", write_practice(tmp_path / "ok", tables), "--db", tmp_path / "ok.duckdb")
    assert ok.code == 0, ok.err


def test_a_column_named_twice_is_refused(cli: Callable[..., Run], tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "p")
    (folder / "clients.csv").write_text(
        "client_id,first_name,last_name,date_of_birth,copay,copay\nC1,Avery,Chen,1980-02-03,20.00,0\n"
    )
    _refused(cli, tmp_path, folder, "clients.csv:1: column(s) copay given twice")


def test_xlsx_cells_meet_the_same_checks(cli: Callable[..., Run], tmp_path: Path) -> None:
    from openpyxl import Workbook

    made: list[Path] = []

    def book_with(cell: str, value: object) -> Path:
        book = Workbook()
        book.remove(book.active)
        for name, rows in PRACTICE.items():
            sheet = book.create_sheet(name.removesuffix(".csv"))
            for row in rows:
                sheet.append(list(row))
        book["clients"][cell] = value
        path = tmp_path / f"p{len(made)}.xlsx"
        book.save(path)
        made.append(path)
        return path

    _refused(cli, tmp_path, book_with("C3", "x" * 5_000), "p0.xlsx[clients]:3: last_name: ", "5,000 characters")
    _refused(cli, tmp_path, book_with("B3", "Bl\u2028ake"), "p1.xlsx[clients]:3: first_name: ", "U+2028")
    _refused(cli, tmp_path, book_with("E3", "٣"), "p2.xlsx[clients]:3: copay: ", "expected an amount")
