"""Export the ledger: invoices with their balances, payments, entries and the audit log.

``.xlsx`` → one sheet per table; ``.parquet``/``--format parquet`` → a folder of
Parquet files (or one file per table); anything else → a folder of CSV files.
Money stays exact: decimal128 in Parquet, two-decimal text in CSV, numbers with a
0.00 format in Excel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recon.errors import InputError
from recon.output import render

EXPORT_FORMATS = ("csv", "xlsx", "parquet")


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
    from openpyxl import Workbook

    out.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook(write_only=True)
    for name, table in tables:
        sheet = book.create_sheet(title=name[:31])
        sheet.append(table.column_names)
        for row in table.to_pylist():
            # openpyxl writes a Decimal as its exact decimal text, never via a float
            sheet.append(list(row.values()))
    book.save(out)
