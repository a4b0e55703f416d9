"""Read an input CSV file row by row with the physical line of each row.

Every file recon loads (a practice, a deposit list) reports a bad row as
``file:line: field: what was expected``, where line is the physical line of the
file (the header is line 1, a quoted field may span lines). This is that reader.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from recon.errors import FileFormatError


def check_header(file: str, header: Sequence[str], columns: Sequence[str], optional: Collection[str] = ()) -> list[str]:
    """Normalised column names; refuses a header missing a required column."""
    names = [str(h or "").strip().lower() for h in header]
    missing = [c for c in columns if c not in names and c not in optional]
    if missing:
        raise FileFormatError(
            file, 1, None, f"missing column(s) {', '.join(missing)}; expected header {','.join(columns)}"
        )
    return names


def csv_rows(
    path: Path, columns: Sequence[str], optional: Collection[str] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, cells)`` for each non-blank row; cells are stripped and keyed by column name."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path.name, None, None, "not UTF-8 text") from exc
    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, None)
    if header is None:
        raise FileFormatError(path.name, 1, None, f"empty file; expected header {','.join(columns)}")
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
        yield line, dict(zip(names, (v.strip() for v in values), strict=True))
