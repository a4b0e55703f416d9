"""Bind values into SQL as literals.

DuckDB's Python client imports pandas (half a second) the first time a query has
bound parameters; an interactive ``recon pay`` must feel instant, so recon binds
values itself. Every value is rendered as a typed literal with quotes doubled, so
nothing a user types can change a statement's shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_PLACEHOLDER = re.compile(r"\?|\$(\d+)")


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite amount: {value}")
        return f"CAST('{value}' AS DECIMAL(18,2))"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text with a NUL character")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot bind {type(value).__name__} into SQL")


def bind(sql: str, params: Sequence[Any] = ()) -> str:
    """Replace ``?`` (in order) or ``$n`` placeholders with literals of ``params``."""
    if not params:
        return sql
    values = [literal(p) for p in params]
    position = iter(range(len(values)))

    def swap(match: re.Match[str]) -> str:
        if match.group(1):
            return values[int(match.group(1)) - 1]
        return values[next(position)]

    return _PLACEHOLDER.sub(swap, sql)
