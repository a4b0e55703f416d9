"""The 835 loop model: one :class:`Remittance` per ST/SE transaction.

``read_835`` yields each transaction as soon as its SE is read, so a consumer holds
one transaction at a time and memory stays flat across many files. Envelope checks
that can only be made later (GE/IEA counts, a truncated file) raise when the reader
gets there, i.e. *after* earlier transactions were yielded: that is why posting must
not commit anything before the whole file was read.

Malformed values that make a transaction meaningless (an amount that is not a number,
broken envelopes, truncation) raise :class:`~recon.remit.x12.X12Error`. Missing or
invalid data that does not stop the money from being checked (a missing BPR16 with
nothing to replace it, an SVC01 without procedure code) is kept as a *defect* on the
remittance, so a report can list every problem of a file at once; a file with
defects is never posted.

Some defects have exactly one sensible reading and are repaired, each with a line
in ``Remittance.warnings`` (file, segment, element, what was read): a BPR16 missing
or impossible (the one plausible date elsewhere in the BPR, else DTM*405); an SVC01
written with another system's component separator (``HC>99213`` under ISA16 ``:``);
a bare SVC01 qualifier whose code slid into SVC02 (SVC01+SVC02 joined). Posting
should show these warnings with the file's outcome.

For posting (and anything else that reads whole files):

- :func:`read_835_stream` gives a transaction's claims in batches (then its record without
  them): what validation and posting use, so that memory stays flat when one ST holds a
  million claims, as a large payer's file does. The whole-transaction readers below keep
  every claim of an ST in memory.
- :func:`read_835_checked` (or :func:`recon.remit.balance.read_balanced`, which gives
  ``BalanceProblem`` objects) balances in the same pass: use it instead of
  ``read_835`` + ``check_remittance`` (same problems, same order, ~15% less time).
- The records are plain frozen dataclasses built in ~0.35 µs each, so turning them
  into column lists costs about what a dedicated column reader would; there is no
  separate column API.
- Amounts, dates, SVC01 composites and whole CAS segments are parsed once per distinct
  text (module caches, bounded); :func:`clear_caches` empties them (benchmarks).

Hostile input: every element the reader keeps or parses is checked against its X12
maximum length first (an amount has at most 18 digits, a quantity 15), with plain
length comparisons and regexes that cannot backtrack, so reading stays linear in the
file's size; a bad value is quoted cut to ~60 characters (:func:`~recon.remit.x12.shown`).
Quantities (SVC05 units, CAS quantities; X12 type R) are exact Decimals but not money:
``0.125`` units are fine. The envelope checks include GS01 = HP and interchange
control numbers (ISA13) that are unique within the file.
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
from recon.money import CENT, ZERO, fmt, parse_amount
from recon.remit.x12 import X12Error, X12Reader, indented, shown

_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
"""A decimal number (ASCII digits only). The digits before the point are matched once,
so a failing match costs one pass; the former pattern, with two digit runs side by side,
tried every way to split a run between them: 13.7 s on 40,000 digits followed by an X."""
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,16}(?:\.[0-9]{1,2})?\Z")
"""Amounts parse_amount would accept unchanged: at most two decimals, below 10**16."""
AMOUNT_DIGITS = 18
"""X12 type R, 1/18: an amount has at most 18 digits (sign and decimal point not counted)."""
QUANTITY_DIGITS = 15
"""X12 type R, 1/15: SVC05 units and CAS quantities."""
COMPOSITE_CHARS = 200
"""Longer than any SVC01/SVC06 composite can be (2 + 48 + 4 × 2 + 80 + 48 and 7 separators)."""
_CACHE_LIMIT = 50_000
_CAS_CACHE_LIMIT = 20_000
# Caches are cleared when full, so memory stays bounded across any number of files:
# ~10 MB for amounts, ~8 MB for CAS segments (key, Adjustments, total). Larger limits
# bought no speed on a 10 MB file and cost ~100 MB over a million claims.
# Amount and date texts repeat a lot (fees, copays, service dates): parsing each
# distinct text once is the biggest saving of the reader. Decimals and dates are
# immutable, so the caches are shared by all reads; cleared when full to stay bounded.
_AMOUNTS: dict[str, Decimal] = {}
_DATES: dict[str, date] = {}
_QUANTITIES: dict[str, Decimal] = {}  # apart from _AMOUNTS: '0.125' units are no money
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
    billed_code: str = ""  # SVC06-2: the procedure as billed, sent when the payer changed it


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
    warnings: tuple[str, ...] = ()

    @property
    def notification_only(self) -> bool:
        """BPR01 = H: the remittance advises, no money moves."""
        return self.handling_code == "H"

    @property
    def payer_id(self) -> str:
        """The payer's id: REF*2U, else the N1*PR id, else TRN03 (``1`` + EIN)."""
        return self.payer_ref_id or self.payer_n1_id or self.originator_id


def _builder(cls: type[T]) -> Callable[..., T]:
    """A fast positional constructor for a frozen slots dataclass.

    A frozen dataclass sets each field with ``object.__setattr__``: ~1.9 µs for a
    nine-field ServiceLine, as much as reading its segments. Here an unfrozen twin with
    the same slots gets plain slot stores and is then handed its real class (allowed:
    same layout); the result is an ordinary, immutable instance of ``cls``, built in
    ~0.35 µs. The function is generated so it takes named positional parameters: a
    ``*values`` version that calls the twin's ``__init__`` costs twice as much.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    twin = type(f"_{cls.__name__}Builder", (), {"__slots__": tuple(names)})
    params = ", ".join(names)
    stores = "".join(f"    obj.{name} = {name}\n" for name in names)
    source = f"def build({params}):\n    obj = new(twin)\n{stores}    obj.__class__ = cls\n    return obj\n"
    namespace: dict[str, object] = {"new": object.__new__, "twin": twin, "cls": cls}
    exec(source, namespace)  # the source is made of the dataclass's own field names
    build = namespace["build"]
    build.__doc__ = f"Build a {cls.__name__} from its fields, in order."  # type: ignore[attr-defined]
    return build  # type: ignore[return-value]


_adjustment = _builder(Adjustment)
_line = _builder(ServiceLine)
_claim = _builder(Claim)

Imbalance = tuple[str, str, str, "str | None", "int | None", "int | None", int, Decimal, Decimal, str]
"""The positional fields of :class:`recon.remit.balance.BalanceProblem`, found while reading."""

PRODUCT_QUALIFIERS = frozenset({"AD", "ER", "HC", "HP", "IV", "N4", "N6", "NU", "UI", "WK", "ZZ"})
"""SVC01-1 product/service id qualifiers (005010X221A1, plus the common ZZ)."""

COMMON_COMPONENT_SEPARATORS = (">", ":", "^")
"""What other systems use as component separator when a file ignores its own ISA16."""

_CAS_CACHES: dict[str, dict[str, tuple[tuple[Adjustment, ...], Decimal]]] = {}
_DTM_CACHES: dict[str, dict[str, tuple[str, date | None]]] = {}
_SVC01_CACHES: dict[str, dict[str, tuple[str, str, tuple[str, ...]] | None]] = {}
_SEGMENT_IDS: dict[str, dict[str, str]] = {}
_MODELLED = ("BPR", "CAS", "CLP", "DTM", "NM1", "PLB", "REF", "SVC", "TRN", "ISA", "IEA")
_MODELLED_2 = ("LX", "N1", "SE", "ST", "GS", "GE")


def clear_caches() -> None:
    """Forget every parsed amount, date, composite and CAS segment (for cold timings)."""
    for cache in (_AMOUNTS, _QUANTITIES, _DATES, _CAS_CACHES, _DTM_CACHES, _SVC01_CACHES):
        cache.clear()


def read_835(path: str | Path, *, name: str | None = None) -> Iterator[Remittance]:
    """Yield the remittances of one 835 file in order, checking envelopes as it goes."""
    for rem, _ in read_835_checked(path, name=name):
        yield rem


def read_835_checked(path: str | Path, *, name: str | None = None) -> Iterator[tuple[Remittance, list[Imbalance]]]:
    """Like :func:`read_835`, with the balancing problems found in the same pass.

    Each item is ``(remittance, imbalances)``; an imbalance holds the positional fields
    of :class:`~recon.remit.balance.BalanceProblem` (use
    :func:`recon.remit.balance.read_balanced` to get those objects). Balancing while the
    amounts are at hand saves walking every claim, line and adjustment a second time:
    about a sixth of the read. The result always equals ``check_remittance(rem)``.
    """
    return _read(X12Reader(path, name=name))  # type: ignore[return-value]


STREAM_BATCH = 2_000
"""Claims per :class:`ClaimBatch`: enough to amortise a yield, few enough to keep memory flat."""


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    """The next claims of the file's ``st``-th transaction (1-based), in file order.

    ``header`` is the transaction as its header segments (BPR, TRN, N1, REF*2U, DTM*405)
    describe it before its first claim: what posting needs to decide, before staging a
    claim, whether the transaction is new. It has no claims, PLB or SE-time warnings;
    :func:`same_header` tells whether the finished transaction still agrees with it.
    """

    st: int
    header: Remittance
    claims: list[Claim]


@dataclass(frozen=True, slots=True)
class TransactionEnd:
    """A transaction read to its SE: the record without its claims, and their totals."""

    st: int
    remittance: Remittance
    imbalances: list[Imbalance]
    claims: int
    lines: int
    paid: Decimal


def read_835_stream(
    path: str | Path, *, name: str | None = None, batch: int = STREAM_BATCH
) -> Iterator[ClaimBatch | TransactionEnd]:
    """Read and balance a file holding at most ``batch`` claims in memory, whatever its size.

    Per transaction: its claims in :class:`ClaimBatch` items, then one
    :class:`TransactionEnd` (whose remittance has ``claims == ()``). The checks,
    problems, messages and their order are those of :func:`read_835_checked`; a payer
    file of one ST with a million claims is read in the memory of ``batch`` of them.
    """
    return _read(X12Reader(path, name=name), max(1, batch))  # type: ignore[return-value]


_HEADER_FIELDS = (
    "envelope",
    "handling_code",
    "amount",
    "credit_debit",
    "method",
    "payment_date",
    "trace_number",
    "originator_id",
    "payer_name",
    "payer_ref_id",
    "payer_n1_id",
    "payee_name",
    "payee_id",
)


def same_header(early: Remittance, final: Remittance) -> bool:
    """Whether a transaction's header read before its claims still holds at its SE.

    It does unless a header segment (BPR, TRN, N1, DTM*405) comes after a claim, which
    no payer's file does; a consumer that decided on ``early`` reads such a file again.
    """
    return all(getattr(early, f) == getattr(final, f) for f in _HEADER_FIELDS)


def _segment_ids(el: str) -> dict[str, str]:
    """First three characters of a segment → its id, for the ids the reader acts on.

    A two-letter id is followed by the element separator (``LX*``), so a slice of three
    characters tells every modelled segment apart with one dict lookup and no split.
    """
    ids = _SEGMENT_IDS.get(el)
    if ids is None:
        ids = {sid: sid for sid in _MODELLED}
        for sid in _MODELLED_2:
            ids[sid + el] = ids[sid] = sid
        _SEGMENT_IDS[el] = ids
    return ids


def _el(e: list[str], k: int) -> str:
    return e[k] if len(e) > k else ""


def _amount(file: str, e: list[str], pos: int, n: int, *, required: bool = True) -> Decimal:
    """Element ``pos`` of segment ``e`` as money, through ``parse_amount`` (cached)."""
    text = e[pos] if len(e) > pos else ""
    value = _AMOUNTS.get(text)
    if value is not None:
        return value
    if _PLAIN_AMOUNT.match(text):  # the usual shape: skip parse_amount's general checks
        value = Decimal(text) if text[-3:-2] == "." else Decimal(text).quantize(CENT)
        if len(_AMOUNTS) >= _CACHE_LIMIT:
            _AMOUNTS.clear()
        _AMOUNTS[text] = value
        return value
    if not text:
        if not required:
            return ZERO
        raise X12Error(file, n, e[0], pos, "missing; expected an amount")
    if _digits(text) > AMOUNT_DIGITS:  # before any parsing: a million digits would overflow
        raise X12Error(
            file, n, e[0], pos, f"{shown(text)} is too long for an amount: X12 allows at most {AMOUNT_DIGITS} digits"
        )
    if not _DECIMAL.match(text):
        raise X12Error(file, n, e[0], pos, f"{shown(text)} is not an amount")
    try:
        value = parse_amount(text, f"{e[0]}{pos:02d}")
    except InvalidAmount as exc:
        raise X12Error(file, n, e[0], pos, f"{shown(text)} is not valid: {exc.expected}") from exc
    if len(_AMOUNTS) >= _CACHE_LIMIT:
        _AMOUNTS.clear()
    _AMOUNTS[text] = value
    return value


def _digits(text: str) -> int:
    """How many digits X12 counts in a number: its length less a sign and a point."""
    if len(text) > AMOUNT_DIGITS + 2:
        return len(text)
    return len(text) - text.startswith("-") - ("." in text)


def _quantity(file: str, e: list[str], pos: int, n: int) -> Decimal:
    """Element ``pos`` as a quantity (X12 type R: SVC05 units, CAS04/07/... quantities).

    Exact, and not money: ``0.125`` or ``9.999`` units are valid, so the two-decimal
    rule does not apply. Values with at most two decimals are given two places
    (``1`` reads as ``1.00``, as before quantities were told apart from amounts).
    """
    text = e[pos]
    value = _QUANTITIES.get(text)
    if value is not None:
        return value
    if _digits(text) > QUANTITY_DIGITS:
        raise X12Error(
            file, n, e[0], pos, f"{shown(text)} is too long for a quantity: X12 allows at most {QUANTITY_DIGITS} digits"
        )
    if not _DECIMAL.match(text):
        raise X12Error(file, n, e[0], pos, f"{shown(text)} is not a quantity (a number such as 1 or 0.125)")
    value = Decimal(text)
    if value.as_tuple().exponent >= -2:  # type: ignore[operator]
        value = value.quantize(CENT)
    if len(_QUANTITIES) >= _CACHE_LIMIT:
        _QUANTITIES.clear()
    _QUANTITIES[text] = value
    return value


Limits = dict[int, tuple[int, str]]
"""Element position → (X12 maximum length, what the element is) for :func:`_too_long`."""
CLP_LIMITS: Limits = {
    1: (38, "the patient control number"),
    2: (2, "a claim status code"),
    7: (50, "the payer claim control number"),
}
NM1_LIMITS: Limits = {
    3: (60, "a last or organization name"),
    4: (35, "a first name"),
    9: (80, "an identification code"),
}
CAS_LIMITS: Limits = {
    1: (2, "a claim adjustment group code"),
    **{i: (5, "an adjustment reason code") for i in range(2, 20, 3)},
}
SVC01_LIMITS = (2, 48, 2, 2, 2, 2, 80, 48)
"""C003: qualifier, procedure code, four modifiers, description, product/service id."""
BPR_LIMITS: Limits = {
    1: (2, "a transaction handling code"),
    3: (1, "a credit/debit flag"),
    4: (3, "a payment method code"),
}
TRN_LIMITS: Limits = {2: (50, "the check or EFT trace number"), 3: (10, "the payer's originating company id")}
N1_LIMITS: Limits = {2: (60, "a name"), 4: (80, "an identification code")}
REF_LIMITS: Limits = {2: (50, "a reference id")}
PLB_LIMITS: Limits = {1: (50, "the provider id")}


def _too_long(file: str, e: list[str], n: int, limits: Limits) -> None:
    """Refuse the first element of ``e`` longer than its X12 maximum (``limits``)."""
    for pos, (limit, what) in limits.items():
        if len(e) > pos and len(e[pos]) > limit:
            raise X12Error(
                file, n, e[0], pos, f"{shown(e[pos])} is too long for {what}: X12 allows at most {limit} characters"
            )


def _parse_date(text: str) -> date | None:
    """A CCYYMMDD text as a date (cached), or None when it is not one."""
    value = _DATES.get(text)
    if value is not None:
        return value
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    if len(_DATES) >= _CACHE_LIMIT:
        _DATES.clear()
    _DATES[text] = value
    return value


def _date(file: str, e: list[str], pos: int, n: int, defects: list[str], what: str = "a date") -> date | None:
    """Element ``pos`` as a CCYYMMDD date; a missing or bad date becomes a defect."""
    text = e[pos] if len(e) > pos else ""
    value = _parse_date(text)
    if value is None:
        problem = "missing" if not text else f"{shown(text)} is not a date"
        defects.append(X12Error(file, n, e[0], pos, f"{problem}; expected {what} as CCYYMMDD").message)
    return value


def _cas(file: str, e: list[str], n: int) -> tuple[tuple[Adjustment, ...], Decimal]:
    """The (up to six) reason/amount/quantity triplets of a CAS segment, and their sum."""
    size = len(e)
    if size == 4 and e[1] and e[2] and len(e[1]) <= 2 and len(e[2]) <= 5:  # most CAS segments
        amount = _AMOUNTS.get(e[3])
        if amount is None:
            amount = _amount(file, e, 3, n)
        return (_adjustment(e[1], e[2], amount, None),), amount
    if size > 20:
        raise X12Error(file, n, "CAS", 20, "a CAS segment has at most 19 elements")
    _too_long(file, e, n, CAS_LIMITS)
    group = e[1] if size > 1 else ""
    if not group:
        raise X12Error(file, n, "CAS", 1, "missing; expected a group code (CO, PR, OA, PI, CR)")
    if size < 4 or not e[2]:
        raise X12Error(file, n, "CAS", 2, "missing; expected a reason code")
    found: list[Adjustment] = []
    total = ZERO
    for i in range(2, size, 3):
        reason = e[i]
        if not reason:
            if any(e[i + 1 : i + 3]):
                raise X12Error(file, n, "CAS", i, "missing; an amount has no reason code")
            continue
        amount = _amount(file, e, i + 1, n)
        qty = _quantity(file, e, i + 2, n) if i + 2 < size and e[i + 2] else None
        found.append(_adjustment(group, reason, amount, qty))
        total += amount
    return tuple(found), total


def _read(
    reader: X12Reader, batch: int = 0
) -> Iterator[tuple[Remittance, list[Imbalance]] | ClaimBatch | TransactionEnd]:
    """The reader proper: one pass, one function, state in local variables.

    Why it is written as one long loop: a 10 MB file has ~430,000 segments and the
    budget is about a microsecond each. A method call per segment, attribute access
    for state, or splitting segments nobody reads would each cost more than the
    whole of what is left. So the segment id is found from the first three characters
    (no split), skipped segments cost one dict lookup, claim and line state live in
    locals, and closing a line or a claim (which also balances it) is written once,
    at the one place every segment that closes something passes through. Amounts and
    dates go through caches of their text, CAS segments through a cache of the whole
    segment text (the same adjustment recurs on many lines). Rare work (header,
    envelopes, repairs, errors) lives in :class:`_Transaction` and plain functions.

    ``batch`` > 0 streams (:func:`read_835_stream`): every ``batch`` claims go out as a
    :class:`ClaimBatch` and the transaction ends with a :class:`TransactionEnd`.
    """
    file = reader.name
    amounts = _AMOUNTS
    quantities = _QUANTITIES
    isa: list[str] | None = None
    interchanges: dict[str, int] = {}  # ISA13 -> segment of its ISA: control numbers are unique
    gs: list[str] | None = None
    gs_count = st_count = 0
    tx: _Transaction | None = None
    n = 0
    # claim and line state (valid while tx is not None)
    claims: list[Claim] = []
    imbalances: list[Imbalance] = []
    paid_total = ZERO
    clp_e: list[str] | None = None
    clp_n = svc_n = 0
    c_charge = c_paid = c_patient = c_cas = c_lcas = ZERO
    c_adj: list[Adjustment] = []
    c_lines: list[ServiceLine] = []
    c_name = c_pid = ""
    c_date: date | None = None
    svc_open = False
    l_qual = l_code = l_billed = ""
    l_mods: tuple[str, ...] = ()
    l_charge = l_paid = l_units = l_cas = ZERO
    l_adj: list[Adjustment] = []
    l_472: date | None = None
    l_150: date | None = None
    control = ""
    header = True  # before the first claim: where REF*2U names the payer
    st_seq = 0  # transactions so far in the file (ClaimBatch.st)
    for first, segs in reader.raw_batches():
        seps = reader.separators
        el = seps.element
        comp = seps.component
        ids = _segment_ids(el)
        cas_cache = _CAS_CACHES.setdefault(el, {})
        dtm_cache = _DTM_CACHES.setdefault(el, {})
        svc01_cache = _SVC01_CACHES.setdefault(comp, {})
        nm1_qc = f"NM1{el}QC{el}"
        n = first - 1
        for s in segs:
            n += 1
            if tx is None:
                e = s.split(el)
                sid = e[0]
                if sid == "ST":
                    if gs is None:
                        raise X12Error(file, n, sid, None, "ST outside a functional group (no GS)")
                    if _el(e, 1) != "835":
                        raise X12Error(file, n, sid, 1, f"{shown(_el(e, 1))}: not an 835 transaction")
                    if not _el(e, 2):
                        raise X12Error(file, n, sid, 2, "missing; expected the control number")
                    if len(e[2]) > 9:
                        raise X12Error(
                            file,
                            n,
                            sid,
                            2,
                            f"{shown(e[2])} is too long for a control number: X12 allows at most 9 characters",
                        )
                    st_count += 1
                    control = e[2]
                    tx = _Transaction(file, _el(isa or [], 13), _el(gs, 6), control, n, comp)
                    claims, imbalances, paid_total = [], [], ZERO
                    st_seq += 1
                    clp_e, svc_open, header = None, False, True
                elif sid == "ISA":
                    if isa is not None:
                        raise X12Error(file, n, sid, None, f"interchange {isa[13]} has no IEA")
                    if len(e) != 17:  # the tokenizer read this ISA's separators from it
                        raise X12Error(
                            file, n, sid, None, "the ISA is not the fixed 106-character segment the standard requires"
                        )
                    earlier = interchanges.setdefault(e[13], n)
                    if earlier != n:
                        raise X12Error(
                            file,
                            n,
                            sid,
                            13,
                            f"control number {e[13]!r} was already used "
                            f"by the interchange at segment {earlier}: each interchange "
                            "in a file needs its own",
                        )
                    isa, gs_count = e, 0
                elif sid == "GS":
                    if isa is None or gs is not None:
                        raise X12Error(file, n, sid, None, "GS outside an interchange, or before GE")
                    if _el(e, 1) != "HP":
                        raise X12Error(
                            file,
                            n,
                            sid,
                            1,
                            f"{shown(_el(e, 1))}: an 835 travels in a "
                            "functional group with GS01 = HP (health care claim "
                            "payment/advice)",
                        )
                    if len(_el(e, 6)) > 9:
                        raise X12Error(
                            file,
                            n,
                            sid,
                            6,
                            f"{shown(e[6])} is too long for a group control number: X12 allows at most 9 digits",
                        )
                    gs, gs_count, st_count = e, gs_count + 1, 0
                elif sid == "GE":
                    if gs is None:
                        raise X12Error(file, n, sid, None, "GE without a GS")
                    _count(file, n, e, st_count, "transactions (ST)")
                    _same(file, n, e, _el(gs, 6), "GS06")
                    gs = None
                elif sid == "IEA":
                    if isa is None or gs is not None:
                        raise X12Error(file, n, sid, None, "IEA without ISA, or before GE")
                    _count(file, n, e, gs_count, "functional groups (GS)")
                    _same(file, n, e, isa[13], "ISA13")
                    isa = None
                elif s[0] in " \t":
                    raise indented(file, n, s)
                else:
                    raise X12Error(file, n, sid, None, "segment outside a transaction (ST..SE)")
                continue
            sid = ids.get(s[:3])  # type: ignore[assignment]
            if sid is None:  # a segment the reader skips; or an indented one, which it must not
                if s[0] in " \t":
                    raise indented(file, n, s)
                continue
            if sid == "DTM":
                # Whole-segment cache: a file has a few hundred distinct DTM segments.
                dtm = dtm_cache.get(s)
                if dtm is None:
                    e = s.split(el)
                    dtm = (_el(e, 1), _parse_date(_el(e, 2)))
                    if dtm[1] is not None and len(e) == 3:  # only good ones: errors need n
                        if len(dtm_cache) >= _CACHE_LIMIT:
                            dtm_cache.clear()
                        dtm_cache[s] = dtm
                q = dtm[0]
                if svc_open:
                    if q == "472":
                        l_472 = dtm[1] or _date(file, s.split(el), 2, n, tx.defects, "the service date")
                    elif q == "150":
                        l_150 = dtm[1] or _date(file, s.split(el), 2, n, tx.defects, "the service date")
                elif clp_e is not None:
                    if q == "232":
                        c_date = dtm[1] or _date(file, s.split(el), 2, n, tx.defects, "the claim date")
                elif q == "405" and tx.production is None:
                    tx.production = (dtm[1], n)
            elif sid == "CAS":
                if svc_open:
                    into = l_adj
                elif clp_e is not None:
                    into = c_adj
                else:
                    raise X12Error(file, n, "CAS", None, "adjustment outside a claim (no CLP before it)")
                hit = cas_cache.get(s)
                if hit is None:
                    hit = _cas(file, s.split(el), n)
                    if len(cas_cache) >= _CAS_CACHE_LIMIT:
                        cas_cache.clear()
                    cas_cache[s] = hit
                into += hit[0]
                if svc_open:
                    l_cas += hit[1]
                else:
                    c_cas += hit[1]
            elif sid == "NM1":
                if clp_e is not None and not svc_open and s.startswith(nm1_qc):
                    e = s.split(el)
                    if len(s) > 45:  # "NM1*QC*1*" + more than 35 characters: a name may be too long
                        _too_long(file, e, n, NM1_LIMITS)
                    if len(e) > 9:
                        c_name = f"{e[3]}, {e[4]}" if e[4] else e[3]
                        c_pid = e[9]
                    else:
                        last, given = _el(e, 3), _el(e, 4)
                        c_name = f"{last}, {given}" if given else last
                        c_pid = _el(e, 9)
            elif sid == "REF":
                if header and tx.party == "PR":
                    e = s.split(el)
                    if _el(e, 1) == "2U":
                        _too_long(file, e, n, REF_LIMITS)
                        tx.payer_ref = _el(e, 2)
            elif sid == "SVC" or sid == "CLP" or sid == "LX" or sid == "PLB" or sid == "SE":
                # Everything that ends the open line (and, but for SVC, the open claim).
                if svc_open:
                    computed = l_charge - l_cas
                    if computed != l_paid:
                        imbalances.append(
                            (
                                "line",
                                file,
                                control,
                                clp_e[1],
                                clp_n,  # type: ignore[index]
                                len(c_lines) + 1,
                                svc_n,
                                l_paid,
                                computed,
                                f"SVC02 {fmt(l_charge)} − line CAS {fmt(l_cas)}",
                            )
                        )
                    c_lines.append(
                        _line(
                            l_qual,
                            l_code,
                            l_mods,
                            l_charge,
                            l_paid,
                            l_units,
                            l_472 or l_150 or c_date,
                            tuple(l_adj),
                            svc_n,
                            l_billed,
                        )
                    )
                    c_lcas += l_cas
                    svc_open = False
                if sid != "SVC" and clp_e is not None:
                    adjusted = c_cas + c_lcas
                    computed = c_charge - adjusted
                    if computed != c_paid:
                        what = "claim + line CAS" if c_lines else "claim CAS"
                        imbalances.append(
                            (
                                "claim",
                                file,
                                control,
                                clp_e[1],
                                clp_n,
                                None,
                                clp_n,
                                c_paid,
                                computed,
                                f"CLP03 {fmt(c_charge)} − {what} {fmt(adjusted)}",
                            )
                        )
                    claims.append(
                        _claim(
                            clp_e[1],
                            clp_e[2],
                            c_charge,
                            c_paid,
                            c_patient,
                            clp_e[7] if len(clp_e) > 7 else "",
                            c_name,
                            c_pid,
                            c_date,
                            tuple(c_adj),
                            tuple(c_lines),
                            clp_n,
                        )
                    )
                    paid_total += c_paid
                    clp_e = None
                    if batch and len(claims) >= batch:
                        yield tx.batch(st_seq, claims)
                        claims = []
                if sid == "SVC":
                    if clp_e is None:
                        raise X12Error(file, n, "SVC", None, "service line outside a claim (no CLP before it)")
                    e = s.split(el)
                    if len(e) < 4:
                        raise X12Error(file, n, "SVC", len(e), "missing; expected SVC01 to SVC03")
                    svc01 = svc01_cache.get(e[1])
                    if svc01 is None:
                        e, svc01 = _svc01(tx, e, n, comp, svc01_cache)
                    if len(e) > 6 and len(e[6]) > 200:  # COMPOSITE_CHARS
                        raise X12Error(
                            file,
                            n,
                            "SVC",
                            6,
                            f"{shown(e[6])} is too long for a "
                            f"procedure composite (at most {COMPOSITE_CHARS} characters)",
                        )
                    l_qual, l_code, l_mods = svc01
                    l_charge = amounts.get(e[2])  # type: ignore[assignment]
                    if l_charge is None:
                        l_charge = _amount(file, e, 2, n)
                    l_paid = amounts.get(e[3])  # type: ignore[assignment]
                    if l_paid is None:
                        l_paid = _amount(file, e, 3, n)
                    if len(e) > 5 and e[5]:
                        l_units = quantities.get(e[5])  # type: ignore[assignment]
                        if l_units is None:
                            l_units = _quantity(file, e, 5, n)
                    else:
                        l_units = ONE
                    l_billed = e[6].split(comp)[1].upper() if len(e) > 6 and comp in e[6] else ""
                    svc_open, svc_n = True, n
                    l_adj = []
                    l_cas = ZERO
                    l_472 = l_150 = None
                elif sid == "CLP":
                    e = s.split(el)
                    if len(e) < 5 or not e[1] or not e[2]:
                        for pos in (1, 2, 3, 4):
                            if len(e) <= pos or not e[pos]:
                                what = "a value" if pos < 3 else "an amount"
                                raise X12Error(file, n, "CLP", pos, f"missing; expected {what}")
                    if len(e[2]) > 2 or (len(s) > 42 and (len(e[1]) > 38 or (len(e) > 7 and len(e[7]) > 50))):
                        _too_long(file, e, n, CLP_LIMITS)
                    c_charge = amounts.get(e[3])  # type: ignore[assignment]
                    if c_charge is None:
                        c_charge = _amount(file, e, 3, n)
                    c_paid = amounts.get(e[4])  # type: ignore[assignment]
                    if c_paid is None:
                        c_paid = _amount(file, e, 4, n)
                    if len(e) > 5 and e[5]:
                        c_patient = amounts.get(e[5])  # type: ignore[assignment]
                        if c_patient is None:
                            c_patient = _amount(file, e, 5, n)
                    else:
                        c_patient = ZERO
                    clp_e, clp_n = e, n
                    c_adj, c_lines = [], []
                    c_cas = c_lcas = ZERO
                    c_name = c_pid = ""
                    c_date = None
                    header = False
                elif sid == "PLB":
                    tx.plb_segment(s.split(el), n)
                elif sid == "SE":
                    if batch:
                        if claims:
                            yield tx.batch(st_seq, claims)
                            claims = []
                        rem, imbalances = tx.finish(n, s.split(el), claims, paid_total, imbalances)
                        yield TransactionEnd(st_seq, rem, imbalances, tx.n_claims, tx.n_lines, paid_total)
                    else:
                        yield tx.finish(n, s.split(el), claims, paid_total, imbalances)
                    tx = None
            else:
                e = s.split(el)
                if sid == "BPR":
                    tx.bpr_segment(e, n)
                elif sid == "TRN":
                    tx.trn_segment(e, n)
                elif sid == "N1":
                    tx.n1(e, n)
                else:  # ISA, GS, ST, GE, IEA
                    raise X12Error(
                        file, n, sid, None, f"transaction {tx.control} has no SE; {sid} cannot appear inside it"
                    )
    _check_end(file, n, tx, gs, isa)


def _count(file: str, n: int, e: list[str], actual: int, what: str) -> None:
    if _el(e, 1) != str(actual):
        raise X12Error(file, n, e[0], 1, f"says {shown(_el(e, 1))} {what} but there are {actual}")


def _same(file: str, n: int, e: list[str], control: str, where: str) -> None:
    if _el(e, 2) != control:
        raise X12Error(file, n, e[0], 2, f"{shown(_el(e, 2))} does not match {where} {control!r}")


def _check_end(file: str, n: int, tx: _Transaction | None, gs: list[str] | None, isa: list[str] | None) -> None:
    """A file that stops before SE/GE/IEA was cut short: refuse it."""
    if n == 0:
        raise X12Error(file, None, None, None, "the file is empty")
    if tx is not None:
        raise X12Error(file, n, None, None, f"the file ends inside transaction {tx.control} (no SE): truncated?")
    if gs is not None:
        raise X12Error(file, n, None, None, f"the file ends inside group {_el(gs, 6)} (no GE): truncated?")
    if isa is not None:
        raise X12Error(file, n, None, None, f"the file ends inside interchange {_el(isa, 13)} (no IEA): truncated?")


def _plausible(day: date | None) -> bool:
    """A payment date a payer could mean (an account number can parse as year 2468)."""
    return day is not None and 1980 <= day.year <= 2099


class _Transaction:
    """The rarely touched part of one ST..SE: header, PLB, repairs, the final checks."""

    def __init__(self, file: str, isa13: str, gs06: str, control: str, first: int, component: str) -> None:
        self.file = file
        self.isa13, self.gs06, self.control = isa13, gs06, control
        self.first = first
        self.component = component
        self.bpr: list[str] | None = None
        self.bpr_n = 0
        self.payment_date: date | None = None
        self.production: tuple[date | None, int] | None = None
        self.date_slots = (0, 0)
        self.trn: list[str] | None = None
        self.party = ""
        self.payer_name = self.payer_ref = self.payer_n1 = ""
        self.payee_name = self.payee_id = ""
        self.plb: list[ProviderAdjustment] = []
        self.defects: list[str] = []
        self.warnings: list[str] = []
        self.n_claims = self.n_lines = 0  # claims handed out in batches (streaming)
        self.early: Remittance | None = None

    def batch(self, st: int, claims: list[Claim]) -> ClaimBatch:
        """Claims handed out while streaming, with the header as read before the first of them."""
        self.n_claims += len(claims)
        lines = 0
        for claim in claims:
            lines += len(claim.lines)
        self.n_lines += lines
        if self.early is None:
            self.early = self.header()
        return ClaimBatch(st, self.early, claims)

    def header(self) -> Remittance:
        """The transaction as its header describes it so far (no claims, PLB or repairs yet)."""
        bpr, trn = self.bpr or [], self.trn or []
        return Remittance(
            Envelope(self.file, self.isa13, self.gs06, self.control, self.first),
            _el(bpr, 1),
            _amount(self.file, bpr, 2, self.bpr_n) if bpr else ZERO,
            _el(bpr, 3),
            _el(bpr, 4),
            self.peek_payment_date(),
            _el(trn, 2),
            _el(trn, 3),
            self.payer_name,
            self.payer_ref,
            self.payer_n1,
            self.payee_name,
            self.payee_id,
            (),
            (),
            tuple(self.defects),
            tuple(self.warnings),
        )

    def peek_payment_date(self) -> date | None:
        """The payment date :meth:`resolve_payment_date` would settle on now, without its messages."""
        if self.payment_date is not None or self.bpr is None:
            return self.payment_date
        found = [day for pos in range(5, min(len(self.bpr), 16)) if _plausible(day := _parse_date(self.bpr[pos]))]
        if len(found) == 1:
            return found[0]
        if self.production is not None and _plausible(self.production[0]):
            return self.production[0]
        return None

    def where(self, n: int, sid: str, pos: int | None) -> str:
        return X12Error(self.file, n, sid, pos, "").message[:-2]

    # -- repairs of defects other systems are known to write ----------------------------
    def repair_svc(self, e: list[str], parts: list[str], n: int) -> tuple[list[str], list[str]]:
        """Read an SVC01 that breaks the composite rules, when only one reading makes sense.

        Two slips seen in real files: the composite written with another system's
        component separator (``HC>99213`` under ISA16 ``:``), and a bare qualifier whose
        code slid into SVC02, pushing the amounts one element right
        (``SVC*HC*24599*1766.50*187.50**1``; SVC04 is a 4-digit revenue code, never an
        amount with a decimal point). Each repair is reported as a warning; anything
        else stays a defect, and a file with a defect is not posted.
        """
        c = self.component
        composite = e[1]
        if len(parts) == 1:
            others = [sep for sep in COMMON_COMPONENT_SEPARATORS if sep != c and sep in composite]
            if len(others) == 1:
                split = composite.split(others[0])
                if len(split[0]) == 2 and split[1]:
                    self.warnings.append(
                        f"{self.where(n, 'SVC', 1)}: {shown(composite)} uses {others[0]!r}, not the "
                        f"component separator {c!r} declared in ISA16; read as "
                        f"{shown(c.join(split))}"
                    )
                    return e, split
            elif not others and composite in PRODUCT_QUALIFIERS and _slid_svc(e):
                joined = [composite, e[2]]
                self.warnings.append(
                    f"{self.where(n, 'SVC', 1)}: {shown(composite)} is a bare qualifier and SVC02 "
                    f"{shown(e[2])} its code (the amounts sit one element right); read SVC01 as "
                    f"{shown(c.join(joined))}, charge {e[3]}, paid {e[4]}"
                )
                return [e[0], c.join(joined), *e[3:]], joined
        self.defects.append(
            X12Error(
                self.file,
                n,
                "SVC",
                1,
                f"{shown(composite)} has no procedure code; expected "
                f"qualifier{c}code (component separator {c!r} from ISA16)",
            ).message
        )
        return e, parts

    def resolve_payment_date(self) -> None:
        """BPR16, or the date a careful reader can tell the payer meant (with a warning).

        Seen in real files: BPR16 missing because the date slid into BPR15, and an
        impossible BPR16 (``20002316``). The payment date is then the one plausible
        date among the other BPR elements, else the DTM*405 production date; without
        either it stays a defect. Called at SE (DTM*405 follows BPR); the message goes
        where the BPR's would have gone, so messages stay in file order.
        """
        bpr = self.bpr
        if bpr is None or self.payment_date is not None:
            return
        n = self.bpr_n
        text = _el(bpr, 16)
        problem = "missing" if not text else f"{shown(text)} is not a date"
        found = [(pos, day) for pos in range(5, min(len(bpr), 16)) if _plausible(day := _parse_date(bpr[pos]))]
        at_defect, at_warning = self.date_slots
        if len(found) == 1:
            pos, self.payment_date = found[0]
            self.warnings.insert(
                at_warning,
                (f"{self.where(n, 'BPR', 16)}: {problem}; the payment date {bpr[pos]} found in BPR{pos:02d} was used"),
            )
        elif self.production is not None and _plausible(self.production[0]):
            self.payment_date, at = self.production
            self.warnings.insert(
                at_warning,
                (
                    f"{self.where(n, 'BPR', 16)}: {problem}; the production date "
                    f"{self.payment_date:%Y%m%d} from DTM*405 (segment {at}) was used as the "
                    "payment date"
                ),
            )
        else:
            found_defect: list[str] = []
            _date(self.file, bpr, 16, n, found_defect, "the payment date")
            self.defects[at_defect:at_defect] = found_defect

    # -- header ---------------------------------------------------------------------------
    def bpr_segment(self, e: list[str], n: int) -> None:
        _too_long(self.file, e, n, BPR_LIMITS)
        self.bpr, self.bpr_n = e, n
        _amount(self.file, e, 2, n)
        self.payment_date = _parse_date(_el(e, 16))  # if None: resolve_payment_date at SE
        self.date_slots = (len(self.defects), len(self.warnings))

    def trn_segment(self, e: list[str], n: int) -> None:
        if not _el(e, 2):
            raise X12Error(self.file, n, "TRN", 2, "missing; expected the check or EFT trace number")
        _too_long(self.file, e, n, TRN_LIMITS)
        if self.trn is None:
            self.trn = e

    def n1(self, e: list[str], n: int) -> None:
        _too_long(self.file, e, n, N1_LIMITS)
        self.party = _el(e, 1)
        if self.party == "PR":
            self.payer_name, self.payer_n1 = _el(e, 2), _el(e, 4)
        elif self.party == "PE":
            self.payee_name, self.payee_id = _el(e, 2), _el(e, 4)

    def plb_segment(self, e: list[str], n: int) -> None:
        """Append the (up to six) reason/amount pairs of a PLB segment."""
        file = self.file
        if len(e) > 15:
            raise X12Error(file, n, "PLB", 15, "a PLB segment has at most six adjustments")
        _too_long(file, e, n, PLB_LIMITS)
        when = _date(file, e, 2, n, self.defects, "the fiscal period date")
        for i in range(3, len(e), 2):
            composite = e[i]
            if not composite:
                if _el(e, i + 1):
                    raise X12Error(file, n, "PLB", i, "missing; an amount has no reason code")
                continue
            reason, _, reference = composite.partition(self.component)
            if len(reason) > 2 or len(reference) > 50:
                raise X12Error(
                    file,
                    n,
                    "PLB",
                    i,
                    f"{shown(composite)} is too long: X12 allows a "
                    "reason code of 2 characters and a reference of at most 50",
                )
            amount = _amount(file, e, i + 1, n)
            self.plb.append(ProviderAdjustment(_el(e, 1), when, reason, reference, amount, n))

    def finish(
        self, n: int, e: list[str], claims: list[Claim], paid: Decimal, imbalances: list[Imbalance]
    ) -> tuple[Remittance, list[Imbalance]]:
        """Check SE against ST, settle the payment date, balance the file, build the record."""
        file = self.file
        expected = n - self.first + 1
        if _el(e, 1) != str(expected):
            raise X12Error(file, n, "SE", 1, f"says {shown(_el(e, 1))} segments but ST..SE has {expected}")
        if _el(e, 2) != self.control:
            raise X12Error(file, n, "SE", 2, f"{shown(_el(e, 2))} does not match ST02 {self.control!r}")
        if self.bpr is None:
            raise X12Error(file, self.first, "ST", None, f"transaction {self.control} has no BPR")
        if self.trn is None:
            raise X12Error(file, self.first, "ST", None, f"transaction {self.control} has no TRN")
        bpr, trn = self.bpr, self.trn
        self.resolve_payment_date()
        amount = _amount(file, bpr, 2, n)
        plb = ZERO
        for adj in self.plb:
            plb += adj.amount
        computed = paid - plb
        if computed != amount:
            imbalances.append(
                (
                    "file",
                    file,
                    self.control,
                    None,
                    None,
                    None,
                    self.first,
                    amount,
                    computed,
                    f"Σ CLP04 {fmt(paid)} − Σ PLB {fmt(plb)}",
                )
            )
        rem = Remittance(
            Envelope(file, self.isa13, self.gs06, self.control, self.first),
            _el(bpr, 1),
            amount,
            _el(bpr, 3),
            _el(bpr, 4),
            self.payment_date,
            trn[2],
            _el(trn, 3),
            self.payer_name,
            self.payer_ref,
            self.payer_n1,
            self.payee_name,
            self.payee_id,
            tuple(claims),
            tuple(self.plb),
            tuple(self.defects),
            tuple(self.warnings),
        )
        return rem, imbalances


def _svc01(
    tx: _Transaction,
    e: list[str],
    n: int,
    comp: str,
    cache: dict[str, tuple[str, str, tuple[str, ...]] | None],
) -> tuple[list[str], tuple[str, str, tuple[str, ...]]]:
    """SVC01 as (qualifier, code, modifiers); well-formed composites are cached.

    A composite that needs a repair is not cached, so each occurrence gets its warning.
    """
    if len(e[1]) > COMPOSITE_CHARS:
        raise X12Error(
            tx.file,
            n,
            "SVC",
            1,
            f"{shown(e[1])} is too long for a procedure composite (at most {COMPOSITE_CHARS} characters)",
        )
    parts = e[1].split(comp)
    good = len(parts) >= 2 and len(parts[0]) == 2 and bool(parts[1])
    if not good:
        e, parts = tx.repair_svc(e, parts, n)
    for part, limit in zip(parts[1:], SVC01_LIMITS[1:], strict=False):
        if len(part) > limit:  # the qualifier is judged above (a defect, or repaired)
            raise X12Error(
                tx.file,
                n,
                "SVC",
                1,
                f"{shown(part)} in {shown(e[1])} is too long: X12 allows at most {limit} characters for that component",
            )
    svc01 = (parts[0], parts[1] if len(parts) > 1 else "", tuple(m for m in parts[2:6] if m) if len(parts) > 2 else ())
    if good:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[e[1]] = svc01
    return e, svc01


def _slid_svc(e: list[str]) -> bool:
    """Whether an SVC with a bare SVC01 reads right once SVC01 and SVC02 are joined.

    It does when the elements one to the right are amounts (charge, paid) and the
    unshifted reading is impossible: SVC02 is not an amount; or SVC04 (a revenue
    code, digits only) holds an amount with a decimal point; or SVC06 (a composite
    procedure, qualifier first) holds a number, which is then the units of SVC05; or
    SVC has more than its seven elements.
    """
    if len(e) < 5 or _digits(e[3]) > AMOUNT_DIGITS or _digits(e[4]) > AMOUNT_DIGITS:
        return False
    if not _DECIMAL.match(e[3]) or not _DECIMAL.match(e[4]):
        return False
    return not _DECIMAL.match(e[2]) or "." in e[4] or len(e) > 8 or (len(e) > 6 and bool(_DECIMAL.match(e[6])))
