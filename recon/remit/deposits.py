"""Bank deposits: load the bank's list and see which remittance each deposit paid.

Why deposits are loaded, not matched, here: the match lives in SQL views
(``recon/store/15_deposits.sql``) over every deposit and every posted remittance,
so a deposit loaded before its 835 matches the moment the 835 posts, and a
re-posted or later file can never leave a stale match behind.

A load follows the practice loader's rules: every row is checked first, any bad
row fails the whole file with ``file:line: field: what was expected`` and nothing
of it is kept; loading the same file again changes nothing; a deposit id already
in the ledger with other content is refused, never overwritten.

Input: CSV ``deposit_id,deposit_date,amount,trace_number,description``
(``trace_number`` and ``description`` may be empty or absent), or a BAI2 file
(``.bai``/``.bai2``) read with the ``bai2`` package: each credit detail (16 record)
is a deposit, its trace taken from a ``TRN*1*<trace>*...`` in the detail text.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.csvfile import csv_rows
from recon.errors import FileFormatError, InputError, InvalidAmount
from recon.money import ZERO, fmt, parse_amount

COLUMNS = ("deposit_id", "deposit_date", "amount", "trace_number", "description")
REQUIRED = ("deposit_id", "deposit_date", "amount")
BAI2_SUFFIXES = (".bai", ".bai2")
STATUSES = ("matched", "amount_mismatch", "unmatched")
DEPOSIT_COLUMNS = (
    "deposit_id", "deposit_date", "amount", "trace_number", "status", "matched_by", "remittance_id",
    "payer_id", "paid_on", "remittance_amount", "difference", "reason", "description",
)  # fmt: skip
"""What ``recon deposits`` and the widget show, in this order."""
MATCH_COLUMNS = (
    "deposit_id",
    "deposit_date",
    "amount",
    "trace_number",
    "status",
    "remittance_id",
    "difference",
    "reason",
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:#-]*$")
_TRN = re.compile(r"TRN\*1\*([^*~\\\s]+)")


@dataclass(frozen=True, slots=True)
class Deposit:
    """One bank deposit as read from the file, with where it came from (for messages)."""

    deposit_id: str
    deposit_date: date
    amount: Decimal
    trace_number: str | None
    description: str | None
    file: str
    line: int | None

    def content(self) -> tuple[Any, ...]:
        """What must be equal for a re-load of the same id to be 'the same deposit'."""
        return (self.deposit_date, self.amount, self.trace_number, self.description)


@dataclass(frozen=True, slots=True)
class DepositLoad:
    """What a load did, and where the file's deposits stand now."""

    source: str
    added: int
    unchanged: int
    deposit_ids: tuple[str, ...]
    status: dict[str, int] = field(default_factory=dict)
    total: Decimal = ZERO
    dry_run: bool = False
    matches: tuple[tuple[Any, ...], ...] = ()
    """The file's deposits as matched at load time, columns :data:`MATCH_COLUMNS` (for previews)."""

    def __str__(self) -> str:
        verb = "Would load" if self.dry_run else "Loaded"
        counts = ", ".join(f"{self.status.get(s, 0)} {s}" for s in STATUSES)
        return (
            f"{verb} deposits from {self.source}: {self.added} added, {self.unchanged} unchanged "
            f"({len(self.deposit_ids)} deposits, {fmt(self.total)}); {counts}"
        )


# ------------------------------------------------------------------ reading
def read_deposits(path: str | Path) -> list[Deposit]:
    """Every deposit of a CSV or BAI2 file, checked; raises on the first bad row."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    bai2 = path.suffix.lower() in BAI2_SUFFIXES
    return _dedupe(_bai2_deposits(path) if bai2 else _csv_deposits(path))


def _csv_deposits(path: Path) -> list[Deposit]:
    out = [_deposit(path.name, line, cells) for line, cells in csv_rows(path, COLUMNS, set(COLUMNS) - set(REQUIRED))]
    if not out:
        raise FileFormatError(path.name, None, None, "no deposits in the file (only a header)")
    return out


def _deposit(file: str, line: int | None, cells: dict[str, str]) -> Deposit:
    def err(name: str, problem: str) -> FileFormatError:
        return FileFormatError(file, line, name, problem)

    deposit_id = cells.get("deposit_id", "")
    if not deposit_id:
        raise err("deposit_id", "required; expected the bank's id of the deposit")
    if not _ID.match(deposit_id):
        raise err("deposit_id", f"{deposit_id!r} is not a valid id (letters, digits, . _ / : # -)")
    when_text = cells.get("deposit_date", "")
    if not when_text:
        raise err("deposit_date", "required; expected a date YYYY-MM-DD")
    from recon.practice import parse_date

    try:
        when = parse_date(when_text)
    except ValueError:
        raise err("deposit_date", f"{when_text!r} is not a date; expected YYYY-MM-DD") from None
    amount_text = cells.get("amount", "")
    if not amount_text:
        raise err("amount", "required; expected an amount such as 1234.50")
    try:
        amount = parse_amount(amount_text, "amount")
    except InvalidAmount as exc:
        raise err("amount", f"{amount_text!r} is not valid; expected {exc.expected}") from None
    if amount <= ZERO:
        raise err("amount", f"{amount_text!r} is not a deposit; expected an amount above 0.00")
    trace = normalise_trace(cells.get("trace_number", ""))
    if trace is not None and ("\x00" in trace or len(trace) > 50):
        raise err("trace_number", f"{trace[:60]!r} is not valid; expected the payer's TRN02 (at most 50 characters)")
    description = cells.get("description", "") or None
    if description is not None and "\x00" in description:
        raise err("description", "contains a NUL character; expected text")
    return Deposit(deposit_id, when, amount, trace, description, file, line)


def normalise_trace(text: str | None) -> str | None:
    """The TRN02 in ``text``: banks give the bare trace or the whole CCD+ addenda ``TRN*1*trace*1EIN\\``."""
    if text is None:
        return None
    text = text.strip()
    found = _TRN.search(text)
    if found:
        return found.group(1)
    return text or None


def _dedupe(deposits: list[Deposit]) -> list[Deposit]:
    """The same deposit twice in a file is one deposit; the same id with other content is an error."""
    seen: dict[str, Deposit] = {}
    for dep in deposits:
        first = seen.get(dep.deposit_id)
        if first is None:
            seen[dep.deposit_id] = dep
        elif first.content() != dep.content():
            where = f"line {first.line}" if first.line is not None else "an earlier record"
            raise FileFormatError(
                dep.file, dep.line, "deposit_id", f"duplicate id {dep.deposit_id!r} with different content than {where}"
            )
    return list(seen.values())


def _bai2_deposits(path: Path) -> list[Deposit]:
    """Credits of a BAI2 file via the maintained ``bai2`` package (MIT, maintained by the UK Ministry of Justice).

    The package checks record counts and control totals; its error is reported as
    ``file: BAI2: ...``. Amounts arrive as integer cents (BAI2 has no decimal point),
    so they become Decimals exactly. A detail without a bank reference gets an id
    from account, date and position, stable for the same file.
    """
    try:
        from bai2 import bai2 as bai2_parser
        from bai2.constants import TypeCodeTransaction
    except ImportError as exc:  # pragma: no cover - a dependency
        raise InputError(f"{path.name}: reading BAI2 needs the bai2 package (pip install bai2)") from exc
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path.name, None, None, "not a BAI2 text file") from exc
    try:
        parsed = bai2_parser.parse_from_string(text, check_integrity=True)
    except Exception as exc:  # the package raises its own exception types and plain ValueErrors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FileFormatError(path.name, None, "BAI2", f"not a valid BAI2 file: {first}") from None
    out: list[Deposit] = []
    for group in parsed.children:
        as_of = group.header.as_of_date
        for account in group.children:
            number = account.header.customer_account_number or "account"
            for n, detail in enumerate(account.children, start=1):
                type_code = detail.type_code
                if type_code is None or type_code.transaction is not TypeCodeTransaction.credit:
                    continue
                ref = (detail.bank_reference or "").strip() or (detail.customer_reference or "").strip()
                deposit_id = ref or f"{number}-{as_of:%Y%m%d}-{n}"
                cents = int(detail.amount or 0)
                cells = {
                    "deposit_id": deposit_id,
                    "deposit_date": as_of.isoformat() if as_of else "",
                    "amount": fmt(Decimal(cents) / 100),
                    "trace_number": _bai2_trace(detail),
                    "description": " ".join(x for x in (type_code.description, (detail.text or "").strip()) if x),
                }
                out.append(_deposit(path.name, None, cells))
    if not out:
        raise FileFormatError(path.name, None, "BAI2", "no credit details (16 records) in the file")
    return out


def _bai2_trace(detail: Any) -> str:
    for source in (detail.text, detail.customer_reference):
        found = _TRN.search(source or "")
        if found:
            return found.group(1)
    return ""


# ------------------------------------------------------------------ loading
def load_deposits(recon: Any, path: str | Path, user_id: str, *, dry_run: bool = False) -> DepositLoad:
    """Load a bank deposit file in one transaction and report where its deposits stand.

    Needs the Billing permission (deposits decide what counts as received money).
    ``dry_run`` writes inside a transaction that is rolled back, so the preview shows
    exactly the matches a real load would make, and nothing is kept.
    """
    from recon.rules.permissions import require_billing
    from recon.services import now

    path = Path(path)
    user = recon.user(user_id)
    if not dry_run:
        require_billing(user, "load bank deposits")
    deposits = read_deposits(path)
    existing = _existing(recon, [d.deposit_id for d in deposits])
    new: list[Deposit] = []
    for dep in deposits:
        old = existing.get(dep.deposit_id)
        if old is None:
            new.append(dep)
        elif old != dep.content():
            where = f"{dep.file}:{dep.line}: " if dep.line is not None else f"{dep.file}: "
            raise InputError(
                f"{where}deposit_id: {dep.deposit_id!r} is already in the ledger with different content "
                f"({_describe(old)}); recon never overwrites a loaded deposit"
            )
    ids = tuple(d.deposit_id for d in deposits)
    total = sum((d.amount for d in deposits), ZERO)
    stamp = now()
    con = recon.con
    con.execute("BEGIN TRANSACTION")
    try:
        if new:
            _insert(recon, new, path.name, user.user_id, stamp)
            recon.audit(
                user.user_id, "load_deposits", "deposit_file", path.name,
                {"added": len(new), "unchanged": len(deposits) - len(new), "total": fmt(total),
                 "deposit_ids": [d.deposit_id for d in new][:1000]},
            )  # fmt: skip
        status = _status_counts(recon, ids)
        matches = _matches(recon, ids)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if dry_run:
        con.execute("ROLLBACK")
    else:
        from recon.errors import LedgerError

        try:
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise LedgerError(f"The deposits could not be saved: {str(exc).splitlines()[0]}") from exc
    return DepositLoad(str(path), len(new), len(deposits) - len(new), ids, status, total, dry_run, matches)


def _existing(recon: Any, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    if not ids:
        return {}
    rows = recon.execute(
        "SELECT deposit_id, deposit_date, amount, trace_number, description FROM deposits "
        "WHERE deposit_id IN (SELECT unnest(string_split(?, chr(31))))",
        [chr(31).join(ids)],
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def _describe(content: tuple[Any, ...]) -> str:
    when, amount, trace, _description = content
    return f"{when}, {fmt(amount)}, trace {trace or 'none'}"


def _insert(recon: Any, deposits: list[Deposit], source: str, user_id: str, stamp: Any) -> None:
    """Insert in chunks of literal rows (bound by ``Recon.execute``; no pandas import)."""
    for start in range(0, len(deposits), 500):
        chunk = deposits[start : start + 500]
        recon.execute(
            "INSERT INTO deposits (deposit_id, deposit_date, amount, trace_number, description, source_file, "
            "user_id, loaded_at) VALUES " + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk),
            [
                v
                for d in chunk
                for v in (d.deposit_id, d.deposit_date, d.amount, d.trace_number, d.description, source, user_id, stamp)
            ],
        )


def _status_counts(recon: Any, ids: tuple[str, ...]) -> dict[str, int]:
    if not ids:
        return {}
    rows = recon.execute(
        "SELECT status, count(*) FROM deposit_reconciliation "
        "WHERE deposit_id IN (SELECT unnest(string_split(?, chr(31)))) GROUP BY status",
        [chr(31).join(ids)],
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def _matches(recon: Any, ids: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
    rows = recon.execute(
        f"SELECT {', '.join(MATCH_COLUMNS)} FROM deposit_reconciliation "
        "WHERE deposit_id IN (SELECT unnest(string_split(?, chr(31)))) ORDER BY deposit_date, deposit_id",
        [chr(31).join(ids)],
    ).fetchall()
    return tuple(tuple(r) for r in rows)


# ------------------------------------------------------------------ queries
def deposits_sql(where: str = "TRUE") -> str:
    """Deposits with their reconciliation, newest first (``where`` over the view's columns)."""
    return (
        f"SELECT {', '.join(DEPOSIT_COLUMNS)} FROM deposit_reconciliation WHERE {where} "
        "ORDER BY deposit_date DESC, deposit_id"
    )


def deposit_reconciliation(recon: Any, status: str | None = None) -> Any:
    """Every deposit and the remittance it matched (exact DataFrame)."""
    if status is None:
        return recon.frame(deposits_sql())
    if status not in STATUSES:
        raise InputError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    return recon.frame(deposits_sql("status = ?"), [status])


def remittance_reconciliation(recon: Any) -> Any:
    """Every remittance and whether its money reached the bank (exact DataFrame)."""
    return recon.frame("SELECT * FROM remittance_reconciliation ORDER BY paid_on, remittance_id")


def deposit_exceptions(recon: Any) -> Any:
    """Unmatched deposits and amount mismatches, in the worklist's shape (exact DataFrame)."""
    return recon.frame("SELECT * FROM deposit_exceptions ORDER BY kind, deposit_id")


# ---------------------------------------------------------------------- CLI
def cmd_deposits(args: argparse.Namespace) -> int:
    """``recon deposits``: list deposits and their matches; ``--load FILE`` loads a bank file first."""
    from recon.output import render
    from recon.services import Recon

    with Recon.open(args.db) as recon:
        if args.load:
            if not args.user:
                raise InputError("deposits --load: give --user (who loads, for the audit log; needs Billing)")
            summary = load_deposits(recon, args.load, args.user, dry_run=args.dry_run)
            print(summary, file=sys.stderr)
        where, params = "TRUE", []
        if args.status:
            where, params = "status = ?", [args.status]
        table = recon.rows(deposits_sql(where), params)
    sys.stdout.write(render(table, args.format))
    return 0


def register_deposits(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``recon deposits`` to the CLI's subparsers; returns the command table entry.

    Kept here (not in the posting CLI) so the bank side can be used on its own; the
    remittance CLI's ``register`` calls this.
    """
    from recon.output import FORMATS

    p = sub.add_parser("deposits", help="bank deposits and the remittance each matched; --load a bank file")
    p.add_argument("--db", help="ledger file (default: $RECON_DB or data/recon.duckdb)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--load", type=Path, metavar="FILE", help="load a deposit CSV (or .bai/.bai2) first")
    p.add_argument("--user", help="who loads (needs Billing); with --load")
    p.add_argument("--dry-run", action="store_true", help="with --load: show the matches, keep nothing")
    p.add_argument("--status", choices=STATUSES, help="only deposits with this status")
    return {"deposits": cmd_deposits}
