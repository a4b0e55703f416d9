"""Write valid, balanced 835 files of any size, for tests and benchmarks.

Real remittances cannot be shared (they are PHI), so tests and benchmarks need a
source of files that look like a payer's: paid claims with CO-45 contractual
write-offs, patient responsibility (PR-1/2/3), denials (CLP02 = 4), reversals (CLP02
= 22 followed by their correction), multi-line claims, claims without lines, and PLB
interest (L6, negative) and recoupments (WO, positive). Given a practice's invoices
the claims pay those invoices, so posting can be tested end to end; extra claims
match nothing. Amounts are integer cents until written, so no float touches money.

Output is deterministic for a seed. BPR02 must precede the claims it totals, so each
transaction's claims are spooled to a temporary file first: memory stays flat however
many claims are written.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from recon.money import parse_amount
from recon.remit.x12 import Separators

CODES = ("90791", "90832", "90834", "90837", "90846", "90847", "90853", "96130", "H0031")
LAST = ("GARCIA", "SMITH", "NGUYEN", "JOHNSON", "PATEL", "BROWN", "KIM", "LOPEZ", "MILLER")
FIRST = ("ALEX", "SAM", "JORDAN", "TAYLOR", "MORGAN", "CASEY", "RILEY", "JAMIE", "AVERY")
DENIAL_REASONS = ("50", "197", "16", "27", "29")


@dataclass(frozen=True, slots=True)
class InvoiceSpec:
    """What the generator needs of a practice invoice to pay it."""

    invoice_id: str
    service_date: date
    service_code: str
    fee: Decimal


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    """What was written, so tests can compare the reader's output with it."""

    path: Path
    claims: int
    transactions: int
    segments: int
    total_paid: Decimal
    trace_numbers: tuple[str, ...]
    invoice_claims: int
    unmatched_claims: int
    reversals: int


def _invoice(item: Any) -> InvoiceSpec:
    """Accept an InvoiceSpec, any object with its attributes, a mapping, or a tuple."""
    if isinstance(item, InvoiceSpec):
        return item
    if isinstance(item, Mapping):
        values = [item[k] for k in ("invoice_id", "service_date", "service_code", "fee")]
    elif isinstance(item, tuple):
        values = list(item)
    else:
        values = [getattr(item, k) for k in ("invoice_id", "service_date", "service_code",
                                              "fee")]
    return InvoiceSpec(str(values[0]), values[1], str(values[2]), parse_amount(values[3], "fee"))


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


@lru_cache(maxsize=4096)
def _d8(day: date) -> str:
    """CCYYMMDD; cached because strftime is slow and service dates repeat."""
    return f"{day:%Y%m%d}"


def _m(cents: int) -> str:
    """Cents as an X12 decimal: ``15000`` → ``150``, ``-1234`` → ``-12.34``."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}" if part == 0 else f"{sign}{whole}.{part:02d}"


class _Writer:
    """Builds segments for one file; ``claim_*`` methods return (segments, paid cents)."""

    def __init__(self, rng: random.Random, seps: Separators) -> None:
        self.rng = rng
        self.e = seps.element
        self.c = seps.component
        self.control = 0

    def seg(self, *elements: str) -> str:
        return self.e.join(elements)

    def below(self, n: int) -> int:
        """A number in [0, n): ``getrandbits`` is C-fast where ``randrange`` is not."""
        return self.rng.getrandbits(40) % n

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self.rng.getrandbits(20) % len(options)]

    def _patient(self, out: list[str], when: date) -> None:
        s = self.seg
        out.append(s("NM1", "QC", "1", self.pick(LAST), self.pick(FIRST), "", "", "", "MI",
                     f"M{self.below(10**8):08d}"))
        out.append(s("NM1", "82", "1", "CLINICIAN", "PAT", "", "", "", "XX", "1811901945"))
        out.append(s("DTM", "232", _d8(when)))
        out.append(s("DTM", "233", _d8(when)))

    def _line(self, out: list[str], code: str, when: date, fee: int,
              adjustments: list[tuple[str, list[tuple[str, int]]]], paid: int) -> None:
        s = self.seg
        units = "" if self.rng.getrandbits(1) else "1"
        out.append(s("SVC", f"HC{self.c}{code}", _m(fee), _m(paid), "", units).rstrip(self.e))
        out.append(s("DTM", "472", _d8(when)))
        for group, pairs in adjustments:
            elements = ["CAS", group]
            for reason, cents in pairs:
                elements += [reason, _m(cents), ""]
            out.append(s(*elements).rstrip(self.e))
        out.append(s("REF", "6R", f"L{self.below(10**9):09d}"))
        out.append(s("AMT", "B6", _m(fee - sum(c for g, p in adjustments if g == "CO"
                                              for _, c in p))))

    def _adjudicate(self, fee: int, kind: str) -> tuple[list[tuple[str, list[tuple[str, int]]]],
                                                        int, int]:
        """Adjustments, paid and patient responsibility for one line of ``fee`` cents."""
        r = self.rng
        if kind == "denied":
            return [("CO", [(self.pick(DENIAL_REASONS), fee)])], 0, 0
        allowed = fee * (55 + self.below(41)) // 100
        adjustments: list[tuple[str, list[tuple[str, int]]]] = []
        if fee > allowed:
            adjustments.append(("CO", [("45", fee - allowed)]))
        patient = 0
        if kind == "partial":
            pairs = []
            for reason in r.sample(("1", "2", "3"), r.randrange(1, 4)):
                cents = min(allowed - patient, 500 + self.below(4501))
                if cents > 0:
                    pairs.append((reason, cents))
                    patient += cents
            if pairs:
                adjustments.append(("PR", pairs))
        return adjustments, allowed - patient, patient

    def claim(self, claim_id: str, lines: list[tuple[str, date, int]], kind: str,
              status: str = "1") -> tuple[list[str], int]:
        """A claim over ``lines`` (code, date, fee cents) adjudicated as ``kind``."""
        out: list[str] = []
        body: list[str] = []
        charge = paid = patient = 0
        for code, when, fee in lines:
            adjustments, line_paid, line_patient = self._adjudicate(fee, kind)
            self._line(body, code, when, fee, adjustments, line_paid)
            charge, paid, patient = charge + fee, paid + line_paid, patient + line_patient
        status = "4" if kind == "denied" else status
        out.append(self.seg("CLP", claim_id, status, _m(charge), _m(paid), _m(patient), "12",
                            f"PCN{self.below(10**12):012d}", "11", "1"))
        self._patient(out, lines[0][1])
        out.append(self.seg("AMT", "AU", _m(charge)))
        out.extend(body)
        return out, paid

    def claim_without_lines(self, claim_id: str, when: date, fee: int) -> tuple[list[str], int]:
        """An institutional-style claim: claim-level CAS only, no SVC."""
        adjustments, paid, patient = self._adjudicate(fee, self.rng.choice(("paid", "partial")))
        out = [self.seg("CLP", claim_id, "1", _m(fee), _m(paid), _m(patient), "13",
                        f"PCN{self.below(10**12):012d}", "11", "1")]
        for group, pairs in adjustments:
            cas = self.seg("CAS", group, *[x for r, c in pairs for x in (r, _m(c), "")])
            out.append(cas.rstrip(self.e))
        self._patient(out, when)
        return out, paid

    def reversal(self, claim_id: str, code: str, when: date, fee: int) -> tuple[list[str], int]:
        """CLP02 = 22 undoing an earlier payment (amounts negated, no PR), then the correction."""
        adjustments, old_paid, _ = self._adjudicate(fee, "paid")
        negated = [(g, [(rsn, -c) for rsn, c in pairs]) for g, pairs in adjustments]
        out = [self.seg("CLP", claim_id, "22", _m(-fee), _m(-old_paid), "", "12",
                        f"PCN{self.below(10**12):012d}", "11", "1")]
        self._patient(out, when)
        self._line(out, code, when, -fee, negated, -old_paid)
        correction, new_paid = self.claim(claim_id, [(code, when, fee)], "partial")
        return out + correction, new_paid - old_paid


def _kind(rng: random.Random) -> str:
    x = rng.random()
    if x < 0.50:
        return "paid"
    if x < 0.78:
        return "partial"
    if x < 0.86:
        return "denied"
    if x < 0.90:
        return "reversal"
    if x < 0.97:
        return "multi"
    return "nolines"


def generate_835(
    path: str | Path,
    *,
    n_claims: int,
    seed: int,
    payer_id: str = "87726",
    payer_name: str = "EXAMPLE HEALTH PLAN",
    payee_name: str = "EXAMPLE BEHAVIORAL HEALTH",
    payee_npi: str = "1922164458",
    trace: str | None = None,
    separators: Separators | None = None,
    line_break: bool = False,
    invoices: Iterable[Any] | None = None,
    transactions: int = 1,
    payment_date: date = date(2024, 3, 15),
    method: str = "ACH",
    plb: bool = True,
) -> GeneratedFile:
    """Write one interchange with ``transactions`` STs sharing ``n_claims`` claims.

    A reversal writes two CLPs (the CLP02 = 22 and its correction) for one claim, so
    ``GeneratedFile.claims`` counts ``n_claims`` plus the reversals.

    The first claims pay ``invoices`` (one claim each, CLP01 = invoice id) in order;
    the rest have ids that match no practice. Each ST gets its own TRN02
    (``trace`` or a seed-derived number, suffixed ``-k`` when there are several).
    """
    seps = separators or Separators()
    rng = random.Random(seed)
    writer = _Writer(rng, seps)
    end = seps.segment + ("\n" if line_break else "")
    specs = [_invoice(i) for i in invoices] if invoices is not None else []
    base_trace = trace or f"{rng.randrange(10**10):010d}"
    path = Path(path)
    per_st = [n_claims // transactions + (k < n_claims % transactions)
              for k in range(transactions)]
    state = {"segments": 0, "invoice": 0, "unmatched": 0, "claim_no": 0, "reversals": 0}
    traces: list[str] = []
    total = 0
    isa13 = f"{rng.randrange(1, 10**9):09d}"
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(_isa(seps, isa13, payment_date) + end)
        out.write(writer.seg("GS", "HP", "PAYERSYS", "PRACTICE", f"{payment_date:%Y%m%d}",
                             "0830", str(seed % 10**9 + 1), "X", "005010X221A1") + end)
        for k, count in enumerate(per_st, start=1):
            tn = base_trace if transactions == 1 else f"{base_trace}-{k}"
            traces.append(tn)
            total += _transaction(out, writer, end, f"{k:04d}", tn, count, specs, state,
                                  payer=(payer_id, payer_name), payee=(payee_name, payee_npi),
                                  when=payment_date, method=method, plb=plb)
        out.write(writer.seg("GE", str(transactions), str(seed % 10**9 + 1)) + end)
        out.write(writer.seg("IEA", "1", isa13) + end)
    return GeneratedFile(path, n_claims + state["reversals"], transactions,
                         state["segments"] + 4, Decimal(total) / 100, tuple(traces),
                         state["invoice"], state["unmatched"], state["reversals"])


def _isa(seps: Separators, control: str, when: date) -> str:
    e = seps.element
    fields = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", "PAYERSYS".ljust(15), "ZZ",
              "PRACTICE".ljust(15), f"{when:%y%m%d}", "0830", seps.repetition or "U", "00501",
              control, "0", "P", seps.component]
    return e.join(fields)


def _transaction(out: IO[str], w: _Writer, end: str, control: str, trace: str, count: int,
                 specs: list[InvoiceSpec], state: dict[str, int], *, payer: tuple[str, str],
                 payee: tuple[str, str], when: date, method: str, plb: bool) -> int:
    """Write one ST..SE; returns BPR02 in cents."""
    s = w.seg
    paid = 0
    segments = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
        buffer: list[str] = []
        for _ in range(count):
            state["claim_no"] += 1
            segs, claim_paid = _next_claim(w, specs, state, when)
            paid += claim_paid
            buffer.append(s("LX", str(state["claim_no"])))
            buffer.extend(segs)
            if len(buffer) > 5000:
                segments += len(buffer)
                spool.write(end.join(buffer) + end)
                buffer.clear()
        segments += len(buffer)
        if buffer:
            spool.write(end.join(buffer) + end)
        plb_segments, withheld = _plb(w, payee[1], when, paid) if plb and count else ([], 0)
        if paid - withheld < 0:  # more taken back than paid: carry the balance forward
            plb_segments.append(s("PLB", payee[1], f"{when.year}1231",
                                  f"FB{w.c}CARRIED", _m(paid - withheld)))
            withheld = paid
        amount = paid - withheld
        pay_method = method if amount > 0 else "NON"
        bank = (["CCP", "01", "011000015", "DA", "123456789", "1" + payer[0][:9].rjust(9, "0"),
                 "", "01", "021000021", "DA", "987654321"] if pay_method == "ACH"
                else [""] * 11)
        header = [
            s("ST", "835", control),
            s("BPR", "I" if amount > 0 else "H", _m(amount), "C", pay_method, *bank,
              f"{when:%Y%m%d}"),
            s("TRN", "1", trace, "1" + payer[0][:9].rjust(9, "0")),
            s("DTM", "405", f"{when:%Y%m%d}"),
            s("N1", "PR", payer[1], "XV", payer[0]),
            s("N3", "PO BOX 1000"),
            s("N4", "SPRINGFIELD", "IL", "62701"),
            s("REF", "2U", payer[0]),
            s("PER", "BL", "PROVIDER SERVICES", "TE", "8005551212"),
            s("N1", "PE", payee[0], "XX", payee[1]),
        ]
        out.write(end.join(header) + end)
        spool.seek(0)
        shutil.copyfileobj(spool, out)
    tail = [*plb_segments]
    total_segments = len(header) + segments + len(tail) + 1
    tail.append(s("SE", str(total_segments), control))
    out.write(end.join(tail) + end)
    state["segments"] += total_segments
    return amount


def _next_claim(w: _Writer, specs: list[InvoiceSpec], state: dict[str, int],
                when: date) -> tuple[list[str], int]:
    rng = w.rng
    kind = _kind(rng)
    state["reversals"] += kind == "reversal"
    if state["invoice"] < len(specs):
        inv = specs[state["invoice"]]
        state["invoice"] += 1
        fee = _cents(inv.fee)
        if kind == "reversal":
            return w.reversal(inv.invoice_id, inv.service_code, inv.service_date, fee)
        kind = "paid" if kind in ("multi", "nolines") else kind
        return w.claim(inv.invoice_id, [(inv.service_code, inv.service_date, fee)], kind)
    state["unmatched"] += 1
    claim_id = f"NOMATCH-{state['claim_no']:08d}"
    service = when - timedelta(days=10 + w.below(50))
    fee = (80 + w.below(180)) * 100 + (0, 0, 50, 99)[w.below(4)]
    if kind == "reversal":
        return w.reversal(claim_id, w.pick(CODES), service, fee)
    if kind == "nolines":
        return w.claim_without_lines(claim_id, service, fee)
    n_lines = 2 + w.below(3) if kind == "multi" else 1
    lines = [(w.pick(CODES), service + timedelta(days=7 * i),
              (80 + w.below(180)) * 100 + (0, 25, 50)[w.below(3)]) for i in range(n_lines)]
    return w.claim(claim_id, lines, w.pick(("paid", "partial")) if kind == "multi" else kind)


def _plb(w: _Writer, provider: str, when: date, paid: int) -> tuple[list[str], int]:
    """Interest (L6, negative: adds to the payment) and a recoupment (WO, positive)."""
    rng = w.rng
    fiscal = f"{when.year}1231"
    pairs: list[tuple[str, int]] = [("L6", -rng.randrange(1, 2500))]
    if paid > 10_000 and rng.random() < 0.7:
        pairs.append((f"WO{w.c}PCN{rng.randrange(10**12):012d}",
                      rng.randrange(1_000, max(1_001, min(paid // 10, 50_000)))))
    if rng.random() < 0.3:
        pairs.append((f"FB{w.c}FB{rng.randrange(10**6):06d}", rng.randrange(-500, 500) or 1))
    segments = [w.seg("PLB", provider, fiscal, *[x for r, c in pairs[i:i + 6] for x in (r, _m(c))])
                for i in range(0, len(pairs), 6)]
    return segments, sum(c for _, c in pairs)
