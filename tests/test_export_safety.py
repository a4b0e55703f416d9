"""Exports that open safely and right: no formula runs from text a user, payer or bank wrote (OWASP CSV
injection), money stays numeric and exact to the cent, and the workbook opens formatted (issues 9 §3, 10).

The hostile text is put in the ledger the way it would arrive: ``recon pay --notes``, an 835's ``NM1*QC``
patient name, and a bank CSV's description.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from recon.output import Rows, render
from tests.conftest import Run, read_csv
from tests.era.edi import claim, st, write_835

NOTES = '=HYPERLINK("http://evil.example/x","Click for details")'
PATIENT = "=cmd|' /C calc'!A0"  # the 835 gives "LAST, FIRST": the cell starts with this
DESCRIPTION = "+SUM(1+1)*cmd|' /C calc'!A0"
DESCRIPTION_2 = "@SUM(A1:A2)"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile_db(cli: Callable[..., Run], db: Path, tmp_path: Path) -> Path:
    """A ledger holding formula-looking text in payments, remittance claims and deposits, and negative money."""
    pay = ["pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "insurance"]
    run = cli(*pay, "--amount", "92.26", "--notes", NOTES)
    assert run.code == 0, run.err
    run = cli("void", "PAY-000001", "--db", db, "--user", "ana", "--reason", "duplicate")  # a -92.26 reversal
    assert run.code == 0, run.err
    hostile_claim = claim(
        "I1",
        "1",
        "150",
        "100",
        "20",
        lines=[("HC:90837", "150", "100", "20260105", [["CO", "45", "30"], ["PR", "1", "20"]])],
    )
    hostile_claim[1] = ["NM1", "QC", "1", PATIENT, "JANE", "", "", "", "MI", "M1"]
    era = write_835(tmp_path / "hostile.835", [st("0001", amount="100", trace="T500", claims=[hostile_claim])])
    run = cli("era", era, "--db", db, "--user", "ana")
    assert run.code == 0, run.out + run.err
    bank = tmp_path / "bank.csv"
    bank.write_text(
        "deposit_id,deposit_date,amount,trace_number,description\n"
        f"D1,2026-03-02,100.00,T500,{DESCRIPTION}\n"
        f"D2,2026-03-03,7.50,,{DESCRIPTION_2}\n",
        encoding="utf-8",
    )
    run = cli("deposits", "--db", db, "--load", bank, "--user", "ana")
    assert run.code == 0, run.out + run.err
    return db


def _workbook(cli: Callable[..., Run], db: Path, out: Path):
    from openpyxl import load_workbook

    run = cli("export", "--db", db, "--out", out)
    assert run.code == 0, run.err
    return load_workbook(out)


def _column(sheet, name: str) -> list:
    header = [c.value for c in sheet[1]]
    index = header.index(name)
    return [row[index] for row in sheet.iter_rows(min_row=2)]


# --- .xlsx ------------------------------------------------------------------------------------------------------


def test_xlsx_writes_hostile_text_as_text_and_money_as_numbers(
    cli: Callable[..., Run], hostile_db: Path, tmp_path: Path
) -> None:
    book = _workbook(cli, hostile_db, tmp_path / "ledger.xlsx")
    formulas = [
        f"{s.title}!{c.coordinate}" for s in book.worksheets for row in s.iter_rows() for c in row if c.data_type == "f"
    ]
    assert formulas == []

    notes = [c for c in _column(book["payments"], "notes") if c.value and c.value.startswith("=")]
    assert [(c.value, c.data_type) for c in notes] == [(NOTES, "s"), (NOTES, "s")]  # the payment and its reversal
    amounts = [(c.value, c.data_type, c.number_format) for c in _column(book["payments"], "amount")]
    assert (92.26, "n", "#,##0.00") in amounts and (-92.26, "n", "#,##0.00") in amounts
    names = [c for c in _column(book["remittance_claims"], "patient_name")]
    assert [(c.value, c.data_type) for c in names] == [(f"{PATIENT}, JANE", "s")]
    descriptions = {c.value: c.data_type for c in _column(book["deposits"], "description")}
    assert descriptions == {DESCRIPTION: "s", DESCRIPTION_2: "s"}
    # Excel keeps the text as text even if the analyst edits the cell and presses Enter
    assert all(c.quotePrefix for c in notes + names)


def test_xlsx_sheet_xml_holds_cents_and_no_formula(cli: Callable[..., Run], hostile_db: Path, tmp_path: Path) -> None:
    book = _workbook(cli, hostile_db, tmp_path / "ledger.xlsx")
    money_cells = 0
    with zipfile.ZipFile(tmp_path / "ledger.xlsx") as archive:
        for n, sheet in enumerate(book.worksheets, start=1):  # openpyxl names the parts sheet1.xml … in order
            xml = archive.read(f"xl/worksheets/sheet{n}.xml").decode()
            assert "<f>" not in xml and "<f " not in xml, sheet.title
            numbers = dict(re.findall(r'<c r="([A-Z]+[0-9]+)"[^>]*><v>([^<]*)</v>', xml))
            for row in sheet.iter_rows(min_row=2):
                for c in row:
                    if c.number_format == "#,##0.00":
                        # the amount's cents, never a float's tail such as 92.26000000000001
                        assert re.fullmatch(r"-?[0-9]+\.[0-9][0-9]", numbers[c.coordinate]), (sheet.title, c)
                        money_cells += 1
            if sheet.title == "payments":
                assert "<v>92.26</v>" in xml and "<v>-92.26</v>" in xml
    assert money_cells > 50


def test_xlsx_opens_formatted(cli: Callable[..., Run], hostile_db: Path, tmp_path: Path) -> None:
    from openpyxl.utils import get_column_letter

    book = _workbook(cli, hostile_db, tmp_path / "ledger.xlsx")
    for sheet in book.worksheets:
        header = sheet[1]
        assert all(c.font.b for c in header), sheet.title
        assert sheet.freeze_panes == "A2", sheet.title
        assert sheet.auto_filter.ref == f"A1:{get_column_letter(sheet.max_column)}{sheet.max_row}", sheet.title
        widths = [sheet.column_dimensions[get_column_letter(i)].width for i in range(1, sheet.max_column + 1)]
        assert all(8 <= w <= 60 for w in widths), (sheet.title, widths)
        for i, title in enumerate(c.value for c in header):
            assert widths[i] >= len(title), (sheet.title, title, widths[i])

    payments = book["payments"]
    received = _column(payments, "received_on")
    assert all(isinstance(c.value, datetime) and c.number_format == "yyyy-mm-dd" for c in received)
    created = _column(payments, "created_at")
    assert all(isinstance(c.value, datetime) and c.number_format == "yyyy-mm-dd hh:mm:ss" for c in created)
    header = [c.value for c in payments[1]]
    notes_width = payments.column_dimensions[get_column_letter(header.index("notes") + 1)].width
    assert notes_width >= len(NOTES)  # as wide as its content
    invoices = book["invoices"]
    assert {c.number_format for c in _column(invoices, "balance")} == {"#,##0.00"}
    assert {c.number_format for c in _column(invoices, "service_date")} == {"yyyy-mm-dd"}
    i1 = next(r for r in invoices.iter_rows(min_row=2, values_only=True) if r[0] == "I1")
    assert i1[[c.value for c in invoices[1]].index("fee")] == 150


def test_xlsx_text_too_long_for_a_column_is_bounded(cli: Callable[..., Run], db: Path, tmp_path: Path) -> None:
    long_note = "@" + "x" * 300
    run = cli(
        "pay",
        "C1",
        "--db",
        db,
        "--user",
        "ana",
        "--payer",
        "AET",
        "--method",
        "insurance",
        "--amount",
        "1.00",
        "--notes",
        long_note,
    )
    assert run.code == 0, run.err
    from openpyxl.utils import get_column_letter

    book = _workbook(cli, db, tmp_path / "ledger.xlsx")
    payments = book["payments"]
    header = [c.value for c in payments[1]]
    assert payments.column_dimensions[get_column_letter(header.index("notes") + 1)].width == 60
    note = _column(payments, "notes")[0]
    assert (note.value, note.data_type) == (long_note, "s")


# --- CSV ----------------------------------------------------------------------------------------------------------


def _neutral(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def test_csv_export_neutralises_text_and_keeps_money_numeric(
    cli: Callable[..., Run], hostile_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    assert cli("export", "--db", hostile_db, "--out", out).code == 0
    payments_text = (out / "payments.csv").read_text()
    payments = read_csv(payments_text)
    assert [p["notes"] for p in payments if p["notes"].startswith("'")] == ["'" + NOTES] * 2
    assert {"92.26", "-92.26"} <= {p["amount"] for p in payments}
    assert ",-92.26," in payments_text  # a number, not a quoted text
    claims = read_csv((out / "remittance_claims.csv").read_text())
    assert [c["patient_name"] for c in claims] == [f"'{PATIENT}, JANE"]
    deposits = read_csv((out / "deposits.csv").read_text())
    assert sorted(d["description"] for d in deposits) == sorted(["'" + DESCRIPTION, "'" + DESCRIPTION_2])
    for path in out.glob("*.csv"):
        for row in read_csv(path.read_text()):
            for key, value in row.items():
                assert not value.startswith(("=", "+", "@", "\t", "\r")), (path.name, key, value)
                assert not value.startswith("-") or re.fullmatch(r"-\d+(\.\d\d)?", value), (path.name, key, value)


def test_format_csv_neutralises_text(cli: Callable[..., Run], hostile_db: Path) -> None:
    run = cli("payments", "C1", "--db", hostile_db, "--format", "csv")
    assert run.code == 0, run.err
    rows = read_csv(run.out)
    assert [r["notes"] for r in rows if r["notes"].startswith("'")] == ["'" + NOTES] * 2
    assert {"92.26", "-92.26"} <= {r["amount"] for r in rows}
    run = cli("deposits", "--db", hostile_db, "--format", "csv")
    assert run.code == 0, run.err
    assert sorted(r["description"] for r in read_csv(run.out)) == sorted(["'" + DESCRIPTION, "'" + DESCRIPTION_2])
    run = cli("ledger", "C1", "--db", hostile_db, "--format", "json")
    assert run.code == 0 and "'" + NOTES not in run.out  # JSON is data, not a spreadsheet: left as it is


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", "a;=1+1", 'x","=1+1'])
def test_render_csv_quotes_and_neutralises_every_text(text: str) -> None:
    rows = Rows(
        ["text", "amount", "count", "day"],
        [(text, Decimal("-12.50"), -3, date(2026, 3, 1))],
        [False, True, False, False],
    )
    out = render(rows, "csv")
    assert read_csv(out) == [{"text": _neutral(text), "amount": "-12.50", "count": "-3", "day": "2026-03-01"}]
    line = out.split("\n", 1)[1]
    # text is always quoted (a ';' list separator cannot start a new cell); numbers and dates are bare
    assert line.startswith('"') and line.endswith('",-12.50,-3,2026-03-01\n')


def test_xlsx_control_characters_do_not_break_the_export(cli: Callable[..., Run], db: Path, tmp_path: Path) -> None:
    """A note with a control character an .xlsx cannot hold is shown with U+FFFD instead of failing the export."""
    run = cli(
        "pay",
        "C1",
        "--db",
        db,
        "--user",
        "ana",
        "--payer",
        "AET",
        "--method",
        "insurance",
        "--amount",
        "1.00",
        "--notes",
        "bell\x07=1",
    )
    assert run.code == 0, run.err
    note = _column(_workbook(cli, db, tmp_path / "ledger.xlsx")["payments"], "notes")[0]
    assert (note.value, note.data_type) == ("bell\ufffd=1", "s")
