"""Render exact Arrow tables as a terminal table, CSV or JSON (amounts with two decimals)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

FORMATS = ("table", "csv", "json")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rows_of(table: pa.Table, columns: Sequence[str] | None = None) -> tuple[list[str], list[list[Any]]]:
    names = list(columns) if columns else table.column_names
    data = [table.column(n).to_pylist() for n in names]
    return names, [list(r) for r in zip(*data, strict=True)] if data else []


def render(table: pa.Table, fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    names, rows = rows_of(table, columns)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([cell(v) for v in r] for r in rows)
        return buf.getvalue()
    if fmt == "json":
        return json.dumps([{n: _json(v) for n, v in zip(names, r, strict=True)} for r in rows], indent=2) + "\n"
    text_rows = [[cell(v) for v in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in text_rows]) for i, n in enumerate(names)]
    numeric = [isinstance(table.schema.field(n).type, pa.Decimal128Type) for n in names]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    out = [line(names), line(["-" * w for w in widths])] + [line(r) for r in text_rows]
    return "\n".join(out) + "\n"


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date | datetime):
        return cell(value)
    return value
