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
(``trace_number`` and ``description`` may be empty or absent), or a BAI2 bank file,
recognised by its content (a ``01,`` file header), whatever its name. The BAI2 file
is read by :mod:`recon.remit.bai2` (control totals checked); a detail (16 record) is
a deposit only when its type code is one a practice receives insurance money by
(:data:`DEFAULT_DEPOSIT_CODES`, or ``RECON_DEPOSIT_TYPE_CODES``), in USD, in a group
that is not a test or a deletion. Everything else (sweeps, interest, loans, returns,
debits, totals, other currencies) is kept as *other bank activity*, which is listed
but never matched to a remittance. A deposit's date is its group's as-of date; its
trace is the ``TRN*1*<trace>`` in the detail text.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.csvfile import csv_rows
from recon.errors import FileFormatError, InputError, InvalidAmount
from recon.money import ZERO, fmt, from_cents, parse_amount
from recon.remit import bai2
from recon.store import db

COLUMNS = ("deposit_id", "deposit_date", "amount", "trace_number", "description")
REQUIRED = ("deposit_id", "deposit_date", "amount")
BAI2_SUFFIXES = (".bai", ".bai2")
DEFAULT_DEPOSIT_CODES = ("115", "142", "164", "165", "166", "169", "174", "175", "195", "301")
"""BAI2 detail credits a practice receives insurance money by: lockbox (115), ACH credits
(142, 164 CTX, 165, 166, 169), other and check deposits (174, 175, 301), incoming wires (195)."""
ACTIVITY_COLUMNS = (
    "activity_id", "as_of_date", "account", "type_code", "kind", "amount", "currency", "reason", "description",
)  # fmt: skip
"""What ``recon deposits --activity`` shows of the other bank activity, in this order."""
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
_NOT_ID = re.compile(r"[^A-Za-z0-9._/:#-]+")
_ZERO_DECIMAL = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "XAF", "XOF")
_THREE_DECIMAL = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")
_TRN = re.compile(r"TRN\*1\*([^*~\\\s]+)")
_TRN_COMPLETE = re.compile(r"TRN\*1\*([^*~\\\s]+)(?=[*~\\])")


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
class BankActivity:
    """A BAI2 detail that is not a deposit (a sweep, interest, a return, a debit...), and why.

    Kept so the bank file is accounted for to the cent, and listed apart: it is never
    matched to a remittance.
    """

    activity_id: str
    as_of_date: date
    account: str
    type_code: str
    kind: str
    amount: Decimal | None
    """In ``currency``; None when the currency has three decimals (the text says the amount)."""
    currency: str
    reason: str
    description: str | None
    file: str
    line: int | None

    def content(self) -> tuple[Any, ...]:
        return (self.as_of_date, self.account, self.type_code, self.amount, self.currency, self.description)

    def row(self) -> tuple[Any, ...]:
        return (self.activity_id, self.as_of_date, self.account, self.type_code, self.kind, self.amount,
                self.currency, self.reason, self.description)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BankFile:
    """A deposit file read and checked: its deposits and (BAI2) its other bank activity."""

    deposits: tuple[Deposit, ...]
    other: tuple[BankActivity, ...] = ()
    bai2: bool = False


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
    other: tuple[BankActivity, ...] = ()
    """The file's other bank activity (BAI2 details that are not deposits), never matched."""
    other_added: int = 0
    table: Any = None
    """The file's deposits as ``recon deposits`` lists them (:class:`recon.output.Rows`), taken in the load's
    transaction: a dry run shows what the file would add and match."""

    def __str__(self) -> str:
        verb = "Would load" if self.dry_run else "Loaded"
        counts = ", ".join(f"{self.status.get(s, 0)} {s}" for s in STATUSES)
        text = (
            f"{verb} deposits from {self.source}: {self.added} added, {self.unchanged} unchanged "
            f"({len(self.deposit_ids)} deposits, {fmt(self.total)}); {counts}"
        )
        if self.other:
            kinds: dict[str, int] = {}
            for a in self.other:
                kinds[a.kind] = kinds.get(a.kind, 0) + 1
            text += (
                f"; {len(self.other)} other bank activity kept apart, never matched ("
                + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                + "; recon deposits --activity)"
            )
        return text


# ------------------------------------------------------------------ reading
def read_deposits(path: str | Path, deposit_codes: Any = None) -> list[Deposit]:
    """Every deposit of a CSV or BAI2 file, checked; raises on the first bad row."""
    return list(read_bank_file(path, deposit_codes).deposits)


def read_bank_file(path: str | Path, deposit_codes: Any = None) -> BankFile:
    """A CSV deposit list or a BAI2 bank file (told apart by content), checked whole.

    ``deposit_codes``: the BAI2 type codes that are deposits (see :func:`deposit_type_codes`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        head = path.read_bytes()[:64].decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if bai2.looks_like_bai2(head) or bai2.looks_like_records(head):
        return _bai2_file(path, deposit_type_codes(deposit_codes))
    if path.suffix.lower() in BAI2_SUFFIXES:
        raise FileFormatError(path.name, 1, None, "not a BAI2 file: it does not start with a 01 file header")
    return BankFile(tuple(_dedupe(_csv_deposits(path))))


def deposit_type_codes(codes: Any = None) -> frozenset[str]:
    """The BAI2 type codes that are deposits: ``codes``, else ``RECON_DEPOSIT_TYPE_CODES``, else the default.

    Each must be a detail credit (100-399 or a bank's own 930-959, not a total), so a
    sweep total or a debit can never be configured in as a deposit.
    """
    source = "deposit type codes"
    if codes is None:
        env = os.environ.get("RECON_DEPOSIT_TYPE_CODES", "").strip()
        codes, source = (env, "RECON_DEPOSIT_TYPE_CODES") if env else (DEFAULT_DEPOSIT_CODES, source)
    if isinstance(codes, str):
        codes = codes.replace(";", ",").replace(" ", ",").split(",")
    out = set()
    for raw in codes:
        code = str(raw).strip()
        if not code:
            continue
        if not (len(code) == 3 and code.isdigit()):
            raise InputError(f"{source}: {code!r} is not a BAI2 type code; expected three digits such as 165")
        if bai2.kind(code) != "credit":
            raise InputError(f"{source}: {code} is a {bai2.kind(code)} code ({bai2.name(code)}), not a credit")
        if code in bai2.SUMMARY_CREDIT_CODES:
            raise InputError(f"{source}: {code} is a total ({bai2.name(code)}), not one credit; give detail codes")
        out.add(code)
    if not out:
        raise InputError(f"{source}: no type codes given; expected codes such as 165,166,169")
    return frozenset(out)


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


def _bai2_file(path: Path, codes: frozenset[str]) -> BankFile:
    """Deposits and other activity of a BAI2 file; every detail is kept, none merged."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # BAI2 is ASCII; a bank's free text may be Latin-1
    if "\x00" in text:
        raise FileFormatError(path.name, None, "BAI2", "contains NUL characters; expected a text file")
    parsed = bai2.parse(text, path.name)
    deposits: list[tuple[str, tuple[Any, ...], Any]] = []
    other: list[tuple[str, tuple[Any, ...], Any]] = []
    for d in parsed.details:
        reason = _not_a_deposit(d, codes)
        if reason is None:
            base = f"{_id_part(d.account)}-{d.as_of:%Y%m%d}-" + (
                _id_part(d.bank_reference) if d.bank_reference else f"{d.type_code}-{fmt(from_cents(d.amount))}"
            )
            deposits.append((base, _key(d), d))
        else:
            base = f"{_id_part(d.account)}-{d.as_of:%Y%m%d}-{d.type_code}-{d.amount}"
            if d.bank_reference:
                base += f"-{_id_part(d.bank_reference)}"
            other.append((base, _key(d), (d, reason)))
    return BankFile(
        tuple(_bai2_deposit(path.name, i, d) for i, d in _unique_ids(deposits)),
        tuple(_activity(path.name, i, d, reason) for i, (d, reason) in _unique_ids(other)),
        bai2=True,
    )


def _not_a_deposit(d: bai2.Detail, codes: frozenset[str]) -> str | None:
    """Why a detail is not a deposit (None: it is one)."""
    if d.group_status in ("2", "4"):
        return f"in a group marked {bai2.GROUP_STATUS[d.group_status]!r}: not money received"
    if d.type_code not in codes:
        kind = bai2.kind(d.type_code)
        if kind == "credit" and d.type_code in bai2.SUMMARY_CREDIT_CODES:
            return f"{d.type_code} is a total (summary code), not one credit"
        if kind == "credit":
            return f"credit type {d.type_code} is not a deposit type (RECON_DEPOSIT_TYPE_CODES)"
        return f"a {kind} entry, not a deposit"
    if d.currency != "USD":
        return f"in {d.currency}: recon matches deposits in USD only"
    if d.amount <= 0:
        return "no amount"
    return None


def _key(d: bai2.Detail) -> tuple[Any, ...]:
    return (d.as_of, d.type_code, d.amount, d.currency, d.bank_reference, d.customer_reference, d.text)


def _unique_ids(items: list[tuple[str, tuple[Any, ...], Any]]) -> Iterator[tuple[str, Any]]:
    """Ids unique in the file and stable when it is loaded again, in any order.

    Details with the same base id but other content get a short digest of their
    content; details identical in every field are still separate entries (two equal
    credits are two deposits) and are numbered ``-2``, ``-3``... in file order.
    """
    by_base: dict[str, set[tuple[Any, ...]]] = {}
    for base, key, _ in items:
        by_base.setdefault(base, set()).add(key)
    seen: dict[str, int] = {}
    for base, key, value in items:
        ident = base
        if len(by_base[base]) > 1:
            ident += "-" + hashlib.sha256(repr(key).encode()).hexdigest()[:6]
        seen[ident] = seen.get(ident, 0) + 1
        if seen[ident] > 1:
            ident += f"-{seen[ident]}"
        yield ident, value


def _id_part(text: str) -> str:
    """Text usable in a deposit id: runs of other characters (a space...) become ``_``."""
    return _NOT_ID.sub("_", text.strip()).strip("_.:/#-") or "account"


def _bai2_deposit(file: str, deposit_id: str, d: bai2.Detail) -> Deposit:
    if not _ID.match(deposit_id):  # pragma: no cover - _id_part keeps ids valid
        raise FileFormatError(file, d.line, "deposit_id", f"{deposit_id!r} could not be made a valid id")
    trace = _bai2_trace(d)
    if trace is not None and len(trace) > 50:
        problem = f"{trace[:60]!r} is not valid; expected the payer's TRN02 (at most 50 characters)"
        raise FileFormatError(file, d.line, "trace_number", problem)
    return Deposit(deposit_id, d.as_of, from_cents(d.amount), trace, _describe_detail(d), file, d.line)


def _activity(file: str, activity_id: str, d: bai2.Detail, reason: str) -> BankActivity:
    amount: Decimal | None
    if d.currency in _THREE_DECIMAL:
        amount = None
    elif d.currency in _ZERO_DECIMAL:
        amount = Decimal(d.amount).quantize(Decimal("0.01"))
    else:
        amount = from_cents(d.amount)
    description = _describe_detail(d)
    if amount is None:
        description = f"{d.currency} {Decimal(d.amount).scaleb(-3)}; {description}"
    return BankActivity(activity_id, d.as_of, d.account, d.type_code, bai2.kind(d.type_code), amount, d.currency,
                        reason, description, file, d.line)  # fmt: skip


def _describe_detail(d: bai2.Detail) -> str:
    parts = [f"{d.type_code} {bai2.name(d.type_code)}"]
    if d.bank_reference:
        parts.append(f"bank ref {d.bank_reference}")
    if d.customer_reference:
        parts.append(f"customer ref {d.customer_reference}")
    if d.text:
        parts.append(d.text)
    return "; ".join(parts)


def _bai2_trace(d: bai2.Detail) -> str | None:
    """The TRN02 in the detail's text (or customer reference).

    A trace whose TRN segment is complete (``*`` or ``\\`` after it) only when the text's
    lines are joined with nothing between them was wrapped at a ``/``-ended record: it
    is read whole from that join, never cut at the line end.
    """
    for source in (d.text, d.text_run_on):
        found = _TRN_COMPLETE.search(source or "")
        if found:
            return found.group(1)
    for source in (d.text, d.customer_reference):
        found = _TRN.search(source or "")
        if found:
            return found.group(1)
    return None


# ------------------------------------------------------------------ loading
def load_deposits(
    recon: Any, path: str | Path, user_id: str, *, dry_run: bool = False, deposit_codes: Any = None
) -> DepositLoad:
    """Load a bank deposit file in one transaction and report where its deposits stand.

    Needs the Billing permission (deposits decide what counts as received money).
    ``dry_run`` writes inside a transaction that is rolled back, so the preview shows
    exactly the matches a real load would make, and nothing is kept. A BAI2 file's
    other bank activity is kept in ``other_bank_activity``, apart from the deposits.
    """
    from recon.rules.permissions import require_billing
    from recon.services import now

    path = Path(path)
    user = recon.user(user_id)
    if not dry_run:
        require_billing(user, "load bank deposits")
    bank = read_bank_file(path, deposit_codes)
    deposits = list(bank.deposits)
    new = _new_only(
        deposits, _existing(recon, "deposits", "deposit_id", [d.deposit_id for d in deposits]), "deposit_id",
        "deposit", lambda d: d.deposit_id,
    )  # fmt: skip
    other = list(bank.other)
    new_other = _new_only(
        other, _existing(recon, "other_bank_activity", "activity_id", [a.activity_id for a in other]), "activity_id",
        "bank activity entry", lambda a: a.activity_id,
    )  # fmt: skip
    ids = tuple(d.deposit_id for d in deposits)
    total = sum((d.amount for d in deposits), ZERO)
    stamp = now()
    con = recon.con
    db.begin(con)
    try:
        if new:
            _insert(recon, new, path.name, user.user_id, stamp)
        if new_other:
            _insert_other(recon, new_other, path.name, user.user_id, stamp)
        if new or new_other:
            recon.audit(
                user.user_id, "load_deposits", "deposit_file", path.name,
                {"added": len(new), "unchanged": len(deposits) - len(new), "total": fmt(total),
                 "deposit_ids": [d.deposit_id for d in new][:1000], "other_bank_activity_added": len(new_other)},
            )  # fmt: skip
        status = _status_counts(recon, ids)
        matches = _matches(recon, ids)
        table = recon.rows(deposits_sql(_IDS_WHERE), [chr(31).join(ids)])
    except BaseException:
        db.rollback(con)
        raise
    if dry_run:
        db.rollback(con)
    else:
        from recon.errors import LedgerError

        try:
            db.commit(con)
        except Exception as exc:
            db.rollback(con)
            raise LedgerError(f"The deposits could not be saved: {str(exc).splitlines()[0]}") from exc
    return DepositLoad(
        str(path), len(new), len(deposits) - len(new), ids, status, total, dry_run, matches,
        tuple(other), len(new_other), table,
    )  # fmt: skip


_IDS_WHERE = "deposit_id IN (SELECT unnest(string_split(?, chr(31))))"


def _new_only(items: list[Any], existing: dict[str, tuple[Any, ...]], field: str, what: str,
              ident: Callable[[Any], str]) -> list[Any]:  # fmt: skip
    """The items not yet in the ledger; one already there with other content is refused."""
    new = []
    for item in items:
        old = existing.get(ident(item))
        if old is None:
            new.append(item)
        elif old != item.content():
            where = f"{item.file}:{item.line}: " if item.line is not None else f"{item.file}: "
            raise InputError(
                f"{where}{field}: {ident(item)!r} is already in the ledger with different content "
                f"({_describe(old) if what == 'deposit' else ', '.join(map(str, old))}); "
                f"recon never overwrites a loaded {what}"
            )
    return new


def _existing(recon: Any, table: str, key: str, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    if not ids:
        return {}
    columns = (
        "deposit_date, amount, trace_number, description"
        if table == "deposits"
        else "as_of_date, account, type_code, amount, currency, description"
    )
    rows = recon.execute(
        f"SELECT {key}, {columns} FROM {table} WHERE {key} IN (SELECT unnest(string_split(?, chr(31))))",
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


def _insert_other(recon: Any, items: list[BankActivity], source: str, user_id: str, stamp: Any) -> None:
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        recon.execute(
            "INSERT INTO other_bank_activity (activity_id, as_of_date, account, type_code, kind, amount, currency, "
            "reason, description, source_file, user_id, loaded_at) VALUES "
            + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk),
            [v for a in chunk for v in (*a.row(), source, user_id, stamp)],
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
    """``recon deposits``: list deposits and their matches; ``--load FILE`` loads a bank file first.

    With ``--dry-run`` the list is the file's own deposits as they would load and match
    (the ledger is left as it was); ``--activity`` lists other bank activity instead.
    """
    from recon.output import Rows, render
    from recon.services import Recon

    codes = getattr(args, "deposit_codes", None)
    activity = getattr(args, "activity", False)
    if getattr(args, "match", None) or getattr(args, "unmatch", None) or getattr(args, "to", None):
        return _cmd_match(args)
    if getattr(args, "confirm", None) is not None or getattr(args, "reason", None) is not None:
        raise InputError("deposits: --confirm goes with --match, --reason with --unmatch")
    if args.dry_run and not args.load:
        raise InputError("deposits --dry-run: give --load FILE (the file to preview)")
    with Recon.open(args.db) as recon:
        summary = None
        if args.load:
            if not args.user:
                raise InputError("deposits --load: give --user (who loads, for the audit log; needs Billing)")
            summary = load_deposits(recon, args.load, args.user, dry_run=args.dry_run, deposit_codes=codes)
            print(summary, file=sys.stderr)
        if activity and summary is not None and args.dry_run:
            rows = [a.row() for a in summary.other]
            table = Rows(list(ACTIVITY_COLUMNS), rows, [c == "amount" for c in ACTIVITY_COLUMNS])
        elif activity:
            table = recon.rows(
                f"SELECT {', '.join(ACTIVITY_COLUMNS)} FROM other_bank_activity ORDER BY as_of_date DESC, activity_id"
            )
        elif summary is not None and args.dry_run:
            table = summary.table
            if args.status:
                at = table.names.index("status")
                table = Rows(table.names, [r for r in table.rows if r[at] == args.status], table.decimal)
        else:
            where, params = "TRUE", []
            if args.status:
                where, params = "status = ?", [args.status]
            table = recon.rows(deposits_sql(where), params)
    sys.stdout.write(render(table, args.format))
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    """``--match DEPOSIT --to REMITTANCE... [--confirm REASON]`` or ``--unmatch DEPOSIT --reason TEXT``."""
    from recon.remit.deposit_match import match_deposit, unmatch_deposit
    from recon.services import Recon

    if args.match and args.unmatch:
        raise InputError("deposits: give --match or --unmatch, not both")
    if not args.match and not args.unmatch:
        raise InputError("deposits --to: goes with --match DEPOSIT_ID (the deposit the remittances were paid in)")
    if args.load or args.dry_run or args.activity or args.status:
        raise InputError("deposits --match/--unmatch: not with --load, --dry-run, --activity or --status")
    if not args.user:
        raise InputError("deposits --match/--unmatch: give --user (who matches, for the audit log; needs Billing)")
    if args.match:
        if not args.to:
            raise InputError("deposits --match: give --to REMITTANCE_ID (once per remittance the deposit paid)")
        if args.reason is not None:
            raise InputError("deposits --match: the reason for a mismatch is given with --confirm REASON")
        with Recon.open(args.db) as recon:
            done = match_deposit(recon, args.match, args.to, args.user, confirm=args.confirm)
    else:
        if args.to or args.confirm is not None:
            raise InputError("deposits --unmatch: takes --reason TEXT, not --to or --confirm")
        if not (args.reason or "").strip():
            raise InputError("deposits --unmatch: give --reason TEXT (why the match is undone; it is kept)")
        with Recon.open(args.db) as recon:
            done = unmatch_deposit(recon, args.unmatch, args.user, args.reason)
    print(done)
    return 0


def register_deposits(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``recon deposits`` to the CLI's subparsers; returns the command table entry.

    Kept here (not in the posting CLI) so the bank side can be used on its own; the
    remittance CLI's ``register`` calls this.
    """
    from recon.output import FORMATS

    p = sub.add_parser(
        "deposits", help="bank deposits and the remittance each matched; --load a bank file; --match/--unmatch by hand"
    )
    p.add_argument("--db", help="ledger file (default: $RECON_DB or data/recon.duckdb)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--load", type=Path, metavar="FILE", help="load a deposit CSV or a BAI2 bank file first")
    p.add_argument("--user", help="who loads or matches (needs Billing); with --load, --match, --unmatch")
    p.add_argument(
        "--dry-run", action="store_true", help="with --load: list the file's deposits and matches, keep nothing"
    )
    p.add_argument("--status", choices=STATUSES, help="only deposits with this status")
    p.add_argument(
        "--activity",
        action="store_true",
        help="list other bank activity (BAI2 details that are not deposits) instead of deposits",
    )
    p.add_argument("--deposit-codes", metavar="CODES",
                   help="BAI2 type codes that are deposits, e.g. 165,166,169,195 (default: $RECON_DEPOSIT_TYPE_CODES "
                        f"or {','.join(DEFAULT_DEPOSIT_CODES)})")  # fmt: skip
    p.add_argument("--match", metavar="DEPOSIT_ID", help="match this deposit by hand to the remittance(s) of --to")
    p.add_argument(
        "--to",
        action="append",
        metavar="REMITTANCE_ID",
        help="with --match: a remittance the deposit paid (repeat for several that make its amount)",
    )
    p.add_argument(
        "--confirm",
        metavar="REASON",
        help="with --match: match even though amounts differ or one side is already matched, because…",
    )
    p.add_argument("--unmatch", metavar="DEPOSIT_ID", help="undo the match by hand of this deposit (with --reason)")
    p.add_argument("--reason", metavar="TEXT", help="with --unmatch: why the match is undone (kept in the audit)")
    return {"deposits": cmd_deposits}
