"""Read an input CSV file row by row with the physical line of each row.

Every file recon loads (a practice, a deposit list) reports a bad row as
``file:line: field: what was expected``, where line is the physical line of the
file (the header is line 1, a quoted field may span lines). This is that reader.

Lines end only at CR, LF or CRLF, as in RFC 4180: a Unicode line separator
(U+2028, U+0085, ...) inside a field stays in that field, where the field's own
check refuses it by name, instead of silently splitting the row in two. A field is
at most :data:`MAX_FIELD` characters: a longer one is refused by line and column
(the ``csv`` module's own limit would otherwise surface as an internal error).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from recon.errors import FileFormatError

MAX_FIELD = 1000
"""The longest field (characters) any input CSV may hold: names, ids and amounts are far shorter."""


def check_header(file: str, header: Sequence[str], columns: Sequence[str], optional: Collection[str] = ()) -> list[str]:
    """Normalised column names; refuses a header missing a required column or naming one twice."""
    names = [str(h or "").strip().lower() for h in header]
    missing = [c for c in columns if c not in names and c not in optional]
    if missing:
        raise FileFormatError(
            file, 1, None, f"missing column(s) {', '.join(missing)}; expected header {','.join(columns)}"
        )
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        raise FileFormatError(
            file, 1, None, f"column(s) {', '.join(twice)} given twice; expected header {','.join(columns)}"
        )
    return names


def csv_rows(
    path: Path, columns: Sequence[str], optional: Collection[str] = (), max_field: int = MAX_FIELD
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, cells)`` for each non-blank row; cells are stripped and keyed by column name."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path.name, None, None, "not UTF-8 text") from exc
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            raise FileFormatError(path.name, 1, None, f"empty file; expected header {','.join(columns)}")
        _check_lengths(path.name, 1, header, None, max_field)
        names = check_header(path.name, header, columns, optional)
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(names):
                raise FileFormatError(
                    path.name, line, None, f"{len(values)} fields; expected {len(names)} ({','.join(names)})"
                )
            _check_lengths(path.name, line, values, names, max_field)
            yield line, dict(zip(names, (v.strip() for v in values), strict=True))
    except csv.Error as exc:
        raise _csv_error(path.name, lines, start, exc, max_field) from None


def _check_lengths(file: str, line: int, values: Sequence[str], names: Sequence[str] | None, limit: int) -> None:
    for n, value in enumerate(values):
        if len(value) > limit:
            field = names[n] if names is not None else f"column {n + 1} of the header"
            raise FileFormatError(file, line, field, f"{len(value):,} characters; expected at most {limit:,}")


def _csv_error(file: str, lines: list[str], start: int, exc: csv.Error, limit: int) -> FileFormatError:
    """The ``csv`` module's refusal of the row beginning at ``start``, said as a file error.

    Its field size limit is the only one it has; the row is read again, just this
    once and with the limit lifted, to name the column that is too long.
    """
    if "field larger than field limit" in str(exc):
        old = csv.field_size_limit()
        csv.field_size_limit(max(old, sum(len(x) for x in lines[start - 1 :]) + 1))
        try:
            values = next(csv.reader(lines[start - 1 :]), [])
        except csv.Error:
            values = []
        finally:
            csv.field_size_limit(old)
        if start > 1:
            header = next(csv.reader(lines[:1]), [])
            names = [h.strip().lower() for h in header]
            names += [f"column {n + 1}" for n in range(len(names), len(values))]
        else:
            names = None
        try:
            _check_lengths(file, start, values, names, limit)
        except FileFormatError as err:
            return err
        return FileFormatError(file, start, None, f"a field is longer than {limit:,} characters")
    return FileFormatError(file, start, None, f"not valid CSV ({exc}); expected comma-separated fields")
