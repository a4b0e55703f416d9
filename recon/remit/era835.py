"""The 835 loop model: one :class:`Remittance` per ST/SE transaction.

``read_835`` yields each transaction as soon as its SE is read, so a consumer holds
one transaction at a time and memory stays flat across many files. Envelope checks
that can only be made later (GE/IEA counts, a truncated file) raise when the reader
gets there, i.e. *after* earlier transactions were yielded: that is why posting first
reads the whole file to validate it (``recon.remit.validate``) and then reads it again
to post, instead of posting while reading.

Malformed values that make a transaction meaningless (an amount that is not a number,
broken envelopes) raise :class:`~recon.remit.x12.X12Error`. Missing or invalid data
that does not stop the money from being checked (a missing BPR16 date, an SVC01
without procedure code) is kept as a *defect* on the remittance, so a report can list
every problem of a file at once; a file with defects is never posted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from recon.errors import InvalidAmount
from recon.money import ZERO, parse_amount
from recon.remit.x12 import X12Error, X12Reader

_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)\Z")
_CACHE_LIMIT = 200_000
# Amount and date texts repeat a lot (fees, copays, service dates): parsing each
# distinct text once is the biggest saving of the reader. Decimals and dates are
# immutable, so the caches are shared by all reads; cleared when full to stay bounded.
_AMOUNTS: dict[str, Decimal] = {}
_DATES: dict[str, date] = {}
ONE = Decimal("1.00")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One CAS reason: group (CO, PR, OA, PI, CR), reason code, amount, quantity."""

    group: str
    reason: str
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """An SVC loop. ``service_date`` is DTM*472, else DTM*150, else the claim's DTM*232."""

    qualifier: str
    procedure_code: str
    modifiers: tuple[str, ...]
    charge: Decimal
    paid: Decimal
    units: Decimal
    service_date: date | None
    adjustments: tuple[Adjustment, ...]
    segment: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A CLP loop with its claim-level CAS and its service lines."""

    claim_id: str
    status: str
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal
    payer_control_number: str
    patient_name: str
    patient_id: str
    claim_date: date | None
    adjustments: tuple[Adjustment, ...]
    lines: tuple[ServiceLine, ...]
    segment: int

    @property
    def denied(self) -> bool:
        """CLP02 = 4: the payer denied the claim (no money, goes to the worklist)."""
        return self.status == "4"

    @property
    def reversal(self) -> bool:
        """CLP02 = 22: reversal of a previous payment, all amounts negated."""
        return self.status == "22"


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """One PLB reason/amount pair. Positive reduces the payment, negative increases it."""

    provider_id: str
    fiscal_period_end: date | None
    reason: str
    reference: str
    amount: Decimal
    segment: int


PLB = ProviderAdjustment


@dataclass(frozen=True, slots=True)
class Envelope:
    """Where a transaction sits: file name, ISA13, GS06, ST02 and the ST segment number."""

    file: str
    interchange_control: str
    group_control: str
    transaction_control: str
    segment: int


@dataclass(frozen=True, slots=True)
class Remittance:
    """One 835 transaction (ST..SE): a payment (or notice) and the claims it pays."""

    envelope: Envelope
    handling_code: str
    amount: Decimal
    credit_debit: str
    method: str
    payment_date: date | None
    trace_number: str
    originator_id: str
    payer_name: str
    payer_ref_id: str
    payer_n1_id: str
    payee_name: str
    payee_id: str
    claims: tuple[Claim, ...]
    provider_adjustments: tuple[ProviderAdjustment, ...]
    defects: tuple[str, ...]

    @property
    def notification_only(self) -> bool:
        """BPR01 = H: the remittance advises, no money moves."""
        return self.handling_code == "H"

    @property
    def payer_id(self) -> str:
        """The payer's id: REF*2U, else the N1*PR id, else TRN03 (``1`` + EIN)."""
        return self.payer_ref_id or self.payer_n1_id or self.originator_id


def _builder(cls: type[T]) -> Callable[..., T]:
    """A fast constructor for a frozen slots dataclass.

    A frozen dataclass sets each field with ``object.__setattr__``, which costs ~4 µs
    for a nine-field ServiceLine on CPython 3.11: more than reading its segments. An
    unfrozen twin with the same slots builds the instance in ~0.6 µs and then hands
    it its real class; the result is an ordinary, immutable instance of ``cls``.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    twin = dataclass(slots=True, eq=False, repr=False)(
        type(f"_{cls.__name__}Builder", (), {"__annotations__": dict.fromkeys(names, object)})
    )
    init, new = twin.__init__, object.__new__

    def build(*values: object) -> T:
        obj = new(twin)
        init(obj, *values)
        obj.__class__ = cls
        return obj  # type: ignore[return-value]

    return build


_adjustment = _builder(Adjustment)
_line = _builder(ServiceLine)
_claim = _builder(Claim)


def read_835(path: str | Path, *, name: str | None = None) -> Iterator[Remittance]:
    """Yield the remittances of one 835 file in order, checking envelopes as it goes."""
    return iter(_Parser(X12Reader(path, name=name)))


def _el(e: list[str], k: int) -> str:
    return e[k] if len(e) > k else ""


class _Parser:
    """The state machine behind :func:`read_835` (one instance per file read)."""

    def __init__(self, reader: X12Reader) -> None:
        self.reader = reader
        self.file = reader.name
        self.amounts = _AMOUNTS
        self._dates = _DATES

    def fail(self, n: int | None, sid: str | None, pos: int | None, problem: str) -> X12Error:
        return X12Error(self.file, n, sid, pos, problem)

    def amount(self, e: list[str], pos: int, n: int, *, required: bool = True) -> Decimal:
        """Element ``pos`` of segment ``e`` as money, through ``parse_amount`` (cached)."""
        text = e[pos] if len(e) > pos else ""
        value = self.amounts.get(text)
        if value is not None:
            return value
        if not text:
            if not required:
                return ZERO
            raise self.fail(n, e[0], pos, "missing; expected an amount")
        if not _DECIMAL.match(text):
            raise self.fail(n, e[0], pos, f"{text!r} is not an amount")
        try:
            value = parse_amount(text, f"{e[0]}{pos:02d}")
        except InvalidAmount as exc:
            raise self.fail(n, e[0], pos, f"{text!r} is not valid: {exc.expected}") from exc
        if len(self.amounts) >= _CACHE_LIMIT:
            self.amounts.clear()
        self.amounts[text] = value
        return value

    def date(self, e: list[str], pos: int, n: int, defects: list[str],
             what: str = "a date") -> date | None:
        """Element ``pos`` as a CCYYMMDD date; a missing or bad date becomes a defect."""
        text = e[pos] if len(e) > pos else ""
        value = self._dates.get(text)
        if value is not None:
            return value
        try:
            if len(text) != 8 or not text.isdigit():
                raise ValueError
            value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            problem = "missing" if not text else f"{text!r} is not a date"
            defects.append(self.fail(n, e[0], pos, f"{problem}; expected {what} as CCYYMMDD")
                           .message)
            return None
        if len(self._dates) >= _CACHE_LIMIT:
            self._dates.clear()
        self._dates[text] = value
        return value

    def adjustments(self, e: list[str], n: int, into: list[Adjustment]) -> None:
        """Append the (up to six) reason/amount/quantity triplets of a CAS segment."""
        size = len(e)
        if size > 20:
            raise self.fail(n, "CAS", 20, "a CAS segment has at most 19 elements")
        group = e[1] if size > 1 else ""
        if not group:
            raise self.fail(n, "CAS", 1, "missing; expected a group code (CO, PR, OA, PI, CR)")
        if size < 4 or not e[2]:
            raise self.fail(n, "CAS", 2, "missing; expected a reason code")
        cache = self.amounts
        for i in range(2, size, 3):
            reason = e[i]
            if not reason:
                if any(e[i + 1:i + 3]):
                    raise self.fail(n, "CAS", i, "missing; an amount has no reason code")
                continue
            amount = cache.get(e[i + 1]) if i + 1 < size else None
            if amount is None:
                amount = self.amount(e, i + 1, n)
            qty = self.amount(e, i + 2, n) if i + 2 < size and e[i + 2] else None
            into.append(_adjustment(e[1], reason, amount, qty))

    def __iter__(self) -> Iterator[Remittance]:
        reader = self.reader
        isa: list[str] | None = None
        gs: list[str] | None = None
        gs_count = st_count = 0
        tx: _Transaction | None = None
        handlers: dict[str, Callable[[int, list[str]], None]] = {}
        n = 0
        for first, batch in reader.batches():
            n = first - 1
            for e in batch:
                n += 1
                sid = e[0]
                if tx is not None:
                    if sid == "SE":
                        yield tx.finish(n, e)
                        tx = None
                    else:
                        handler = handlers.get(sid)
                        if handler is not None:
                            handler(n, e)
                elif sid == "ST":
                    if gs is None:
                        raise self.fail(n, sid, None, "ST outside a functional group (no GS)")
                    if _el(e, 1) != "835":
                        raise self.fail(n, sid, 1, f"{_el(e, 1)!r}: not an 835 transaction")
                    if not _el(e, 2):
                        raise self.fail(n, sid, 2, "missing; expected the control number")
                    st_count += 1
                    tx = _Transaction(self, _el(isa or [], 13), _el(gs, 6), e[2], n,
                                      reader.separators.component)
                    handlers = tx.handlers()
                elif sid == "ISA":
                    if isa is not None:
                        raise self.fail(n, sid, None, f"interchange {isa[13]} has no IEA")
                    isa, gs_count = e, 0
                elif sid == "GS":
                    if isa is None or gs is not None:
                        raise self.fail(n, sid, None, "GS outside an interchange, or before GE")
                    gs, gs_count, st_count = e, gs_count + 1, 0
                elif sid == "GE":
                    if gs is None:
                        raise self.fail(n, sid, None, "GE without a GS")
                    self.count(n, e, st_count, "transactions (ST)")
                    self.same(n, e, gs[6] if len(gs) > 6 else "", "GS06")
                    gs = None
                elif sid == "IEA":
                    if isa is None or gs is not None:
                        raise self.fail(n, sid, None, "IEA without ISA, or before GE")
                    self.count(n, e, gs_count, "functional groups (GS)")
                    self.same(n, e, isa[13], "ISA13")
                    isa = None
                else:
                    raise self.fail(n, sid, None, "segment outside a transaction (ST..SE)")
        self.check_end(n, tx, gs, isa)

    def count(self, n: int, e: list[str], actual: int, what: str) -> None:
        if _el(e, 1) != str(actual):
            raise self.fail(n, e[0], 1, f"says {_el(e, 1)!r} {what} but there are {actual}")

    def same(self, n: int, e: list[str], control: str, where: str) -> None:
        if _el(e, 2) != control:
            raise self.fail(n, e[0], 2, f"{_el(e, 2)!r} does not match {where} {control!r}")

    def check_end(self, n: int, tx: _Transaction | None, gs: list[str] | None,
                  isa: list[str] | None) -> None:
        """A file that stops before SE/GE/IEA was cut short: refuse it."""
        if n == 0:
            raise self.fail(None, None, None, "the file is empty")
        if tx is not None:
            raise self.fail(n, None, None, f"the file ends inside transaction {tx.control} "
                            "(no SE): truncated?")
        if gs is not None:
            raise self.fail(n, None, None, f"the file ends inside group {_el(gs, 6)} "
                            "(no GE): truncated?")
        if isa is not None:
            raise self.fail(n, None, None, f"the file ends inside interchange {isa[13]} "
                            "(no IEA): truncated?")


class _Transaction:
    """Everything collected between ST and SE, turned into a Remittance at SE."""

    def __init__(self, p: _Parser, isa13: str, gs06: str, control: str, first: int,
                 component: str) -> None:
        self.p = p
        self.isa13, self.gs06, self.control = isa13, gs06, control
        self.first = first
        self.component = component
        self.bpr: list[str] | None = None
        self.payment_date: date | None = None
        self.trn: list[str] | None = None
        self.party = ""
        self.payer_name = self.payer_ref = self.payer_n1 = ""
        self.payee_name = self.payee_id = ""
        self.claims: list[Claim] = []
        self.plb: list[ProviderAdjustment] = []
        self.defects: list[str] = []
        self.clp: list[str] | None = None
        self.svc: list[str] | None = None
        self.claim_adj: list[Adjustment] = []
        self.line_adj: list[Adjustment] = []

    def handlers(self) -> dict[str, Callable[[int, list[str]], None]]:
        """Segment id → handler; segments not listed (REF, AMT, LQ, ...) are skipped."""
        envelope = self.misplaced_envelope
        return {
            "CAS": self.cas, "DTM": self.dtm, "SVC": self.open_line, "CLP": self.open_claim,
            "NM1": self.nm1, "REF": self.ref, "LX": self.lx, "PLB": self.provider_adjustments,
            "N1": self.n1, "BPR": self.bpr_segment, "TRN": self.trn_segment,
            "ISA": envelope, "GS": envelope, "ST": envelope, "GE": envelope, "IEA": envelope,
        }

    def misplaced_envelope(self, n: int, e: list[str]) -> None:
        raise self.p.fail(n, e[0], None, f"transaction {self.control} has no SE; "
                          f"{e[0]} cannot appear inside it")

    # -- claims and lines -----------------------------------------------------------
    def open_claim(self, n: int, e: list[str]) -> None:
        self.close_claim()
        p = self.p
        if len(e) < 5 or not e[1] or not e[2]:
            for pos in (1, 2, 3, 4):
                if len(e) <= pos or not e[pos]:
                    what = "a value" if pos < 3 else "an amount"
                    raise p.fail(n, "CLP", pos, f"missing; expected {what}")
        cache = p.amounts
        charge, paid = cache.get(e[3]), cache.get(e[4])
        if charge is None:
            charge = p.amount(e, 3, n)
        if paid is None:
            paid = p.amount(e, 4, n)
        patient = cache.get(e[5]) if len(e) > 5 and e[5] else ZERO
        if patient is None:
            patient = p.amount(e, 5, n)
        self.clp, self.clp_n, self.clp_amounts = e, n, (charge, paid, patient)
        self.claim_adj = []
        self.lines: list[ServiceLine] = []
        self.patient = self.patient_id = ""
        self.claim_date: date | None = None
        self.party = ""

    def close_claim(self) -> None:
        if self.svc is not None:
            self.close_line()
        e = self.clp
        if e is None:
            return
        charge, paid, patient = self.clp_amounts
        self.claims.append(_claim(e[1], e[2], charge, paid, patient, _el(e, 7), self.patient,
                                  self.patient_id, self.claim_date, tuple(self.claim_adj),
                                  tuple(self.lines), self.clp_n))
        self.clp = None

    def open_line(self, n: int, e: list[str]) -> None:
        if self.svc is not None:
            self.close_line()
        p = self.p
        if self.clp is None:
            raise p.fail(n, "SVC", None, "service line outside a claim (no CLP before it)")
        if len(e) < 4:
            raise p.fail(n, "SVC", len(e), "missing; expected SVC01 to SVC03")
        cache = p.amounts
        charge, paid = cache.get(e[2]), cache.get(e[3])
        if charge is None:
            charge = p.amount(e, 2, n)
        if paid is None:
            paid = p.amount(e, 3, n)
        self.svc, self.svc_n, self.svc_amounts = e, n, (charge, paid)
        self.svc_units = p.amount(e, 5, n) if len(e) > 5 and e[5] else ONE
        self.line_adj = []
        self.line_date: date | None = None
        self.line_start: date | None = None
        parts = e[1].split(self.component)
        self.svc_parts = parts
        if len(parts) < 2 or not parts[1] or len(parts[0]) != 2:
            c = self.component
            self.defects.append(p.fail(
                n, "SVC", 1, f"{e[1]!r} has no procedure code; expected qualifier{c}code "
                f"(component separator {c!r} from ISA16)",
            ).message)

    def close_line(self) -> None:
        parts = self.svc_parts
        charge, paid = self.svc_amounts
        self.lines.append(_line(
            parts[0], parts[1] if len(parts) > 1 else "",
            tuple(m for m in parts[2:6] if m) if len(parts) > 2 else (),
            charge, paid, self.svc_units, self.line_date or self.line_start or self.claim_date,
            tuple(self.line_adj), self.svc_n,
        ))
        self.svc = None

    def cas(self, n: int, e: list[str]) -> None:
        if self.svc is not None:
            self.p.adjustments(e, n, self.line_adj)
        elif self.clp is not None:
            self.p.adjustments(e, n, self.claim_adj)
        else:
            raise self.p.fail(n, "CAS", None, "adjustment outside a claim (no CLP before it)")

    def dtm(self, n: int, e: list[str]) -> None:
        qualifier = e[1] if len(e) > 1 else ""
        if self.svc is not None:
            if qualifier == "472":
                self.line_date = self.p.date(e, 2, n, self.defects, "the service date")
            elif qualifier == "150":
                self.line_start = self.p.date(e, 2, n, self.defects, "the service date")
        elif self.clp is not None and qualifier == "232":
            self.claim_date = self.p.date(e, 2, n, self.defects, "the claim date")

    def nm1(self, n: int, e: list[str]) -> None:
        if self.clp is not None and self.svc is None and _el(e, 1) == "QC":
            last, first = _el(e, 3), _el(e, 4)
            self.patient = f"{last}, {first}" if first else last
            self.patient_id = _el(e, 9)

    # -- header ---------------------------------------------------------------------
    def bpr_segment(self, n: int, e: list[str]) -> None:
        self.bpr = e
        self.p.amount(e, 2, n)
        self.payment_date = self.p.date(e, 16, n, self.defects, "the payment date")

    def trn_segment(self, n: int, e: list[str]) -> None:
        if not _el(e, 2):
            raise self.p.fail(n, "TRN", 2, "missing; expected the check or EFT trace number")
        if self.trn is None:
            self.trn = e

    def n1(self, n: int, e: list[str]) -> None:
        self.party = _el(e, 1)
        if self.party == "PR":
            self.payer_name, self.payer_n1 = _el(e, 2), _el(e, 4)
        elif self.party == "PE":
            self.payee_name, self.payee_id = _el(e, 2), _el(e, 4)

    def ref(self, n: int, e: list[str]) -> None:
        if self.party == "PR" and self.clp is None and _el(e, 1) == "2U":
            self.payer_ref = _el(e, 2)

    def lx(self, n: int, e: list[str]) -> None:
        self.close_claim()

    def provider_adjustments(self, n: int, e: list[str]) -> None:
        """Append the (up to six) reason/amount pairs of a PLB segment."""
        self.close_claim()
        p = self.p
        if len(e) > 15:
            raise p.fail(n, "PLB", 15, "a PLB segment has at most six adjustments")
        when = p.date(e, 2, n, self.defects, "the fiscal period date")
        for i in range(3, len(e), 2):
            composite = e[i]
            if not composite:
                if _el(e, i + 1):
                    raise p.fail(n, "PLB", i, "missing; an amount has no reason code")
                continue
            reason, _, reference = composite.partition(self.component)
            amount = p.amount(e, i + 1, n)
            self.plb.append(ProviderAdjustment(_el(e, 1), when, reason, reference, amount, n))

    def finish(self, n: int, e: list[str]) -> Remittance:
        """Check SE against ST and build the immutable Remittance."""
        p = self.p
        expected = n - self.first + 1
        if _el(e, 1) != str(expected):
            raise p.fail(n, "SE", 1, f"says {_el(e, 1)!r} segments but ST..SE has {expected}")
        if _el(e, 2) != self.control:
            raise p.fail(n, "SE", 2, f"{_el(e, 2)!r} does not match ST02 {self.control!r}")
        if self.bpr is None:
            raise p.fail(self.first, "ST", None, f"transaction {self.control} has no BPR")
        if self.trn is None:
            raise p.fail(self.first, "ST", None, f"transaction {self.control} has no TRN")
        self.close_claim()
        bpr, trn = self.bpr, self.trn
        return Remittance(
            Envelope(p.file, self.isa13, self.gs06, self.control, self.first),
            bpr[1] if len(bpr) > 1 else "", p.amount(bpr, 2, n), _el(bpr, 3), _el(bpr, 4),
            self.payment_date, trn[2], _el(trn, 3), self.payer_name, self.payer_ref,
            self.payer_n1, self.payee_name, self.payee_id, tuple(self.claims),
            tuple(self.plb), tuple(self.defects),
        )
