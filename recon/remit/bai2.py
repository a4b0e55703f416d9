"""A small reader of BAI2 bank files (Cash Management Balance Reporting, version 2).

Why our own: the bank file is where deposits come from, so reading it exactly is
the core of reconciliation. The maintained ``bai2`` package could not read the
specification's own example (it glues ``190/`` and a continued ``88,500000`` into
one type code) and joins a wrapped 16 text with a space, which cuts a trace number
in two. This reader follows the specification instead:

* Records: ``01`` file header, ``02`` group header, ``03`` account, ``16`` detail,
  ``88`` continuation, ``49``/``98``/``99`` account, group and file trailers.
  Fields are split by ``,``; ``/`` ends a record (a 16 record's text runs to the
  end of the physical record and may itself hold ``/``). Several records may
  share one physical line.
* An ``88`` continues the record before it. When that record ended with ``/`` its
  last field was complete and the 88 starts the next field (``190/`` + ``88,500000``
  is type code 190, amount 500000). When it did not (a 16 text running on), the 88
  carries on the same text with nothing inserted, so a wrapped trace is read whole.
* Funds type decides how many fields follow an amount: ``0``/``1``/``2``/``Z``
  (or empty) none, ``V`` a value date and time, ``S`` three availability amounts,
  ``D`` a count *n* then *n* pairs of days and amount.
* Amounts are whole numbers in the currency's minor unit (cents for USD), without a
  decimal point. The account, group and file control totals (49, 98, 99) are the
  sums of every 03 and 16 amount (funds-type amounts excluded), and the record
  counts include the 88s and the trailer itself; both are checked.

Version 3 files (BTRS, the X9 successor) have the same records and are read alike.
The reader knows nothing about deposits: :mod:`recon.remit.deposits` decides which
details are deposits. Every problem raises :class:`~recon.errors.FileFormatError`
naming the file and physical line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from recon.errors import FileFormatError
from recon.money import from_cents

CODES = ("01", "02", "03", "16", "49", "88", "98", "99")
_START = re.compile(r"\s*(\d\d),")
_AMOUNT = re.compile(r"[+-]?\d+")
# where a 16 record (or an 88 running on its text) ends inside a physical line: a
# "/" followed by a record that may come after a detail
_TEXT_END = re.compile(r"/\s*(?=(?:16|49|88),)")
_FOLLOWS = {
    None: {"01"},
    "01": {"02"},
    "02": {"03", "98"},
    "03": {"16", "49"},
    "16": {"16", "49"},
    "49": {"03", "98"},
    "98": {"02", "99"},
    "99": set(),
}

GROUP_STATUS = {"1": "update", "2": "deletion", "3": "correction", "4": "test only"}


class _Physical(NamedTuple):
    code: str
    data: str  # after "NN," without the closing "/"
    ended: bool  # closed by "/"
    line: int


@dataclass(frozen=True, slots=True)
class Detail:
    """One transaction detail (a 16 record with its 88s), with its group and account."""

    line: int
    as_of: date
    group_status: str
    account: str
    currency: str
    type_code: str
    amount: int
    """In the currency's minor unit (cents for USD), as written in the file."""
    funds_type: str
    value_date: date | None
    bank_reference: str
    customer_reference: str
    text: str
    """The text, its 88 lines joined; a space between lines where a line ended with ``/``."""
    text_run_on: str = ""
    """The same text with nothing inserted anywhere: a bank that ends every record with ``/``
    may still have wrapped a trace there (``TRN*1*EFT2026/`` then ``88,0311001*...``)."""


@dataclass(frozen=True, slots=True)
class Bai2File:
    """What a BAI2 file says, checked: its details in file order and its totals."""

    name: str
    sender: str
    receiver: str
    created: date
    details: tuple[Detail, ...]
    groups: int
    accounts: int
    total: int


# ------------------------------------------------------------------ entry
def looks_like_bai2(text: str) -> bool:
    """Recognised by content: the first record is a ``01`` file header."""
    return text.lstrip("\ufeff \t\r\n").startswith("01,")


def looks_like_records(text: str) -> bool:
    """Starts like BAI2 records (two digits and a comma), even without its ``01`` header.

    Such a file is read as BAI2 so its refusal says what a BAI2 file must start
    with; a deposit CSV starts with its ``deposit_id`` header, never with digits.
    """
    return _START.match(text.lstrip("\ufeff \t\r\n")) is not None


def parse(text: str, name: str) -> Bai2File:
    """Read and check a whole BAI2 file (its text); raise on the first problem."""
    return _Reader(name).read(text)


# ------------------------------------------------------------------ reader
class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name

    def error(self, line: int | None, problem: str, field: str | None = None) -> FileFormatError:
        return FileFormatError(self.name, line, field, problem)

    # -------------------------------------------------- physical records
    def physical(self, text: str) -> Iterator[_Physical]:
        """Split the text into physical records, several per line allowed."""
        last: str | None = None  # the record an 88 would continue
        pending: _Physical | None = None
        for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
            line = raw.rstrip().rstrip("\x1a").rstrip()
            if not line.strip():
                continue
            pos = 0
            start = _START.match(line)
            if start is None or (start.group(1) not in CODES and pending is not None and not pending.ended):
                # a line break inside a record (seen in real files): the record runs on
                if pending is None or pending.ended:
                    raise self.error(number, f"expected a record code ({', '.join(CODES)}), found {line[:20]!r}")
                data = pending.data + line
                ended = data.endswith("/")
                pending = pending._replace(data=data[:-1] if ended else data, ended=ended)
                continue
            while pos < len(line):
                match = _START.match(line, pos)
                if match is None:
                    raise self.error(number, f"expected a record code after '/', found {line[pos : pos + 20]!r}")
                code = match.group(1)
                if code not in CODES and pending is None:
                    raise self.error(
                        number, f"the file starts with record code {code!r}; a BAI2 file starts with a 01 file header"
                        " (a deposit CSV with the header deposit_id,deposit_date,amount)",
                    )  # fmt: skip
                if code not in CODES:
                    raise self.error(number, f"record code {code!r} is not one of {', '.join(CODES)}")
                start = match.end()
                text_like = code == "16" or (code == "88" and last == "16")
                if text_like:
                    end_match = _TEXT_END.search(line, start)
                    end = end_match.start() if end_match else -1
                    if end < 0 and line.endswith("/"):
                        end = len(line) - 1
                else:
                    end = line.find("/", start)
                if end < 0:
                    data, ended, pos = line[start:], False, len(line)
                else:
                    data, ended = line[start:end], True
                    pos = end + 1
                    while pos < len(line) and line[pos] in " \t":
                        pos += 1
                if pending is not None:
                    yield pending
                pending = _Physical(code, data, ended, number)
                if code != "88":
                    last = code
        if pending is not None:
            yield pending

    # -------------------------------------------------- logical records
    def logical(self, text: str) -> Iterator[tuple[str, list[_Physical]]]:
        """Each record with its 88 continuations (all physical records, for counting)."""
        current: list[_Physical] = []
        for rec in self.physical(text):
            if rec.code == "88":
                if not current:
                    raise self.error(rec.line, "an 88 continuation record with no record before it to continue")
                current.append(rec)
                continue
            if current:
                yield current[0].code, current
            current = [rec]
        if current:
            yield current[0].code, current

    # -------------------------------------------------- the file
    def read(self, text: str) -> Bai2File:
        state: str | None = None
        header: list[str] = []
        details: list[Detail] = []
        group_total = file_total = 0
        group_records = file_records = account_records = 0
        groups = accounts = group_accounts = 0
        account_total = 0
        group: dict[str, object] = {}
        account: dict[str, object] = {}
        last_line = 0
        for code, parts in self.logical(text):
            line = parts[0].line
            last_line = parts[-1].line
            count = len(parts)
            if code not in _FOLLOWS[state]:
                raise self.error(line, self._unexpected(code, state))
            file_records += count
            if code == "01":
                header = self.fields(parts)
                self.file_header(header, line)
            elif code == "02":
                group = self.group_header(self.fields(parts), line)
                group_records, group_total, group_accounts = count, 0, 0
            elif code == "03":
                account = self.account_header(parts, group, line)
                account_records, account_total = count, int(account["total"])  # type: ignore[call-overload]
                group_records += count
            elif code == "16":
                detail = self.detail(parts, group, account)
                details.append(detail)
                account_records += count
                group_records += count
                account_total += detail.amount
            elif code == "49":
                account_records += count
                group_records += count
                fields = self.fields(parts)
                self.check(line, "49 account trailer", fields, 1, account_total, "the account's 03 and 16 amounts")
                self.check_count(line, "49 account trailer", fields, 2, account_records, "records in the account")
                group_total += account_total
                group_accounts += 1
                accounts += 1
            elif code == "98":
                group_records += count
                fields = self.fields(parts)
                self.check(line, "98 group trailer", fields, 1, group_total, "the group's account totals")
                self.check_count(line, "98 group trailer", fields, 2, group_accounts, "accounts in the group")
                self.check_count(line, "98 group trailer", fields, 3, group_records, "records in the group")
                file_total += group_total
                groups += 1
            elif code == "99":
                fields = self.fields(parts)
                self.check(line, "99 file trailer", fields, 1, file_total, "the file's group totals")
                self.check_count(line, "99 file trailer", fields, 2, groups, "groups in the file")
                self.check_count(line, "99 file trailer", fields, 3, file_records, "records in the file")
            state = code
        if state != "99":
            expected = {None: "a 01 file header", "99": ""}.get(state, "the 99 file trailer")
            raise self.error(last_line or None, f"the file ends before {expected}; it is cut short or not BAI2")
        return Bai2File(
            self.name, header[1] if len(header) > 1 else "", header[2] if len(header) > 2 else "",
            self.date(header, 3, 1, "file creation date"), tuple(details), groups, accounts, file_total,
        )  # fmt: skip

    @staticmethod
    def _unexpected(code: str, state: str | None) -> str:
        names = {"01": "01 file header", "02": "02 group header", "03": "03 account", "16": "16 detail",
                 "49": "49 account trailer", "98": "98 group trailer", "99": "99 file trailer"}  # fmt: skip
        if state is None:
            return f"the file starts with a {names.get(code, code)}; a BAI2 file starts with a 01 file header"
        if state == "99":
            return f"a {names.get(code, code)} after the 99 file trailer"
        wanted = " or ".join(names[c] for c in sorted(_FOLLOWS[state]))
        return f"a {names.get(code, code)} where a {wanted} was expected (after a {names[state]})"

    # -------------------------------------------------- fields
    @staticmethod
    def fields(parts: list[_Physical]) -> list[str]:
        """A record's fields with its 88s joined as the specification says."""
        data = ""
        ended = False
        for i, part in enumerate(parts):
            if i and ended:
                data += ","
            data += part.data
            ended = part.ended
        return ["", *data.split(",")]  # index 1 is the first field after the record code

    def file_header(self, fields: list[str], line: int) -> None:
        version = fields[8].strip() if len(fields) > 8 else ""
        if version not in ("2", "3"):
            raise self.error(
                line,
                f"version {version or '(none)'!r}; recon reads BAI2 files (version 2, or 3: BTRS, the same records)",
                "01 file header",
            )
        self.date(fields, 3, line, "file creation date")

    def group_header(self, fields: list[str], line: int) -> dict[str, object]:
        status = fields[3].strip() if len(fields) > 3 else ""
        if status not in GROUP_STATUS:
            raise self.error(line, f"group status {status!r} is not 1, 2, 3 or 4", "02 group header")
        currency = (fields[6].strip() if len(fields) > 6 else "") or "USD"
        return {
            "as_of": self.date(fields, 4, line, "as-of date"),
            "status": status,
            "currency": currency.upper(),
        }

    def account_header(self, parts: list[_Physical], group: dict[str, object], line: int) -> dict[str, object]:
        """Account number, currency and the sum of its status and summary amounts.

        Each physical record is read as whole type-code groups; a group cut at a
        ``/`` (``...,190/`` then ``88,500000,,,``) is carried on into the next one.
        A spare empty field before a ``/`` (some banks write ``,,,/``) is ignored.
        """
        first = parts[0].data.split(",")
        number = first[0].strip()
        if not number:
            raise self.error(line, "required; expected the customer account number", "03 account")
        currency = (first[1].strip() if len(first) > 1 else "").upper() or str(group["currency"])
        total = 0
        carry: list[str] = []
        segments = [first[2:]] + [p.data.split(",") for p in parts[1:]]
        for i, segment in enumerate(segments):
            fields = carry + segment
            where = parts[i].line
            pos = 0
            while True:
                size = self.summary_size(fields, pos, where)
                if size is None or pos + size > len(fields):
                    break
                total += self.amount(fields[pos + 1], where, "03 account amount", signed=True)
                pos += size
            carry = fields[pos:]
            if not any(f.strip() for f in carry) and (i == len(segments) - 1 or parts[i].ended):
                carry = []
        if any(f.strip() for f in carry):
            carry += [""] * (4 - len(carry))
            size = self.summary_size(carry, 0, parts[-1].line)
            if size is None or size > len(carry):
                raise self.error(
                    parts[-1].line, f"type code {carry[0]!r} is cut short: its funds type needs more fields",
                    "03 account",
                )  # fmt: skip
            total += self.amount(carry[1], parts[-1].line, "03 account amount", signed=True)
        return {"number": number, "currency": currency, "total": total}

    def summary_size(self, fields: list[str], pos: int, line: int) -> int | None:
        """How many fields the type-code group at ``pos`` takes (None: not all there yet)."""
        if len(fields) - pos < 4:
            return None
        code = fields[pos].strip()
        if code and not (len(code) == 3 and code.isdigit()):
            raise self.error(line, f"type code {code!r} is not three digits", "03 account")
        extra = self.funds_extra(fields, pos + 3, line, "03 account")
        return None if extra is None else 4 + extra

    def funds_extra(self, fields: list[str], at: int, line: int, record: str) -> int | None:
        """Fields after the funds type at ``at`` (None: the count of a D is not there yet)."""
        funds = fields[at].strip().upper()
        if funds in ("", "Z", "0", "1", "2"):
            return 0
        if funds == "V":
            return 2
        if funds == "S":
            return 3
        if funds == "D":
            if at + 1 >= len(fields):
                return None
            text = fields[at + 1].strip()
            if not text.isdigit():
                raise self.error(line, f"funds type D needs a number of distributions, found {text!r}", record)
            return 1 + 2 * int(text)
        raise self.error(line, f"funds type {funds!r} is not one of 0, 1, 2, V, S, D, Z", record)

    def detail(self, parts: list[_Physical], group: dict[str, object], account: dict[str, object]) -> Detail:
        """A 16 record: type code, amount, funds type (and its fields), references, text."""
        line = parts[0].line
        fixed: list[str] = []
        need: int | None = None  # fixed fields in all, known once the funds type is read
        in_fixed = True
        text = run_on = ""
        prev_ended = True
        for i, part in enumerate(parts):
            if in_fixed:
                pieces = part.data.split(",")
                if i and not prev_ended:
                    fixed[-1] += pieces.pop(0)  # a field wrapped onto the 88 runs on
                while pieces and (need is None or len(fixed) < need):
                    fixed.append(pieces.pop(0))
                    if need is None and len(fixed) >= 3:
                        extra = self.funds_extra(fixed + pieces, 2, part.line, "16 detail")
                        need = None if extra is None else 5 + extra
                if need is not None and len(fixed) >= need and (pieces or part.ended):
                    in_fixed = False
                    text = run_on = ",".join(pieces)
            elif not text:
                text = run_on = part.data
            elif prev_ended:
                text += " " + part.data  # the text had ended with "/": a new line of text
                run_on += part.data
            else:
                text += part.data  # the text runs on: nothing is inserted
                run_on += part.data
            prev_ended = part.ended
        if need is None or len(fixed) < need:
            fixed += [""] * (5 - len(fixed))
            if need is None:
                need = 5 + (self.funds_extra(fixed, 2, line, "16 detail") or 0)
            fixed += [""] * (need - len(fixed))
        type_code = fixed[0].strip()
        if not (len(type_code) == 3 and type_code.isdigit()):
            raise self.error(line, f"type code {type_code!r} is not three digits", "16 detail")
        amount = self.amount(fixed[1], line, "16 detail amount", signed=False)
        funds = fixed[2].strip().upper() or "Z"
        value_date = None
        if funds == "V" and fixed[3].strip():
            value_date = self.date(["", fixed[3]], 1, line, "value date")
        return Detail(
            line=line, as_of=group["as_of"], group_status=str(group["status"]),  # type: ignore[arg-type]
            account=str(account["number"]), currency=str(account["currency"]), type_code=type_code,
            amount=amount, funds_type=funds, value_date=value_date, bank_reference=fixed[-2].strip(),
            customer_reference=fixed[-1].strip(), text=text.strip(), text_run_on=run_on.strip(),
        )  # fmt: skip

    # -------------------------------------------------- values
    def amount(self, text: str, line: int, field: str, *, signed: bool) -> int:
        text = text.strip()
        if not text:
            return 0
        if not _AMOUNT.fullmatch(text) or (not signed and text.startswith("-")):
            what = "a whole number of cents" + (", signed" if signed else "") + " without a decimal point"
            raise self.error(line, f"{text!r} is not an amount; expected {what}", field)
        return int(text)

    def check(self, line: int, record: str, fields: list[str], at: int, computed: int, what: str) -> None:
        text = fields[at].strip() if len(fields) > at else ""
        stated = self.amount(text, line, record, signed=True)
        if not text and computed:
            raise self.error(
                line, f"the control total is empty but {what} add up to {_money(computed)}; the file cannot be "
                "checked", record,
            )  # fmt: skip
        if stated != computed:
            raise self.error(
                line,
                f"control total {_money(stated)} but {what} add up to {_money(computed)} "
                f"(a difference of {_money(stated - computed)}); the file is incomplete or altered",
                record,
            )

    def check_count(self, line: int, record: str, fields: list[str], at: int, computed: int, what: str) -> None:
        text = fields[at].strip() if len(fields) > at else ""
        if not text:
            return  # an unstated count (the totals are still checked)
        if not text.isdigit():
            raise self.error(line, f"{text!r} is not a count of {what}", record)
        if int(text) != computed:
            raise self.error(line, f"says {int(text)} {what} but the file has {computed}", record)

    def date(self, fields: list[str], at: int, line: int, what: str) -> date:
        text = fields[at].strip() if len(fields) > at else ""
        try:
            if len(text) != 6 or not text.isdigit():
                raise ValueError
            return datetime.strptime(text, "%y%m%d").date()
        except ValueError:
            raise self.error(line, f"{text!r} is not a date; expected YYMMDD", what) from None


def _money(minor: int) -> str:
    """An amount in minor units as the analyst reads it (two decimals, as for USD)."""
    return f"{from_cents(minor):,}"


# ------------------------------------------------------------------ type codes
# Appendix A of the specification, in ranges: 001-099 status (balances), 100-399
# credits, 400-699 debits, 700-799 loans, 890 non-monetary, 900-999 bank-defined
# (900-929 status, 930-959 credits, 960-999 debits).
SUMMARY_CREDIT_CODES = frozenset(
    re.findall(
        r"\d{3}",
        "100 101 102 105 106 107 109 110 120 130 131 140 146 150 159 160 162 163 167 170 178 180 182 185 186 188 "
        "190 200 205 207 210 215 230 231 239 245 250 251 256 260 270 271 280 285 294 302 303 304 305 307 309 310 "
        "315 316 318 319 320 321 324 325 326 327 328 329 330 332 336 338 340 341 343 350 352 355 356 360 361 370 "
        "385 389 390 720",
    )
)
"""Credit codes that are totals (summary level): never one deposit, even in a 16 record."""

NAMES = {
    "100": "Total credits", "108": "Credit (any type)", "115": "Lockbox deposit", "116": "Item in lockbox deposit",
    "118": "Lockbox adjustment credit", "140": "Total ACH credits", "142": "ACH credit received",
    "143": "Item in ACH deposit", "145": "ACH concentration credit", "155": "Preauthorized draft credit",
    "158": "Real-time payment credit", "164": "Corporate trade payment credit", "165": "Preauthorized ACH credit",
    "166": "ACH settlement", "168": "ACH return item or adjustment settlement", "169": "Miscellaneous ACH credit",
    "171": "Individual loan deposit", "172": "Deposit correction", "173": "Bank-prepared deposit",
    "174": "Other deposit", "175": "Check deposit package", "176": "Re-presented check deposit",
    "187": "Cash letter credit", "190": "Total incoming money transfers",
    "191": "Incoming internal money transfer", "195": "Incoming money transfer", "196": "Money transfer adjustment",
    "201": "Automatic transfer credit", "206": "Book transfer credit", "208": "International money transfer credit",
    "218": "Foreign collection credit", "252": "Debit reversal", "254": "Posting error correction credit",
    "255": "Check posted and returned", "257": "ACH return item", "258": "ACH reversal credit",
    "261": "Rejected credit", "263": "Overdraft", "266": "Return item", "268": "Return item adjustment",
    "274": "Cumulative ZBA credits", "275": "ZBA credit", "276": "ZBA float adjustment",
    "277": "ZBA credit transfer", "278": "ZBA credit adjustment", "295": "ATM credit", "301": "Commercial deposit",
    "346": "Sweep interest income", "347": "Sweep principal sell", "354": "Interest credit",
    "357": "Credit adjustment", "359": "Interest adjustment credit", "366": "Currency and coin deposited",
    "395": "Check reversal", "397": "Float adjustment", "398": "Miscellaneous fee refund",
    "399": "Miscellaneous credit", "400": "Total debits", "409": "Debit (any type)", "451": "ACH debit received",
    "455": "Preauthorized ACH debit", "466": "ACH settlement debit", "469": "Miscellaneous ACH debit",
    "475": "Check paid", "495": "Outgoing money transfer", "501": "Automatic transfer debit",
    "506": "Book transfer debit", "555": "Deposited item returned", "557": "ACH return item debit",
    "564": "Overdraft fee", "575": "ZBA debit", "654": "Interest debit", "661": "Account analysis fee",
    "698": "Miscellaneous fees", "699": "Miscellaneous debit", "890": "Non-monetary information",
}  # fmt: skip


def kind(code: str) -> str:
    """``credit``, ``debit``, ``status``, ``loan`` or ``non-monetary``, from the code's range."""
    n = int(code) if code.isdigit() else -1
    if 100 <= n <= 399 or 930 <= n <= 959:
        return "credit"
    if 400 <= n <= 699 or 960 <= n <= 999:
        return "debit"
    if 700 <= n <= 799:
        return "loan"
    if n == 890:
        return "non-monetary"
    return "status"


def name(code: str) -> str:
    """A short description of the type code (its range when the code is not listed)."""
    found = NAMES.get(code)
    if found:
        return found
    what = kind(code)
    if code in SUMMARY_CREDIT_CODES:
        return "credit total (summary)"
    if int(code or 0) >= 900:
        return f"bank-defined {what}"
    return {"credit": "credit", "debit": "debit", "loan": "loan transaction", "status": "balance or status"}.get(
        what, what
    )
