"""Small hand-written 835 files with known numbers, for report and widget tests.

Why by hand: the generator's amounts are random; a report test needs a denial of
exactly 150.00 for CO-50 so that the expected numbers are written in the test, not
computed by code that could share a bug with the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path


@dataclass(frozen=True)
class Claim:
    """One CLP with one SVC line; ``cas``: (group, reason, amount) at line level."""

    claim_id: str
    status: str
    charge: str
    paid: str
    code: str
    service_date: date
    cas: tuple[tuple[str, str, str], ...] = ()
    patient: str = "0"


@dataclass(frozen=True)
class Era:
    payer_ident: str
    payer_name: str
    trace: str
    paid_on: date
    claims: tuple[Claim, ...]
    plb: tuple[tuple[str, str], ...] = field(default=())

    @property
    def amount(self) -> Decimal:
        paid = sum((Decimal(c.paid) for c in self.claims), Decimal("0"))
        return paid - sum((Decimal(a) for _, a in self.plb), Decimal("0"))


def _isa(control: str, when: date) -> str:
    isa = (
        f"ISA*00*{' ' * 10}*00*{' ' * 10}*ZZ*{'PAYERSYS':<15}*ZZ*{'PRACTICE':<15}*{when:%y%m%d}*0830*^*00501*"
        f"{control}*0*P*:~"
    )
    assert len(isa) == 106, len(isa)
    return isa


def write_835(path: Path, era: Era, control: int = 1) -> Path:
    """Write ``era`` as one interchange with one transaction; balanced by construction."""
    d8 = f"{era.paid_on:%Y%m%d}"
    body = [
        "ST*835*0001",
        f"BPR*I*{era.amount}*C*ACH*CCP*01*011000015*DA*123456789*1{era.payer_ident}**01*021000021*DA*987654321*{d8}",
        f"TRN*1*{era.trace}*1{era.payer_ident}",
        f"DTM*405*{d8}",
        f"N1*PR*{era.payer_name}*XV*{era.payer_ident}",
        f"REF*2U*{era.payer_ident}",
        "N1*PE*EXAMPLE BEHAVIORAL HEALTH*XX*1922164458",
    ]
    for n, c in enumerate(era.claims, start=1):
        body += [
            f"LX*{n}",
            f"CLP*{c.claim_id}*{c.status}*{c.charge}*{c.paid}*{c.patient}*12*PCN{n:06d}",
            f"NM1*QC*1*DOE*PAT****MI*M{n:08d}",
            f"SVC*HC:{c.code}*{c.charge}*{c.paid}**1",
            f"DTM*472*{c.service_date:%Y%m%d}",
        ]
        body += [f"CAS*{g}*{r}*{a}" for g, r, a in c.cas]
    if era.plb:
        body.append("PLB*1922164458*" + f"{era.paid_on.year}1231*" + "*".join(f"{r}*{a}" for r, a in era.plb))
    body.append(f"SE*{len(body) + 1}*0001")
    ctl = f"{control:09d}"
    segments = [_isa(ctl, era.paid_on), f"GS*HP*PAYERSYS*PRACTICE*{d8}*0830*{control}*X*005010X221A1", *body]
    segments += [f"GE*1*{control}", f"IEA*1*{ctl}"]
    path.write_text("~\n".join(s.rstrip("~") for s in segments) + "~\n", encoding="utf-8")
    return path


# The tiny practice of tests/conftest.py: AET primary for C1 (I1, I2, I3, I5, I8), BCBS for C2 (I6) and I4.
AETNA_MARCH = Era(
    "60054", "AETNA", "AET-TRACE-1", date(2026, 3, 2),
    (
        Claim("I1", "4", "150", "0", "90837", date(2026, 1, 5), (("CO", "50", "150"),)),
        Claim("I2", "4", "120", "0", "90834", date(2026, 1, 12), (("CO", "197", "120"),)),
        Claim("I3", "1", "120", "80", "90834", date(2026, 1, 19), (("CO", "45", "20"), ("PR", "3", "20")), "20"),
        Claim("X-404", "1", "90", "70", "90834", date(2026, 1, 20), (("CO", "45", "20"),)),
    ),
)  # fmt: skip
"""Two denials (CO-50 150.00, CO-197 120.00), one paid claim, one claim for no invoice; BPR02 150.00."""

BCBS_MARCH = Era(
    "00570", "BLUE CROSS", "BCBS-TRACE-7", date(2026, 3, 4),
    (
        Claim("I6", "1", "200", "170", "90791", date(2026, 1, 7), (("CO", "45", "30"),)),
        Claim("I4", "4", "100", "0", "90846", date(2026, 1, 26), (("CO", "50", "100"),)),
    ),
    plb=(("L6", "-2.50"),),
)  # fmt: skip
"""One paid claim, one CO-50 denial of 100.00 and 2.50 interest; BPR02 172.50."""
