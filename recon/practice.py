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

    ``skip`` names CSV files not to read (invoices.csv once DuckDB has staged it).
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

    A folder's ``invoices.csv`` (the big file: a million rows) is read, checked and
    written by DuckDB (:func:`_stage_invoices`); only when that finds anything amiss is
    the load done again row by row in Python, whose first refusal is the message.
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
    invoices_csv = _invoices_csv(source)
    if invoices_csv is not None:
        staged = _stage_invoices(con, invoices_csv, say)
        if staged is not None:
            try:
                return _load(recon, source, user_id, first, say, staged)
            except _NotFast:
                pass  # something in invoices.csv is amiss: the row-by-row path names it
            finally:
                con.execute(f"DROP TABLE IF EXISTS {_STAGE}")
    return _load(recon, source, user_id, first, say, None)


def _load(
    recon: Any, source: Path, user_id: str | None, first: bool, say: Callable[[str], None], staged: int | None
) -> LoadSummary:
    """Validate and write; with ``staged``, invoices.csv sits checked in :data:`_STAGE` and only the rest is read."""
    con = recon.con
    tables = read_source(source, skip=("invoices",) if staged is not None else ())
    rows_read = sum(len(rows) for rows in tables.values()) + (staged or 0)
    say(f"checking {rows_read:,} rows")
    existing: dict[str, dict[str, tuple[Any, ...]]] = {}
    for table, cols in TABLES.items():
        if table == "invoices":
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
            if table == "invoices" and staged is not None:
                added[table], unchanged[table] = _write_staged_invoices(con, say)
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


def _has_no_users(con: Any) -> bool:
    row = con.execute("SELECT count(*) FROM users").fetchone()
    return not row or row[0] == 0


def _is_empty(con: Any) -> bool:
    """No users and no practice data: the only state in which a load needs no admin."""
    counts = " + ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
    row = con.execute(f"SELECT {counts}").fetchone()
    return not row or row[0] == 0


def _insert_many(con: Any, sql: str, rows: list[tuple[Any, ...]], cols: tuple[str, ...], table: str) -> None:
    """Insert through Arrow for speed on large practices (executemany is row-at-a-time)."""
    if len(rows) < 200:
        con.executemany(sql, [list(r) for r in rows])
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


# ------------------------------------------------- invoices.csv through DuckDB
_STAGE = "_load_invoices"
_RECORDS = "_load_invoice_records"
_ID_RE = "[A-Za-z0-9][A-Za-z0-9._/-]{0,79}"
_AMOUNT_RE = r"[0-9]{1,16}(\.[0-9]{1,2})?"
_PLAIN_RE = "[ !#-~]*"  # printable ASCII but the quote: what both CSV readers read alike


class _NotFast(Exception):
    """invoices.csv holds something the SQL checks do not accept: load row by row to name it."""


def _invoices_csv(source: Path) -> Path | None:
    """The invoices.csv a load would read, if it reads one (a folder's, or the file itself)."""
    if source.is_dir():
        path = source / "invoices.csv"
        return path if path.is_file() else None
    if source.suffix.lower() == ".csv" and source.stem == "invoices" and source.is_file():
        return source
    return None


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
    lines = newlines + (1 if last not in (b"", b"\n") else 0)
    return lines - 1


def _stage_invoices(con: Any, path: Path, say: Callable[[str], None]) -> int | None:
    """Read invoices.csv with DuckDB into a temporary table of typed, format-checked values.

    Returns its row count, or None whenever the row-by-row reader must do it instead:
    a header or a file DuckDB does not read, a row count that is not one row per
    physical line (blank lines, quoted line breaks), or any value that is not plain
    (ASCII without quotes, within the shapes below). Values are read as text and
    checked before any cast: DuckDB would round ``12.345`` into a DECIMAL(18,2).
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
        header = next(csv.reader([first]), None)
        if not header or len(first) > MAX_FIELD * 10:
            return None
        names = check_header(path.name, header, TABLES["invoices"], OPTIONAL_COLUMNS["invoices"])
    except (UnicodeDecodeError, OSError, csv.Error, FileFormatError):
        return None
    expected = _data_lines(path)
    if expected is None or expected < 1:
        return None
    cols = {f"c{n}": "VARCHAR" for n in range(len(names))}
    raw = {name: f"coalesce(c{n}, '')" for n, name in enumerate(names) if name in TABLES["invoices"]}
    extra = [f"length(coalesce(c{n}, '')) <= {MAX_FIELD}" for n, name in enumerate(names) if name not in raw]

    def v(field: str) -> str:
        return f"trim({raw[field]})" if field in raw else "''"

    def full(field: str, pattern: str) -> str:
        return f"regexp_full_match({v(field)}, '{pattern}')"

    date_expr = (
        f"coalesce(try_strptime({v('service_date')}, '%Y-%m-%d'), try_strptime({v('service_date')}, '%m/%d/%Y'))::DATE"
    )
    checks = [f"regexp_full_match({r}, '{_PLAIN_RE}')" for r in raw.values()] + extra
    checks += [
        full("invoice_id", _ID_RE),
        full("client_id", _ID_RE),
        f"({v('payer_id')} = '' OR {full('payer_id', _ID_RE)})",
        f"({v('claim_id')} = '' OR {full('claim_id', _ID_RE)})",
        f"({full('service_date', _ISO_DATE.pattern)} OR {full('service_date', _US_DATE.pattern)})",
        f"coalesce({date_expr} >= DATE '0001-01-01', false)",
        f"{v('service_code')} <> '' AND length({v('service_code')}) <= {MAX_FIELD}",
        f"({v('units')} = '' OR ({full('units', '[0-9]{1,5}')} AND TRY_CAST({v('units')} AS INTEGER) >= 1))",
        full("fee", _AMOUNT_RE),
        f"({v('client_amt_due')} = '' OR {full('client_amt_due', _AMOUNT_RE)})",
        f"({v('ins_amt_due')} = '' OR {full('ins_amt_due', _AMOUNT_RE)})",
    ]

    def amount(field: str) -> str:
        return f"CASE WHEN {v(field)} = '' THEN NULL ELSE TRY_CAST({v(field)} AS DECIMAL(18,2)) END"

    def opt(field: str) -> str:
        return f"nullif({v(field)}, '')"

    select = f"""
        SELECT {v("invoice_id")} AS invoice_id, {v("client_id")} AS client_id, {date_expr} AS service_date,
               {v("service_code")} AS service_code,
               CASE WHEN {v("units")} = '' THEN 1 ELSE TRY_CAST({v("units")} AS INTEGER) END AS units,
               TRY_CAST({v("fee")} AS DECIMAL(18,2)) AS fee, {opt("payer_id")} AS payer_given,
               {amount("client_amt_due")} AS client_given, {amount("ins_amt_due")} AS ins_given,
               {opt("claim_id")} AS claim_given, {" AND ".join(checks)} AS plain
        FROM read_csv({_quote(str(path))}, header = true, auto_detect = false, columns = {_struct(cols)},
                      delim = ',', quote = '"', escape = '"', strict_mode = true, null_padding = false)
    """
    say(f"reading {path.name} ({expected:,} rows)")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS {select}")
        row = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE NOT coalesce(plain, false)) FROM {_STAGE}"
        ).fetchone()
    except duckdb.Error:
        con.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        return None
    if not row or row[0] != expected or row[1]:
        con.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        return None
    return int(row[0])


def _write_staged_invoices(con: Any, say: Callable[[str], None]) -> tuple[int, int]:
    """Derive each staged invoice's payer and dues as :func:`_invoice` does, check them, insert the new ones.

    Runs inside the load's transaction, after the other tables are written, so a
    reference is checked against the ledger as this load leaves it. Raises
    :class:`_NotFast` (the transaction rolls back) on anything :func:`_invoice` would refuse,
    and on a client whose first policy is ambiguous (two of the same priority).
    """
    cols = ", ".join(TABLES["invoices"])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_RECORDS} AS
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
            SELECT s.*, c.client_id IS NOT NULL AS client_known, c.copay AS client_copay,
                   s.payer_given IS NULL OR p.payer_id IS NOT NULL AS payer_known,
                   s.payer_given IS NULL AND coalesce(d.ambiguous, false) AS ambiguous,
                   CASE WHEN s.payer_given IS NULL THEN d.payer_id ELSE s.payer_given END AS payer_id,
                   CASE WHEN s.payer_given IS NULL THEN d.copay ELSE ci.copay END AS policy_copay
            FROM {_STAGE} s
            LEFT JOIN clients c ON c.client_id = s.client_id
            LEFT JOIN dflt d ON d.client_id = s.client_id
            LEFT JOIN insurance_providers p ON p.payer_id = s.payer_given
            LEFT JOIN client_insurance ci ON ci.client_id = s.client_id AND ci.payer_id = s.payer_given
        ), dues AS (
            SELECT *,
                CASE WHEN client_given IS NULL AND ins_given IS NULL THEN
                        CASE WHEN payer_id IS NULL THEN fee ELSE least(coalesce(policy_copay, client_copay), fee) END
                     WHEN client_given IS NULL THEN fee - ins_given
                     ELSE client_given END AS client_amt_due,
                CASE WHEN client_given IS NULL AND ins_given IS NULL THEN
                        fee - CASE WHEN payer_id IS NULL THEN fee
                                   ELSE least(coalesce(policy_copay, client_copay), fee) END
                     WHEN ins_given IS NULL THEN fee - client_given
                     ELSE ins_given END AS ins_amt_due
            FROM j
        )
        SELECT invoice_id, client_id, service_date, service_code, units, fee, payer_id,
               client_amt_due::DECIMAL(18,2) AS client_amt_due, ins_amt_due::DECIMAL(18,2) AS ins_amt_due,
               coalesce(claim_given, invoice_id) AS claim_id,
               client_known AND payer_known AND NOT ambiguous
                 AND client_amt_due >= 0 AND ins_amt_due >= 0
                 AND coalesce(client_given, 0) + coalesce(ins_given, 0) <= fee
                 AND NOT (ins_amt_due > 0 AND payer_id IS NULL) AS ok
        FROM dues
    """)
    bad, rows, ids = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT coalesce(ok, false)), count(*), count(DISTINCT invoice_id) FROM {_RECORDS}"
    ).fetchone()
    if bad:
        raise _NotFast
    source = _RECORDS
    if rows != ids:  # repeated ids: harmless only when every repeat is the same record
        distinct = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM {_RECORDS})").fetchone()[0]
        if distinct != ids:
            raise _NotFast
        source = f"(SELECT DISTINCT {cols} FROM {_RECORDS})"
    same = " AND ".join(f"r.{c} IS NOT DISTINCT FROM i.{c}" for c in TABLES["invoices"])
    present, differing = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT ({same})) FROM {source} r JOIN invoices i USING (invoice_id)"
    ).fetchone()
    if differing:
        raise _NotFast
    added = ids - present
    if added:
        say(f"writing invoices ({added:,} rows)")
        where = "" if not present else " WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = r.invoice_id)"
        con.execute(f"INSERT INTO invoices ({cols}) SELECT {cols} FROM {source} r{where}")
    con.execute(f"DROP TABLE IF EXISTS {_RECORDS}")
    return added, present


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _struct(cols: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_quote(k)}: {_quote(t)}" for k, t in cols.items()) + "}"
