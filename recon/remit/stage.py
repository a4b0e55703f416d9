"""Stage remittances as DuckDB temp tables, in chunks, while the file is read.

Posting is set-based (SQL joins over staged tables) so that a million claims cost a
few large statements, not a million small ones. The only per-claim Python is one
formatted text line per claim, line and adjustment. Every ``CHUNK_ROWS`` claims the
lines are written to a scratch file that DuckDB loads (``read_csv``; money parsed by
DuckDB straight into DECIMAL(18,2), never float), and the posting's per-chunk
statements (``after``: matching, entries of the chunk's claims) run on them, so
memory stays flat however large the file is.

Why text and not Arrow: handing any Python object (an Arrow table too) to DuckDB
makes it import pandas, half a second for every ``recon era``; and one f-string per
row costs less than building Arrow columns did (about half, money included). A
chunk whose text a value would break (a value holding the delimiter, a line break or
the null marker) is staged through Arrow instead, so every value is staged exactly
whatever it contains.

The staged text holds PHI (patient names, claim ids, amounts). With an encrypted
ledger it never touches a disk: it is written to anonymous in-memory files
(``memfd_create``, read by DuckDB through ``/proc/self/fd``), or where those do not
exist staged through Arrow. Without encryption the scratch folders are named for
the process that owns them (``recon-stage-PID-*``), and those of a process that no
longer runs (a killed posting) are removed the next time recon opens a ledger.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from recon.procs import running
from recon.remit.era835 import Claim, ProviderAdjustment, Remittance

CHUNK_ROWS = 16_000
"""Claims per chunk: a 10 MB file is two; the buffered lines and claims stay within ~25 MB of Python
memory whatever a file's size (50,000 held ~60 MB, 10,000 posted no faster)."""

SEP = "\x1f"  # ASCII unit separator: X12 allows no control characters in values
NULL = "\x1e"  # ASCII record separator, the null marker (a date the file does not give)

# name -> (column, SQL type)
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "s_claim": (
        ("ci", "BIGINT"),
        ("st", "INTEGER"),
        ("seq", "INTEGER"),
        ("clp01", "VARCHAR"),
        ("status", "VARCHAR"),
        ("charge", "DECIMAL(18,2)"),
        ("paid", "DECIMAL(18,2)"),
        ("patient", "DECIMAL(18,2)"),
        ("pcn", "VARCHAR"),
        ("patient_name", "VARCHAR"),
        ("n_lines", "INTEGER"),
    ),
    "s_line": (
        ("ci", "BIGINT"),
        ("ln", "INTEGER"),
        ("code", "VARCHAR"),
        ("modifiers", "VARCHAR"),
        ("charge", "DECIMAL(18,2)"),
        ("paid", "DECIMAL(18,2)"),
        ("units", "DECIMAL(18,2)"),
        ("billed", "VARCHAR"),
        ("service_date", "DATE"),
    ),
    "s_cas": (
        ("k", "BIGINT"),
        ("ci", "BIGINT"),
        ("ln", "INTEGER"),
        ("grp", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("amount", "DECIMAL(18,2)"),
    ),
    "s_plb": (
        ("st", "INTEGER"),
        ("seq", "INTEGER"),
        ("provider_id", "VARCHAR"),
        ("fiscal", "DATE"),
        ("reason", "VARCHAR"),
        ("reference", "VARCHAR"),
        ("amount", "DECIMAL(18,2)"),
    ),
}

SCRATCH_PREFIXES = ("recon-stage-", "recon-prepare-", "recon-era-")  # recon-era-PID-*: the ERA batch view's uploads
_OWNED = re.compile(r"^recon-(?:stage|prepare|era)-(\d+)-")
LEGACY_AGE = 3600.0
"""Seconds after which a scratch folder named without its owner (older recon) is taken as left behind."""

_DAYS: dict[date, str] = {}
"""Service date -> its staged text (ISO): ``str`` of a date costs a microsecond, and dates repeat."""
_DAYS_LIMIT = 20_000


def _day_text(day: date) -> str:
    if len(_DAYS) >= _DAYS_LIMIT:
        _DAYS.clear()
    text = _DAYS[day] = str(day)  # what an f-string gives a date (or a datetime)
    return text


After = Callable[[int, int], str]
"""SQL to run once claims ``lo < ci <= hi`` are staged (the posting's per-chunk part)."""


class Stager:
    """Staged rows of one file, as text lines, loaded a chunk at a time.

    ``flush`` loads what is still buffered; ``close`` removes the scratch files.
    """

    def __init__(
        self,
        con: Any,
        *,
        after: After | None = None,
        chunk_rows: int | None = None,
        folder: str | None = None,
        private: bool | None = None,
    ) -> None:
        self.con = con
        self.after = after
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self.lines: dict[str, list[str]] = {t: [] for t in TABLES}
        self.refs: list[tuple[int, int, Claim]] = []  # (st, seq, claim) of the buffered claims
        self.plb: list[tuple[Any, ...]] = []
        self.seqs: dict[int, int] = {}  # st -> claims of it staged so far (a claim's seq continues it)
        self.claims = 0
        self.loaded = 0  # claims handed to a chunk so far
        self.cas = 0
        self.first_cas = 0  # the last CAS key before the buffered claims
        self.chunks = 0
        self.private = private_session(con) if private is None else private
        self.fds: dict[str, int] = {}  # in-memory file path -> its descriptor (private staging)
        self.folder = None if self.private else (folder or scratch_folder("stage"))
        if con is not None:  # None: a TextStager, which only writes the files (in a reader process)
            con.execute(
                ";\n".join(
                    f"CREATE OR REPLACE TEMP TABLE {table} ({', '.join(f'{name} {sql}' for name, sql in spec)})"
                    for table, spec in TABLES.items()
                )
            )

    def add(self, st: int, rem: Remittance) -> None:
        """Append one remittance's claims, lines, adjustments and PLB."""
        self.add_claims(st, rem.claims)
        self.add_plb(st, rem.provider_adjustments)

    def add_plb(self, st: int, adjustments: Sequence[ProviderAdjustment]) -> None:
        """Append the PLB of transaction ``st`` (all of them at once: PLB follow a transaction's claims)."""
        for seq, p in enumerate(adjustments, start=1):
            self.plb.append((st, seq, p.provider_id, p.fiscal_period_end, p.reason, p.reference, p.amount))

    def add_claims(self, st: int, claims: Sequence[Claim]) -> None:
        """Append the next claims of transaction ``st`` (a reader's batch, or all of them) with their lines
        and adjustments; a full chunk is loaded at once, so what is buffered stays within ``chunk_rows``."""
        rows = self.lines["s_claim"]
        lines = self.lines["s_line"]
        cas = self.lines["s_cas"]
        refs = self.refs
        ci = self.claims
        k = self.cas
        first = self.seqs.get(st, 0)
        self.seqs[st] = first + len(claims)
        days = _DAYS
        st_text = f"{st}\x1f"
        for seq, claim in enumerate(claims, start=first + 1):
            ci += 1
            refs.append((st, seq, claim))
            claim_lines = claim.lines
            key = f"{ci}\x1f"  # each number is formatted once, however many rows begin with it
            # !s: str() of a Decimal is what format() gives it, at a quarter of the cost
            rows.append(
                f"{key}{st_text}{seq}\x1f{claim.claim_id}\x1f{claim.status}\x1f{claim.charge!s}\x1f"
                f"{claim.paid!s}\x1f{claim.patient_responsibility!s}\x1f{claim.payer_control_number}\x1f"
                f"{claim.patient_name}\x1f{len(claim_lines)}"
            )
            for adj in claim.adjustments:
                k += 1
                cas.append(f"{k}\x1f{key}0\x1f{adj.group}\x1f{adj.reason}\x1f{adj.amount!s}")
            for number, line in enumerate(claim_lines, start=1):
                day = line.service_date
                if day is None:
                    day_text = NULL
                else:
                    day_text = days.get(day)
                    if day_text is None:
                        day_text = _day_text(day)
                modifiers = line.modifiers
                line_key = f"{key}{number}\x1f"
                lines.append(
                    f"{line_key}{line.procedure_code.upper()}\x1f"
                    f"{':'.join(modifiers) if modifiers else ''}\x1f{line.charge!s}\x1f{line.paid!s}\x1f"
                    f"{line.units!s}\x1f{line.billed_code}\x1f{day_text}"
                )
                for adj in line.adjustments:
                    k += 1
                    cas.append(f"{k}\x1f{line_key}{adj.group}\x1f{adj.reason}\x1f{adj.amount!s}")
        self.claims, self.cas = ci, k
        if ci - self.loaded >= self.chunk_rows:
            self._submit()

    def _submit(self) -> None:
        chunk = _Chunk(self.lines, self.refs, self.plb, self.loaded, self.claims, self.first_cas)
        self.lines, self.refs, self.plb = {t: [] for t in TABLES}, [], []
        self.loaded, self.first_cas = self.claims, self.cas
        self.chunks += 1
        self._load(chunk, self.chunks)

    def _texts(self, chunk: _Chunk) -> dict[str, str] | None:
        """The chunk's text per table; None when a value needs the exact path."""
        texts: dict[str, str] = {}
        for table, spec in TABLES.items():
            if table == "s_plb":
                text = _rows_text(chunk.plb, len(spec)) if chunk.plb else ""
            else:
                text = _lines_text(chunk.lines[table], len(spec)) if chunk.lines[table] else ""
            if text is None:
                return None  # a value holds a separator, a line break or the null marker
            if text:
                texts[table] = text
        return texts

    def _files(self, chunk: _Chunk, number: int) -> dict[str, str] | None:
        """Write the chunk's text files (table -> path); None when a value needs the exact path."""
        if self.private and not hasattr(os, "memfd_create"):
            return None  # nowhere private to write text: Arrow
        texts = self._texts(chunk)
        if texts is None:
            return None
        return {table: self._write(f"{number}_{table}", text) for table, text in texts.items()}

    def _write(self, name: str, text: str | bytes) -> str:
        """A file DuckDB can read holding ``text``: in memory when private, else in the scratch folder."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        if self.private:
            fd = os.memfd_create(f"recon-{name}", os.MFD_CLOEXEC)
            _write_all(fd, data)
            path = f"/proc/self/fd/{fd}"
            self.fds[path] = fd
            return path
        assert self.folder is not None
        path = os.path.join(self.folder, f"{name}.txt")
        with open(path, "wb") as out:
            out.write(data)
        return path

    def _discard(self, path: str) -> None:
        fd = self.fds.pop(path, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)

    def _load(self, chunk: _Chunk, number: int) -> None:
        files = self._files(chunk, number)
        if files is None:  # stage exactly whatever the values contain
            chunk.fallback = True
            for table, rows in chunk.rows().items():
                if rows:
                    _insert_arrow(self.con, table, TABLES[table], rows)
            if chunk.plb:
                _insert_arrow(self.con, "s_plb", TABLES["s_plb"], chunk.plb)
            files = {}
        self.load_files(chunk.lo, chunk.hi, files)

    def load_files(self, lo: int, hi: int, files: dict[str, str | bytes], *, after: bool = True) -> None:
        """Load a chunk's text files (claims ``lo < ci <= hi``), run ``after`` on it, remove the files.

        A value that is bytes is the text itself (a reader process kept it in memory):
        it is written to an in-memory file here. ``after=False``: load only; the caller
        runs ``after`` once over several chunks (:meth:`run_after`).
        """
        paths: dict[str, str] = {}
        try:
            for table, file in files.items():
                paths[table] = self._write(f"loaded_{table}", file) if isinstance(file, bytes) else file
            statements = [
                f"INSERT INTO {table} SELECT * FROM {_read_csv(path, TABLES[table])}" for table, path in paths.items()
            ]
            if after and self.after is not None and hi > lo:
                statements.append(self.after(lo, hi))
            if statements:
                self.con.execute(";\n".join(statements))
        finally:
            for path in paths.values():
                self._discard(path)

    def run_after(self, lo: int, hi: int) -> None:
        """Run ``after`` on claims ``lo < ci <= hi``, all loaded already."""
        if self.after is not None and hi > lo:
            self.con.execute(self.after(lo, hi))

    def flush(self) -> None:
        """Load everything still buffered."""
        if self.refs or self.plb:
            self._submit()

    def close(self) -> None:
        """Remove the scratch files."""
        for path in list(self.fds):
            self._discard(path)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def drop(self) -> None:
        for table in TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS {table}")


class _Chunk:
    """The lines of claims ``lo < ci <= hi`` and what is needed to stage them exactly instead."""

    def __init__(
        self,
        lines: dict[str, list[str]],
        refs: list[tuple[int, int, Claim]],
        plb: list[tuple[Any, ...]],
        lo: int,
        hi: int,
        first_cas: int,
    ) -> None:
        self.lines, self.refs, self.plb = lines, refs, plb
        self.lo, self.hi, self.first_cas = lo, hi, first_cas
        self.fallback = False

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """The claim, line and CAS rows as values (numbered exactly as the lines were)."""
        claims: list[tuple[Any, ...]] = []
        lines: list[tuple[Any, ...]] = []
        cas: list[tuple[Any, ...]] = []
        k = self.first_cas
        for ci, (st, seq, claim) in enumerate(self.refs, start=self.lo + 1):
            claims.append(
                (
                    ci,
                    st,
                    seq,
                    claim.claim_id,
                    claim.status,
                    claim.charge,
                    claim.paid,
                    claim.patient_responsibility,
                    claim.payer_control_number,
                    claim.patient_name,
                    len(claim.lines),
                )
            )
            for adj in claim.adjustments:
                k += 1
                cas.append((k, ci, 0, adj.group, adj.reason, adj.amount))
            for number, line in enumerate(claim.lines, start=1):
                lines.append(
                    (
                        ci,
                        number,
                        line.procedure_code.upper(),
                        ":".join(line.modifiers),
                        line.charge,
                        line.paid,
                        line.units,
                        line.billed_code,
                        line.service_date,
                    )
                )
                for adj in line.adjustments:
                    k += 1
                    cas.append((k, ci, number, adj.group, adj.reason, adj.amount))
        return {"s_claim": claims, "s_line": lines, "s_cas": cas}


def _lines_text(lines: list[str], width: int) -> str | None:
    """SEP-delimited ``lines`` as one text; None when a value would break them.

    Counting the separators and line breaks of the whole text proves that no value
    contained one; a NULL marker may only stand for a missing service date.
    """
    text = "\n".join(lines) + "\n"
    if text.count(SEP) != len(lines) * (width - 1) or text.count("\n") != len(lines) or "\r" in text:
        return None
    if NULL in text and any(NULL in line[:-1] for line in lines if NULL in line):
        return None  # the marker inside a value: it may only be a whole last column (a missing date)
    return text


def _rows_text(rows: list[tuple[Any, ...]], width: int) -> str | None:
    """``_lines_text`` for rows of values (None, a missing date, becomes the NULL marker)."""
    if any(isinstance(v, str) and NULL in v for row in rows for v in row):
        return None
    return _lines_text([SEP.join([NULL if v is None else str(v) for v in row]) for row in rows], width)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def private_session(con: Any) -> bool:
    """True when the session's ledger is encrypted: then no staged text may be written to a disk."""
    if con is None:
        return False
    with contextlib.suppress(Exception):
        row = con.execute(
            "SELECT encrypted FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        if row and row[0]:
            return True
    with contextlib.suppress(Exception):
        row = con.execute("SELECT current_setting('temp_file_encryption')").fetchone()
        return bool(row and row[0] in (True, "true", "True"))
    return False


def scratch_folder(kind: str) -> str:
    """A new scratch folder named for this process (``recon-KIND-PID-*``), so that a later recon can tell
    whether its owner still runs."""
    return tempfile.mkdtemp(prefix=f"recon-{kind}-{os.getpid()}-")


def remove_stale_scratch(root: str | None = None) -> list[str]:
    """Remove the scratch folders of recon processes that no longer run (a posting killed mid-way).

    Folders of running processes are left alone; those named without an owner (an
    older recon) once they are an hour old. Returns the folders removed.
    """
    root = root or tempfile.gettempdir()
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(SCRATCH_PREFIXES):
            continue
        with contextlib.suppress(OSError):
            if not entry.is_dir(follow_symlinks=False):
                continue
            owner = _OWNED.match(entry.name)
            if owner is not None:
                if running(int(owner.group(1))):
                    continue
            elif entry.name.startswith("recon-era-") or (
                time.time() - entry.stat(follow_symlinks=False).st_mtime < LEGACY_AGE
            ):  # an upload folder without its owner may belong to a notebook opened before this version
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _read_csv(path: str, spec: tuple[tuple[str, str], ...]) -> str:
    columns = ", ".join(f"'{name}': '{sql}'" for name, sql in spec)
    text_columns = ", ".join(f"'{name}'" for name, sql in spec if sql == "VARCHAR")
    quoted = "'" + path.replace("'", "''") + "'"
    return (
        f"read_csv({quoted}, delim = '{SEP}', quote = '', escape = '', header = false, auto_detect = false, "
        f"new_line = '\\n', nullstr = '{NULL}', force_not_null = [{text_columns}], columns = {{{columns}}})"
    )


def _insert_arrow(con: Any, table: str, spec: tuple[tuple[str, str], ...], rows: list[tuple[Any, ...]]) -> None:
    """The exact path for a chunk with unusual values: Arrow columns (money as decimal128(18,2))."""
    import pyarrow as pa

    types = {
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "VARCHAR": pa.string(),
        "DATE": pa.date32(),
        "DECIMAL(18,2)": pa.decimal128(18, 2),
    }
    columns = list(zip(*rows, strict=True))
    chunk = pa.table(
        [pa.array(list(col), type=types[sql]) for col, (_, sql) in zip(columns, spec, strict=True)],
        names=[name for name, _ in spec],
    )
    con.register("stage_chunk", chunk)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM stage_chunk")
    finally:
        con.unregister("stage_chunk")


class TextStager(Stager):
    """A Stager without a database: it only writes each chunk's text files into ``folder``.

    Runs in a reader process (:mod:`recon.remit.prepare`) while the parent posts
    another file; the parent loads the files with :meth:`Stager.load_files`, chunk
    by chunk as they were cut. ``exact`` is set when a chunk's values cannot be
    written as text (the parent then reads that file itself, the exact way).
    """

    def __init__(self, folder: str | None, *, chunk_rows: int | None = None, private: bool = False) -> None:
        super().__init__(None, chunk_rows=chunk_rows, folder=folder, private=private)
        self.written: list[tuple[int, int, dict[str, str | bytes]]] = []  # (lo, hi, table -> path or text)
        self.exact = False

    def _load(self, chunk: _Chunk, number: int) -> None:
        files: dict[str, str | bytes] | None
        if self.private:  # the text stays in memory, and travels to the parent with the result
            texts = self._texts(chunk)
            files = None if texts is None else {t: text.encode("utf-8") for t, text in texts.items()}
        else:
            written = self._files(chunk, number)
            files = None if written is None else dict(written)
        if files is None:
            self.exact = True
            files = {}
        self.written.append((chunk.lo, chunk.hi, files))
