"""Load a practice (users, payers, clients, policies, invoices) from CSV files or an .xlsx.

A load is one transaction. Any bad row fails the whole load with
``file:line: field: what was expected`` (line = the physical line, the header being
line 1) and nothing of it is kept. Loading the same data again changes nothing; an
id already in the ledger with different content is an error, never an overwrite.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from recon.csvfile import MAX_FIELD, check_header, csv_rows
from recon.errors import FileFormatError, InputError, InvalidAmount, LedgerError, NotFound, PermissionDenied
from recon.money import ZERO, parse_amount
from recon.rules.permissions import ADMIN, granted, require_admin
from recon.store.sql import literal

TABLES: dict[str, tuple[str, ...]] = {
    "users": ("user_id", "name", "permissions"),
    "insurance_providers": ("payer_id", "name", "payer_identifier"),
    "clients": ("client_id", "first_name", "last_name", "date_of_birth", "copay"),
    "client_insurance": ("client_id", "payer_id", "member_id", "priority", "copay"),
    "invoices": (
        "invoice_id",
        "client_id",
        "service_date",
        "service_code",
        "units",
        "fee",
        "payer_id",
        "client_amt_due",
        "ins_amt_due",
        "claim_id",
    ),
}
OPTIONAL_COLUMNS = {
    "invoices": {"payer_id", "client_amt_due", "ins_amt_due", "claim_id", "units"},
    "client_insurance": {"member_id", "copay"},
    "insurance_providers": {"payer_identifier"},
    "clients": {"date_of_birth", "copay"},
}
PRIORITIES = ("primary", "secondary", "tertiary")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,79}")
_UNITS = re.compile(r"[0-9]{1,5}")  # ASCII digits only: int() would also take '٣' or '３'
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
_US_DATE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}")
_PERMISSION = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Bidirectional embeddings, overrides and isolates: they make a name display as other text.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


@dataclass(frozen=True, slots=True)
class Row:
    """One input row: where it came from and its raw cells by column name."""

    file: str
    line: int
    cells: dict[str, str]

    def err(self, field: str | None, problem: str) -> FileFormatError:
        return FileFormatError(self.file, self.line, field, problem)


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What a load added and found unchanged; a first load also says who its admins are."""

    source: str
    added: dict[str, int]
    unchanged: dict[str, int]
    first_load: bool = False
    first_admins: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = [f"{t}: {self.added.get(t, 0)} added, {self.unchanged.get(t, 0)} unchanged" for t in TABLES]
        text = f"Loaded {self.source}\n  " + "\n  ".join(parts)
        if self.first_load and self.first_admins:
            text += (
                f"\nFirst load into an empty ledger: created its first admin(s): {', '.join(self.first_admins)}. "
                "From now on only an admin can load practices or add users (recon load --user ADMIN)."
            )
        elif self.first_load and any(self.added.values()):
            who = "no user has the admin permission" if self.added.get("users") else "it had no users.csv"
            text += (
                f"\nFirst load into an empty ledger: {who}, so this ledger takes no further load; "
                "to allow loads, give a user 'admin' in users.csv of a first load into a new ledger."
            )
        return text


# ------------------------------------------------------------------ reading
def read_source(source: Path, skip: tuple[str, ...] = ()) -> dict[str, list[Row]]:
    """Rows of each table from a folder of ``<table>.csv`` or sheets of one ``.xlsx``.

    ``skip`` names CSV files not to read (those DuckDB has read and checked: see :func:`_stage`).
    """
    if source.is_dir():
        found = {t: source / f"{t}.csv" for t in TABLES if (source / f"{t}.csv").exists()}
        if not found:
            raise InputError(f"{source}: no practice files found (expected {', '.join(t + '.csv' for t in TABLES)})")
        return {t: list(_csv_rows(p, t)) for t, p in found.items() if t not in skip}
    if source.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(source)
    if source.suffix.lower() == ".csv" and source.stem in TABLES:
        return {} if source.stem in skip else {source.stem: list(_csv_rows(source, source.stem))}
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    raise InputError(f"{source}: expected a folder of CSV files or an .xlsx workbook")


def _csv_rows(path: Path, table: str) -> Iterator[Row]:
    for line, cells in csv_rows(path, TABLES[table], OPTIONAL_COLUMNS.get(table, set())):
        yield Row(path.name, line, cells)


def _xlsx_rows(path: Path) -> dict[str, list[Row]]:
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - a dependency
        raise InputError("Reading .xlsx needs openpyxl") from exc
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InputError(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    out: dict[str, list[Row]] = {}
    for sheet in book.worksheets:
        table = sheet.title.strip().lower().removesuffix(".csv")
        if table not in TABLES:
            continue
        where = f"{path.name}[{sheet.title}]"
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise FileFormatError(where, 1, None, f"empty sheet; expected header {','.join(TABLES[table])}")
        names = check_header(where, header, TABLES[table], OPTIONAL_COLUMNS.get(table, set()))
        out[table] = []
        for n, values in enumerate(rows, start=2):
            if all(v in (None, "") for v in values):
                continue
            cells = dict(zip(names, (_cell_text(v) for v in values), strict=False))
            for field, text in cells.items():
                if len(text) > MAX_FIELD:
                    raise FileFormatError(where, n, field, f"{len(text):,} characters; expected at most {MAX_FIELD:,}")
            out[table].append(Row(where, n, cells))
    book.close()
    if not out:
        raise InputError(f"{path.name}: no sheets named {', '.join(TABLES)}")
    return out


def _cell_text(value: Any) -> str:
    """Excel stores numbers as binary floats; their shortest repr is what the user typed."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # not money yet: parsed strictly below
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value).strip()


# ------------------------------------------------------------ field parsers
def _id(row: Row, field: str, required: bool = True) -> str | None:
    value = row.cells.get(field, "")
    if not value:
        if required:
            raise row.err(field, "required; expected an id")
        return None
    if not _ID.fullmatch(value):
        raise row.err(field, f"{_cut(value)!r} is not a valid id; expected up to 80 letters, digits, . _ / -")
    return value


def _text(row: Row, field: str, required: bool = True) -> str | None:
    value = row.cells.get(field, "")
    if not value and required:
        raise row.err(field, "required")
    for n, char in enumerate(value):
        if char in _BIDI or unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            name = unicodedata.name(char, "a control character")
            raise row.err(
                field,
                f"{_cut(value)!r} holds U+{ord(char):04X} ({name}) at character {n + 1}; "
                "expected text on one line without control characters",
            )
    return value or None


def _cut(value: str, limit: int = 60) -> str:
    """A bad value as it is quoted in a message: its first ``limit`` characters."""
    return value if len(value) <= limit else value[:limit] + "…"


def _amount(row: Row, field: str, required: bool = True) -> Decimal | None:
    value = row.cells.get(field, "")
    if not value:
        if required:
            raise row.err(field, "required; expected an amount such as 120.00")
        return None
    try:
        amount = parse_amount(value, field)
    except InvalidAmount as exc:
        raise row.err(field, f"{_cut(value)!r} is not valid; expected {exc.expected}") from None
    if amount < ZERO:
        raise row.err(field, f"{value!r} is negative; expected 0.00 or more")
    return amount


def parse_date(value: str) -> date:
    """ISO ``YYYY-MM-DD`` or US ``MM/DD/YYYY`` in ASCII digits; raises ValueError otherwise.

    ``strptime`` alone would also read other scripts' digits (``٢٠٢٦-...``).
    """
    for shape, pattern in ((_ISO_DATE, "%Y-%m-%d"), (_US_DATE, "%m/%d/%Y")):
        if shape.fullmatch(value):
            return datetime.strptime(value, pattern).date()
    raise ValueError(value)


def _date(row: Row, field: str, required: bool = True) -> date | None:
    value = row.cells.get(field, "")
    if not value:
        if required:
            raise row.err(field, "required; expected a date YYYY-MM-DD")
        return None
    try:
        return parse_date(value)
    except ValueError:
        raise row.err(field, f"{_cut(value)!r} is not a date; expected YYYY-MM-DD") from None


# --------------------------------------------------------------- validation
def validate(
    tables: dict[str, list[Row]], existing: dict[str, dict[str, tuple[Any, ...]]]
) -> dict[str, dict[Any, tuple[Any, ...]]]:
    """Turn rows into typed records, checking every reference; raise on the first bad row.

    ``existing`` holds what the ledger already has, so a load may refer to it.
    """
    out: dict[str, dict[Any, tuple[Any, ...]]] = {t: {} for t in TABLES}
    where: dict[tuple[str, Any], Row] = {}

    def put(table: str, key: Any, record: tuple[Any, ...], row: Row) -> None:
        old = out[table].get(key)
        if old is not None and old != record:
            first = where[(table, key)]
            raise row.err(None, f"duplicate id {_show(key)} with different content than line {first.line}")
        stored = existing[table].get(key)
        if stored is not None and stored != record:
            raise row.err(
                None,
                f"{_show(key)} is already in the ledger with different content; recon never overwrites a loaded record",
            )
        out[table][key] = record
        where[(table, key)] = row

    for row in tables.get("users", []):
        uid = _id(row, "user_id")
        put("users", uid, (uid, _text(row, "name"), _permissions(row)), row)

    for row in tables.get("insurance_providers", []):
        pid = _id(row, "payer_id")
        put("insurance_providers", pid, (pid, _text(row, "name"), _text(row, "payer_identifier", False)), row)

    for row in tables.get("clients", []):
        cid = _id(row, "client_id")
        copay = _amount(row, "copay", False) or ZERO
        record = (cid, _text(row, "first_name"), _text(row, "last_name"), _date(row, "date_of_birth", False), copay)
        put("clients", cid, record, row)

    def known(table: str, key: Any) -> tuple[Any, ...] | None:
        return out[table].get(key) or existing[table].get(key)

    for row in tables.get("client_insurance", []):
        cid, pid = _id(row, "client_id"), _id(row, "payer_id")
        if known("clients", cid) is None:
            raise row.err("client_id", f"unknown client {cid!r}; expected a client_id from clients.csv")
        if known("insurance_providers", pid) is None:
            raise row.err("payer_id", f"unknown payer {pid!r}; expected a payer_id from insurance_providers.csv")
        priority = row.cells.get("priority", "").lower() or "primary"
        if priority not in PRIORITIES:
            raise row.err("priority", f"{priority!r} is not valid; expected primary, secondary or tertiary")
        put(
            "client_insurance",
            (cid, pid),
            (cid, pid, _text(row, "member_id", False), priority, _amount(row, "copay", False)),
            row,
        )

    policies: dict[str, list[tuple[Any, ...]]] = {}
    for source in (existing["client_insurance"], out["client_insurance"]):
        for (cid, _pid), rec in source.items():
            policies.setdefault(cid, [])
            policies[cid] = [p for p in policies[cid] if p[1] != rec[1]] + [rec]

    for row in tables.get("invoices", []):
        put("invoices", _id(row, "invoice_id"), _invoice(row, known, policies), row)
    return out


def _invoice(row: Row, known: Any, policies: dict[str, list[tuple[Any, ...]]]) -> tuple[Any, ...]:
    iid, cid = _id(row, "invoice_id"), _id(row, "client_id")
    client = known("clients", cid)
    if client is None:
        raise row.err("client_id", f"unknown client {cid!r}; expected a client_id from clients.csv")
    service_date = _date(row, "service_date")
    code = _text(row, "service_code")
    units_text = row.cells.get("units", "") or "1"
    if not _UNITS.fullmatch(units_text) or int(units_text) < 1:
        raise row.err(
            "units", f"{_cut(units_text)!r} is not valid; expected a whole number of units from 1 to 99999 (digits 0-9)"
        )
    fee = _amount(row, "fee")
    assert fee is not None
    client_policies = sorted(policies.get(cid, []), key=lambda p: PRIORITIES.index(p[3]))
    payer_id = _id(row, "payer_id", False)
    if payer_id is None:
        policy = client_policies[0] if client_policies else None
        payer_id = policy[1] if policy else None
    else:
        if known("insurance_providers", payer_id) is None:
            raise row.err("payer_id", f"unknown payer {payer_id!r}; expected a payer_id from insurance_providers.csv")
        policy = next((p for p in client_policies if p[1] == payer_id), None)
    client_due = _amount(row, "client_amt_due", False)
    ins_due = _amount(row, "ins_amt_due", False)
    if client_due is None and ins_due is None:
        if payer_id is None:
            client_due = fee
        else:
            copay = policy[4] if policy is not None and policy[4] is not None else client[4]
            client_due = min(copay, fee)
        ins_due = fee - client_due
    elif client_due is None:
        assert ins_due is not None
        if ins_due > fee:
            raise row.err("ins_amt_due", f"{ins_due} is more than the fee {fee}")
        client_due = fee - ins_due
    elif ins_due is None:
        if client_due > fee:
            raise row.err("client_amt_due", f"{client_due} is more than the fee {fee}")
        ins_due = fee - client_due
    elif client_due + ins_due > fee:
        raise row.err(
            "ins_amt_due",
            f"client_amt_due {client_due} + ins_amt_due {ins_due} = {client_due + ins_due} is more than the fee {fee}; "
            "expected the two amounts due to add up to at most the fee",
        )
    if ins_due > ZERO and payer_id is None:
        raise row.err("payer_id", "required when the invoice has an Ins Amt Due and the client has no insurance")
    claim_id = _id(row, "claim_id", False) or iid
    return (iid, cid, service_date, code, int(units_text), fee, payer_id, client_due, ins_due, claim_id)


def _permissions(row: Row) -> str:
    """``billing;admin`` normalised (lower case, sorted, no blanks); each a word such as billing."""
    text = row.cells.get("permissions", "")
    _text(row, "permissions", required=False)
    perms = {p.strip().lower() for p in text.split(";") if p.strip()}
    for perm in sorted(perms):
        if not _PERMISSION.fullmatch(perm):
            raise row.err(
                "permissions",
                f"{_cut(perm)!r} is not a permission; expected words such as billing or admin separated by ';'",
            )
    return ";".join(sorted(perms))


def _show(key: Any) -> str:
    return "/".join(key) if isinstance(key, tuple) else repr(key)


# ------------------------------------------------------------------ writing
_KEYS = {
    "users": "user_id",
    "insurance_providers": "payer_id",
    "clients": "client_id",
    "client_insurance": "client_id || '/' || payer_id",
    "invoices": "invoice_id",
}


def load_practice(
    recon: Any, source: Path, user_id: str | None, progress: Callable[[str], None] | None = None
) -> LoadSummary:
    """Check who loads, validate everything, then write it in one transaction; an id already present must match.

    ``progress`` (the CLI's terminal line) is told each step: reading, checking, and each table written.

    A load creates users and grants their permissions, so it needs the admin
    permission; only the first load into an empty ledger (no users, no practice
    data) needs none: it is how the first admin comes to exist, and ``user_id``, if
    given, must be one of the users it creates.

    The big files (clients, policies and invoices: a million rows) are read, checked
    and written by DuckDB (:func:`_stage`, :func:`_write_staged`); only when that finds
    anything amiss is the load done again row by row in Python, whose first refusal is
    the message.
    """
    con = recon.con
    first = _is_empty(con)
    if not first:
        if _has_no_users(con):
            raise PermissionDenied(
                "This ledger holds a practice but no users, so no admin can load into it; only the first load "
                "into an empty ledger creates users without an admin: load the practice with its users.csv "
                "into a new ledger"
            )
        if not user_id:
            raise PermissionDenied(
                "Loading into a ledger that has users needs --user: an admin of this ledger "
                "(only the first load into an empty ledger needs none)"
            )
        require_admin(recon.user(user_id), "load a practice (it can add users and grant permissions)")
    say = progress or (lambda _text: None)
    say(f"reading {source.name}")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
    staged: dict[str, int] = {}
    try:
        for table, path in _staged_files(source).items():
            count = _stage(con, path, table)
            if count is None:
                break
            staged[table] = count
        else:
            if staged:
                try:
                    return _load(recon, source, user_id, first, say, staged)
                except _NotFast:
                    pass  # something in a staged file is amiss: the row-by-row path names it
    finally:
        for table in _STAGED:
            con.execute(f"DROP TABLE IF EXISTS {_stage_name(table)}")
            con.execute(f"DROP TABLE IF EXISTS {_records_name(table)}")
        _restore_memory_limit(con, limit)
    return _load(recon, source, user_id, first, say, {})


def _load(
    recon: Any, source: Path, user_id: str | None, first: bool, say: Callable[[str], None], staged: dict[str, int]
) -> LoadSummary:
    """Validate and write; the ``staged`` tables' files sit checked in temporary tables, only the rest is read."""
    con = recon.con
    tables = read_source(source, skip=tuple(staged))
    rows_read = sum(len(rows) for rows in tables.values()) + sum(staged.values())
    in_sql = f" ({sum(staged.values()):,} of them read and checked by DuckDB)" if staged else ""
    say(f"checking {rows_read:,} rows{in_sql}")
    existing: dict[str, dict[str, tuple[Any, ...]]] = {}
    for table, cols in TABLES.items():
        if table == "invoices" or table in staged:
            existing[table] = {}
            continue
        rows = con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
        key = (lambda r: (r[0], r[1])) if table == "client_insurance" else (lambda r: r[0])
        existing[table] = {key(r): tuple(r) for r in rows}
    existing["invoices"] = _existing_invoices(con, [_id_cell(r) for r in tables.get("invoices", [])])
    records = validate(tables, existing)
    admins: tuple[str, ...] = ()
    if first:
        if user_id and user_id not in records["users"]:
            raise NotFound(
                f"No user {user_id!r} in this ledger, and this first load does not create one; "
                "give the user_id of one of its users.csv rows, or leave --user out"
            )
        admins = tuple(granted(records["users"].values(), ADMIN))
    added: dict[str, int] = {}
    unchanged: dict[str, int] = {}
    new: dict[str, list[tuple[Any, ...]]] = {}
    for table, recs in records.items():
        new[table] = []
        for key, rec in recs.items():
            old = existing[table].get(key)
            if old is None:
                new[table].append(rec)
        added[table] = len(new[table])
        unchanged[table] = len(recs) - len(new[table])
    with recon.transaction():
        if first and not _is_empty(con):
            raise LedgerError("Another load filled this ledger meanwhile; nothing was loaded; retry as an admin")
        for table in TABLES:
            if table in staged:
                added[table], unchanged[table] = _write_staged(con, table, say)
                continue
            if new[table]:
                say(f"writing {table} ({len(new[table]):,} rows)")
                marks = ", ".join("?" for _ in TABLES[table])
                _insert_many(
                    con,
                    f"INSERT INTO {table} ({', '.join(TABLES[table])}) VALUES ({marks})",
                    new[table],
                    TABLES[table],
                    table,
                )
        if any(added.values()):
            detail: dict[str, Any] = {"added": added}
            if first:
                detail["first_load"] = True
                detail["first_admins"] = list(admins)
            recon.audit(user_id or "(first load)", "load_practice", "practice", str(source), detail)
    return LoadSummary(str(source), added, unchanged, first_load=first, first_admins=admins)


def _id_cell(row: Row) -> str:
    return row.cells.get("invoice_id", "")


def _existing_invoices(con: Any, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The ledger's invoices among ``ids``: a reload is compared with them, never the whole (10M-row) table."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    import pyarrow as pa

    con.register("_load_ids", pa.table({"invoice_id": pa.array(wanted, type=pa.string())}))
    try:
        cols = ", ".join(f"i.{c}" for c in TABLES["invoices"])
        rows = con.execute(f"SELECT {cols} FROM invoices i JOIN _load_ids USING (invoice_id)").fetchall()
    finally:
        con.unregister("_load_ids")
    return {r[0]: tuple(r) for r in rows}


def _restore_memory_limit(con: Any, shown: str) -> None:
    """Put back the session's memory limit, which DuckDB shows rounded (``'286.1 MiB'`` for 300MB).

    The session's own setting (recon.store.db) is set again as written when it is the one
    shown; otherwise the shown value is the best there is.
    """
    from recon.store.db import MEMORY_LIMIT

    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    if con.execute("SELECT current_setting('memory_limit')").fetchone()[0] != shown:
        con.execute(f"SET memory_limit = {literal(shown)}")


def _has_no_users(con: Any) -> bool:
    row = con.execute("SELECT count(*) FROM users").fetchone()
    return not row or row[0] == 0


def _is_empty(con: Any) -> bool:
    """No users and no practice data: the only state in which a load needs no admin."""
    counts = " + ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
    row = con.execute(f"SELECT {counts}").fetchone()
    return not row or row[0] == 0


def _insert_many(con: Any, sql: str, rows: list[tuple[Any, ...]], cols: tuple[str, ...], table: str) -> None:
    """Insert through Arrow for speed on large practices (executemany is row-at-a-time).

    A few rows go in as one statement of literals: bound parameters would make DuckDB's
    client import pandas (a second or two of a large load's time).
    """
    if len(rows) < 200:
        values = ", ".join("(" + ", ".join(literal(v) for v in r) + ")" for r in rows)
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES {values}")
        return
    import pyarrow as pa

    columns = list(zip(*rows, strict=True))
    types = con.execute(f"SELECT {', '.join(cols)} FROM {table} LIMIT 0").to_arrow_table().schema
    batch = pa.table({c: pa.array(list(v), type=types.field(c).type) for c, v in zip(cols, columns, strict=True)})
    con.register("_load_batch", batch)
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _load_batch")
    finally:
        con.unregister("_load_batch")


# ----------------------------------------------- the big files through DuckDB
LOAD_MEMORY_LIMIT = "200MB"
"""DuckDB's memory limit while a load stages and writes (the session's own is restored after).

A million invoices (bench/bench_scale.py, recon load as a process): peak RSS 388-534 MB
with the session's 300MB, 288 MB with 200MB, and no more CPU time.
"""
_STAGED = ("clients", "client_insurance", "invoices")
"""Tables whose CSV DuckDB reads and checks; users and payers are a handful of rows, read in Python."""
_ID_RE = "[A-Za-z0-9][A-Za-z0-9._/-]{0,79}"
_AMOUNT_RE = r"[0-9]{1,16}(\.[0-9]{1,2})?"
# What _text refuses (controls, line and paragraph separators, bidi marks), and the quote (the two
# CSV readers read a malformed quoted field differently); a value holding any is loaded row by row.
_TEXT_RE = (
    '[^\\x00-\\x1f\\x7f-\\x9f\\x{2028}\\x{2029}\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}\\x{200e}\\x{200f}\\x{061c}"]*'
)
# Characters str.strip() removes beyond the space (the others are controls, refused anyway).
_SPACES = "\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{202f}\\x{205f}\\x{3000}"
_EDGE_SPACE_RE = f"^[{_SPACES}]|[{_SPACES}]$"
_KINDS: dict[str, dict[str, str]] = {
    "clients": {
        "client_id": "id",
        "first_name": "text",
        "last_name": "text",
        "date_of_birth": "date?",
        "copay": "amount?",
    },
    "client_insurance": {
        "client_id": "id",
        "payer_id": "id",
        "member_id": "text?",
        "priority": "priority",
        "copay": "amount?",
    },
    "invoices": {
        "invoice_id": "id",
        "client_id": "id",
        "service_date": "date",
        "service_code": "text",
        "units": "units",
        "fee": "amount",
        "payer_id": "id?",
        "client_amt_due": "amount?",
        "ins_amt_due": "amount?",
        "claim_id": "id?",
    },
}
_KEY_COLUMNS = {"clients": ("client_id",), "client_insurance": ("client_id", "payer_id"), "invoices": ("invoice_id",)}


class _NotFast(Exception):
    """A staged file holds something the SQL checks do not accept: load row by row to name it."""


def _stage_name(table: str) -> str:
    return f"_load_stage_{table}"


def _records_name(table: str) -> str:
    return f"_load_records_{table}"


def _staged_files(source: Path) -> dict[str, Path]:
    """The CSV files of :data:`_STAGED` a load would read (a folder's, or the one file given)."""
    if source.is_dir():
        return {t: source / f"{t}.csv" for t in _STAGED if (source / f"{t}.csv").is_file()}
    if source.suffix.lower() == ".csv" and source.stem in _STAGED and source.is_file():
        return {source.stem: source}
    return {}


def _data_lines(path: Path) -> int | None:
    """Physical lines after the header, or None when lines end in a lone CR (DuckDB might split them otherwise)."""
    newlines = returns = 0
    last = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            newlines += chunk.count(b"\n")
            returns += chunk.count(b"\r")
            last = chunk[-1:]
    if returns not in (0, newlines):
        return None
    return newlines + (1 if last not in (b"", b"\n") else 0) - 1


def _checked(kind: str, v: str) -> tuple[str, str]:
    """SQL for one field of ``kind`` (``?`` = optional) given its trimmed text ``v``: (check, typed value)."""
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "id":
        check, typed = f"regexp_full_match({v}, '{_ID_RE}')", v
    elif kind == "text":
        check = f"regexp_full_match({v}, '{_TEXT_RE}') AND NOT regexp_matches({v}, '{_EDGE_SPACE_RE}')"
        if not optional:
            check += f" AND {v} <> ''"
        return check, f"nullif({v}, '')"
    elif kind == "date":
        typed = f"coalesce(try_strptime({v}, '%Y-%m-%d'), try_strptime({v}, '%m/%d/%Y'))::DATE"
        shapes = f"regexp_full_match({v}, '{_ISO_DATE.pattern}') OR regexp_full_match({v}, '{_US_DATE.pattern}')"
        check = f"({shapes}) AND coalesce({typed} >= DATE '0001-01-01', false)"
    elif kind == "amount":
        check, typed = f"regexp_full_match({v}, '{_AMOUNT_RE}')", f"TRY_CAST({v} AS DECIMAL(18,2))"
    elif kind == "units":
        check = f"{v} = '' OR (regexp_full_match({v}, '[0-9]{{1,5}}') AND TRY_CAST({v} AS INTEGER) >= 1)"
        return check, f"CASE WHEN {v} = '' THEN 1 ELSE TRY_CAST({v} AS INTEGER) END"
    elif kind == "priority":
        check = f"{v} = '' OR (regexp_full_match({v}, '[A-Za-z]+') AND lower({v}) IN {tuple(PRIORITIES)})"
        return check, f"coalesce(nullif(lower({v}), ''), 'primary')"
    else:  # pragma: no cover - the kinds above are all there are
        raise ValueError(kind)
    if optional:
        return f"({v} = '' OR ({check}))", f"CASE WHEN {v} = '' THEN NULL ELSE {typed} END"
    return check, typed


def _stage(con: Any, path: Path, table: str) -> int | None:
    """Read ``path`` with DuckDB into a temporary table of typed, format-checked values.

    Returns its row count, or None whenever the row-by-row reader must read it instead:
    a header or a file DuckDB does not read, a row count that is not one row per
    physical line (blank lines, quoted line breaks), or any value outside the shapes
    :func:`_checked` accepts (which the Python checks accept alike). Values are read as
    text and checked before any cast: DuckDB would round ``12.345`` into a DECIMAL(18,2).
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            first = fh.readline(MAX_FIELD * 20)
        header = next(csv.reader([first]), None)
        if not header or not first.endswith("\n"):
            return None
        names = check_header(path.name, header, TABLES[table], OPTIONAL_COLUMNS.get(table, set()))
    except (UnicodeDecodeError, OSError, csv.Error, FileFormatError):
        return None
    expected = _data_lines(path)
    if expected is None or expected < 1:
        return None
    columns = "{" + ", ".join(f"'c{n}': 'VARCHAR'" for n in range(len(names))) + "}"
    # each cell once as text and trimmed (t), and its length as read (n); the checks then use those
    cells = ", ".join(
        f"trim(coalesce(c{n}, '')) AS t{n}, length(coalesce(c{n}, '')) AS n{n}" for n in range(len(names))
    )
    where = {name: n for n, name in enumerate(names)}
    checks = [f"n{n} <= {MAX_FIELD}" for n in range(len(names))]
    typed = []
    for field, kind in _KINDS[table].items():
        check, value = _checked(kind, f"t{where[field]}" if field in where else "''")
        checks.append(f"({check})")
        typed.append(f"{value} AS {field}")
    select = f"""
        SELECT {", ".join(typed)}, {" AND ".join(checks)} AS plain
        FROM (SELECT {cells} FROM read_csv({_quote(str(path))}, header = true, auto_detect = false,
              columns = {columns}, delim = ',', quote = '"', escape = '"', strict_mode = true, null_padding = false))
    """
    stage = _stage_name(table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {select}")
        row = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE NOT coalesce(plain, false)) FROM {stage}"
        ).fetchone()
    except duckdb.Error:
        return None
    if not row or row[0] != expected or row[1]:
        return None
    return int(row[0])


def _records_sql(table: str) -> str:
    """The staged rows as the table's records, each with ``ok``: what the Python checks would accept.

    It runs inside the load's transaction after the tables before it are written, so a
    reference is checked against the ledger as this load leaves it.
    """
    stage = _stage_name(table)
    if table == "clients":
        return f"""SELECT client_id, first_name, last_name, date_of_birth,
                          coalesce(copay, 0.00)::DECIMAL(18,2) AS copay, true AS ok FROM {stage}"""
    if table == "client_insurance":
        return f"""
            SELECT s.client_id, s.payer_id, s.member_id, s.priority, s.copay,
                   c.client_id IS NOT NULL AND p.payer_id IS NOT NULL AS ok
            FROM {stage} s
            LEFT JOIN clients c ON c.client_id = s.client_id
            LEFT JOIN insurance_providers p ON p.payer_id = s.payer_id"""
    # invoices: the payer and dues as _invoice derives them; a client whose first policy is
    # ambiguous (two of one priority: Python's order decides) is left to the row-by-row path
    return f"""
        WITH pol AS (
            SELECT client_id, payer_id, copay,
                   CASE priority WHEN 'primary' THEN 0 WHEN 'secondary' THEN 1 ELSE 2 END AS rnk
            FROM client_insurance
        ), best AS (
            SELECT * FROM pol QUALIFY rnk = min(rnk) OVER (PARTITION BY client_id)
        ), dflt AS (
            SELECT client_id, any_value(payer_id) AS payer_id, any_value(copay) AS copay, count(*) > 1 AS ambiguous
            FROM best GROUP BY client_id
        ), j AS (
            SELECT s.invoice_id, s.client_id, s.service_date, s.service_code, s.units, s.fee,
                   s.client_amt_due AS client_given, s.ins_amt_due AS ins_given,
                   coalesce(s.claim_id, s.invoice_id) AS claim_id,
                   c.client_id IS NOT NULL AS client_known, c.copay AS client_copay,
                   s.payer_id IS NULL OR p.payer_id IS NOT NULL AS payer_known,
                   s.payer_id IS NULL AND coalesce(d.ambiguous, false) AS ambiguous,
                   CASE WHEN s.payer_id IS NULL THEN d.payer_id ELSE s.payer_id END AS payer_id,
                   CASE WHEN s.payer_id IS NULL THEN d.copay ELSE ci.copay END AS policy_copay
            FROM {stage} s
            LEFT JOIN clients c ON c.client_id = s.client_id
            LEFT JOIN dflt d ON d.client_id = s.client_id
            LEFT JOIN insurance_providers p ON p.payer_id = s.payer_id
            LEFT JOIN client_insurance ci ON ci.client_id = s.client_id AND ci.payer_id = s.payer_id
        ), dues AS (
            SELECT *,
                CASE WHEN client_given IS NULL AND ins_given IS NULL THEN
                        CASE WHEN payer_id IS NULL THEN fee ELSE least(coalesce(policy_copay, client_copay), fee) END
                     WHEN client_given IS NULL THEN fee - ins_given
                     ELSE client_given END AS client_due
            FROM j
        ), both_dues AS (
            SELECT *, CASE WHEN ins_given IS NULL THEN fee - client_due ELSE ins_given END AS ins_due FROM dues
        )
        SELECT invoice_id, client_id, service_date, service_code, units, fee, payer_id,
               client_due::DECIMAL(18,2) AS client_amt_due, ins_due::DECIMAL(18,2) AS ins_amt_due, claim_id,
               client_known AND payer_known AND NOT ambiguous AND client_due >= 0 AND ins_due >= 0
                 AND coalesce(client_given, 0) + coalesce(ins_given, 0) <= fee
                 AND NOT (ins_due > 0 AND payer_id IS NULL) AS ok
        FROM both_dues"""


def _write_staged(con: Any, table: str, say: Callable[[str], None]) -> tuple[int, int]:
    """Check the staged records as :func:`validate` would, insert the new ones; (added, unchanged).

    Raises :class:`_NotFast` (the transaction rolls back) on anything the Python checks
    would refuse: a bad reference or due, an id repeated with other content, a record
    already in the ledger with other content.
    """
    cols = ", ".join(TABLES[table])
    key = ", ".join(_KEY_COLUMNS[table])
    records = _records_name(table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {records} AS {_records_sql(table)}")
    bad, rows, keys = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT coalesce(ok, false)), count(*), count(DISTINCT ({key})) FROM {records}"
    ).fetchone()
    if bad:
        raise _NotFast
    source = records
    if rows != keys:  # a repeated id is harmless only when every repeat is the same record
        distinct = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM {records})").fetchone()[0]
        if distinct != keys:
            raise _NotFast
        source = f"(SELECT DISTINCT {cols} FROM {records})"
    same = " AND ".join(f"r.{c} IS NOT DISTINCT FROM t.{c}" for c in TABLES[table])
    present, differing = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT ({same})) FROM {source} r JOIN {table} t USING ({key})"
    ).fetchone()
    if differing:
        raise _NotFast
    added = keys - present
    if added:
        say(f"writing {table} ({added:,} rows)")
        on = " AND ".join(f"t.{c} = r.{c}" for c in _KEY_COLUMNS[table])
        new = "" if not present else f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})"
        # a client's rows side by side: min/max per row group then skip the rest of a 10M-invoice table
        order = " ORDER BY client_id" if table == "invoices" else ""
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {source} r{new}{order}")
    con.execute(f"DROP TABLE IF EXISTS {records}")
    return added, present


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
