"""Export the ledger: invoices with their balances, payments, entries and the audit log.

``.xlsx`` → one sheet per table; ``.parquet``/``--format parquet`` → a folder of
Parquet files (or one file per table); anything else → a folder of CSV files.
Money stays exact: decimal128 in Parquet, two-decimal text in CSV, numbers in Excel
whose sheet XML holds the amount's exact two-decimal text (``92.26``, never a float's
``92.26000000000001``), shown with a ``#,##0.00`` format.

Text that users, payers or banks wrote (payment notes, 835 patient names, deposit
descriptions) never becomes a formula: in Excel every text cell is a string cell,
and the ones that look like a formula also carry Excel's quote prefix, so editing the
cell keeps it text; in CSV text is neutralised and quoted (see :mod:`recon.output`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recon.errors import InputError
from recon.output import FORMULA_START, cell, render

EXPORT_FORMATS = ("csv", "xlsx", "parquet")
MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MIN_WIDTH, MAX_WIDTH = 8, 60
"""Column widths in Excel's units (about one character each): as wide as the content, within these bounds."""
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
"""Control characters an .xlsx cannot hold (all but tab, LF and CR): written as U+FFFD."""


def export_format(out: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"--format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in ("xlsx", "parquet", "csv"):
        return suffix
    if suffix:
        raise InputError(f"--out: {out.name}: unknown extension; expected .xlsx, .parquet, .csv or a folder")
    return "csv"


def export_ledger(recon: Any, out: Path, fmt: str | None = None) -> list[Path]:
    """Write every export table; returns the files written."""
    kind = export_format(out, fmt)
    from recon.reports import export_tables as report_tables

    tables = [*recon.tables_for_export(), *report_tables(recon)]
    if kind == "xlsx":
        if out.suffix.lower() != ".xlsx":
            out = out.with_suffix(".xlsx")
        _write_xlsx(out, tables)
        return [out]
    folder = out.with_suffix("") if out.suffix.lower() in (".csv", ".parquet") else out
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables:
        path = folder / f"{name}.{kind}"
        if kind == "parquet":
            pq.write_table(table, path)
        else:
            path.write_text(render(table, "csv"), encoding="utf-8")
        written.append(path)
    return written


def _write_xlsx(out: Path, tables: list[tuple[str, pa.Table]]) -> None:
    """One formatted sheet per table, written next to ``out`` and renamed, so a failure leaves no half file."""
    from openpyxl import Workbook

    out.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook(write_only=True)
    for name, table in tables:
        _write_sheet(book.create_sheet(title=name[:31]), table)
    unfinished = out.with_name(f".{out.name}.partial")
    try:
        book.save(unfinished)
        os.replace(unfinished, out)
    finally:
        unfinished.unlink(missing_ok=True)


def _write_sheet(sheet: Any, table: pa.Table) -> None:
    """Bold frozen header, an autofilter over the table, each column as wide as its content."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    names = table.column_names
    money = [pa.types.is_decimal(f.type) and f.type.scale == 2 for f in table.schema]
    columns = [table.column(n).to_pylist() for n in names]
    last = get_column_letter(max(len(names), 1))
    for i, (title, values) in enumerate(zip(names, columns, strict=True), start=1):
        # + 3: the bold title and the filter's drop-down button
        content = max([len(title) + 3] + [_shown_width(v) + 1 for v in values])
        sheet.column_dimensions[get_column_letter(i)].width = min(max(content, MIN_WIDTH), MAX_WIDTH)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{last}{table.num_rows + 1}"
    new = partial(WriteOnlyCell, sheet)
    bold = Font(bold=True)
    header = []
    for title in names:
        head = _text_cell(new, title)
        head.font = bold
        header.append(head)
    sheet.append(header)
    for row in zip(*columns, strict=True):
        sheet.append([_cell(new, v, m) for v, m in zip(row, money, strict=True)])


def _cell(new: Callable[[Any], Any], value: Any, money: bool) -> Any:
    """A cell for one value: money and other decimals as exact numbers, dates as dates, anything else as text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        # openpyxl would write a Decimal through float and '%.16g' (92.26 -> 92.26000000000001): give the
        # number's XML text ourselves, exact, and mark the cell numeric; Excel reads it as the nearest double
        number = new(format(value, ".2f" if money else "f"))
        number.data_type = "n"
        if money:
            number.number_format = MONEY_FORMAT
        return number
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # Excel has no time zones: write it in UTC
            value = value.astimezone(UTC).replace(tzinfo=None)
        stamp = new(value)
        stamp.number_format = DATETIME_FORMAT
        return stamp
    if isinstance(value, date):
        day = new(value)
        day.number_format = DATE_FORMAT
        return day
    return _text_cell(new, cell(value))


def _text_cell(new: Callable[[Any], Any], text: str) -> Any:
    """A string cell, whatever the text looks like: never a formula (``=…``) nor an error value (``#N/A``)."""
    text_cell = new(_NOT_IN_XML.sub("\ufffd", text))
    text_cell.data_type = "s"
    if text.startswith(FORMULA_START):
        text_cell.quotePrefix = True  # Excel's leading apostrophe: editing the cell keeps it text
    return text_cell


def _shown_width(value: Any) -> int:
    """About how many characters Excel shows for ``value`` in its format (text: its longest line)."""
    if value is None:
        return 0
    if isinstance(value, Decimal):
        return len(f"{value:,.2f}")
    if isinstance(value, datetime):
        return len(DATETIME_FORMAT)
    if isinstance(value, date):
        return len(DATE_FORMAT)
    return max(len(line) for line in cell(value).splitlines() or [""])
