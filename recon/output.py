"""Render exact Arrow tables as a terminal table, CSV or JSON (amounts with two decimals).

CSV is opened in spreadsheets, so text in it is made inert (OWASP's CSV-injection advice):
a text value starting with ``= + - @``, a tab or a carriage return gets a leading ``'``, and
every text value is quoted, so neither a ``;`` list separator nor a line break inside it can
start a new cell. Numbers, dates and money stay bare: ``-12.50`` is still a number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from numbers import Number
from typing import Any

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True, slots=True)
class Rows:
    """A query result without pandas or Arrow (which cost the CLI ~0.3 s to import)."""

    names: list[str]
    rows: list[tuple[Any, ...]]
    decimal: list[bool]

    @classmethod
    def of(cls, cursor: Any) -> Rows:
        desc = cursor.description
        return cls([d[0] for d in desc], cursor.fetchall(), [str(d[1]).startswith("DECIMAL") for d in desc])

    @classmethod
    def from_arrow(cls, table: Any) -> Rows:
        import pyarrow as pa

        names = table.column_names
        rows = list(zip(*(table.column(n).to_pylist() for n in names), strict=True))
        return cls(names, rows, [isinstance(f.type, pa.Decimal128Type) for f in table.schema])


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


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may read as the start of a formula (OWASP CSV injection)."""

_BARE = (Number, date)
"""Values written unquoted: numbers (money is a ``Decimal``, a ``bool`` is an ``int``) and dates, whose text
is only digits, a sign, '.', '-', ':' and a space, or true/false."""


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it but never runs it: a leading ``'`` when it could start a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_field(value: Any) -> str:
    """One CSV field, quoted as written: numbers, dates and booleans bare; any text neutralised and quoted."""
    if value is None or isinstance(value, _BARE):
        return cell(value)
    return '"' + neutralise(str(value)).replace('"', '""') + '"'


def _csv(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A CSV document; the header is ours, so it is quoted only where CSV needs it."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(names)
    buf.writelines(",".join(csv_field(v) for v in r) + "\n" for r in rows)
    return buf.getvalue()


def render(result: Any, fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    """``result``: :class:`Rows` or an Arrow table; ``columns`` picks and orders columns."""
    data = result if isinstance(result, Rows) else Rows.from_arrow(result)
    index = [data.names.index(c) for c in columns] if columns else list(range(len(data.names)))
    names = [data.names[i] for i in index]
    rows = [[r[i] for i in index] for r in data.rows]
    numeric = [data.decimal[i] for i in index]
    if fmt == "csv":
        return _csv(names, rows)
    if fmt == "json":
        return json.dumps([{n: _json(v) for n, v in zip(names, r, strict=True)} for r in rows], indent=2) + "\n"
    text_rows = [[cell(v) for v in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in text_rows]) for i, n in enumerate(names)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(names), line(["-" * w for w in widths])] + [line(r) for r in text_rows]
    return "\n".join(out) + "\n"


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date | datetime):
        return cell(value)
    return value
