"""Generated files validate, balance, round-trip, and are deterministic by seed."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.money import ZERO
from recon.remit.era835 import read_835
from recon.remit.generate import InvoiceSpec, generate_835
from recon.remit.validate import validate_file
from recon.remit.x12 import Separators


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generated_file_validates_and_round_trips(tmp_path: Path) -> None:
    out = generate_835(tmp_path / "g.835", n_claims=400, seed=7, transactions=3,
                       trace="TR7", payer_id="55555")
    report = validate_file(out.path)
    assert report.ok, report.errors
    assert (report.transactions, report.claims, report.total_paid) == (
        3, out.claims, out.total_paid)
    rems = list(read_835(out.path))
    assert [r.trace_number for r in rems] == ["TR7-1", "TR7-2", "TR7-3"] == list(
        out.trace_numbers)
    assert {r.payer_id for r in rems} == {"55555"}
    claims = [c for r in rems for c in r.claims]
    statuses = {c.status for c in claims}
    assert {"1", "4", "22"} <= statuses
    assert any(len(c.lines) > 1 for c in claims) and any(not c.lines for c in claims)
    reasons = {(a.group, a.reason) for c in claims for ln in c.lines for a in ln.adjustments}
    assert {("CO", "45"), ("PR", "1"), ("PR", "2"), ("PR", "3")} <= reasons
    plb = {p.reason for r in rems for p in r.provider_adjustments}
    assert {"L6", "WO"} <= plb
    assert all(p.amount < 0 for r in rems for p in r.provider_adjustments if p.reason == "L6")
    for c in claims:  # every reversal is followed by its correction
        if c.reversal:
            nxt = claims[claims.index(c) + 1]
            assert nxt.claim_id == c.claim_id and nxt.status == "1"
            assert c.paid < 0 and c.patient_responsibility == ZERO


def test_deterministic_by_seed(tmp_path: Path) -> None:
    a = generate_835(tmp_path / "a.835", n_claims=50, seed=1)
    b = generate_835(tmp_path / "b.835", n_claims=50, seed=1)
    c = generate_835(tmp_path / "c.835", n_claims=50, seed=2)
    assert digest(a.path) == digest(b.path) != digest(c.path)


def test_invoices_become_claims_and_the_rest_match_nothing(tmp_path: Path) -> None:
    invoices = [
        InvoiceSpec("INV-1001", date(2024, 2, 1), "90837", Decimal("180.00")),
        {"invoice_id": "INV-1002", "service_date": date(2024, 2, 8), "service_code": "90834",
         "fee": "150"},
        ("INV-1003", date(2024, 2, 15), "90791", Decimal("220.50")),
    ]
    out = generate_835(tmp_path / "inv.835", n_claims=10, seed=3, invoices=invoices)
    assert (out.invoice_claims, out.unmatched_claims) == (3, 7)
    assert validate_file(out.path).ok
    (rem,) = read_835(out.path)
    by_id = {}
    for c in rem.claims:
        by_id.setdefault(c.claim_id, []).append(c)
    for inv_id, day, code, fee in [("INV-1001", 1, "90837", "180.00"),
                                   ("INV-1002", 8, "90834", "150.00"),
                                   ("INV-1003", 15, "90791", "220.50")]:
        claim = by_id[inv_id][-1]
        (line,) = claim.lines
        assert (line.procedure_code, line.service_date, str(line.charge)) == (
            code, date(2024, 2, day), fee)
    others = [k for k in by_id if not k.startswith("INV-")]
    assert len(others) == 7 and all(k.startswith("NOMATCH-") for k in others)


@pytest.mark.parametrize("seps, line_break", [
    (Separators("|", ">", "^", "~"), False),
    (Separators("*", ":", "^", "\n"), False),
    (Separators("^", ">", "{", "'"), True),
])
def test_other_separators(tmp_path: Path, seps: Separators, line_break: bool) -> None:
    out = generate_835(tmp_path / "s.835", n_claims=60, seed=5, separators=seps,
                       line_break=line_break)
    report = validate_file(out.path)
    assert report.ok, report.errors
    assert report.total_paid == out.total_paid


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 40), tx=st.integers(1, 3),
       plb=st.booleans())
def test_any_seed_validates(tmp_path_factory: pytest.TempPathFactory, seed: int, n: int,
                            tx: int, plb: bool) -> None:
    path = tmp_path_factory.mktemp("gen") / "h.835"
    out = generate_835(path, n_claims=n, seed=seed, transactions=tx, plb=plb)
    report = validate_file(path)
    assert report.ok, report.errors
    assert report.claims == out.claims and report.total_paid == out.total_paid
    assert report.total_paid >= 0


def test_pyx12_accepts_generated_file(tmp_path: Path) -> None:
    pytest.importorskip("pyx12")
    out = generate_835(tmp_path / "p.835", n_claims=30, seed=11, transactions=2)
    report = validate_file(out.path, strict=True)
    guide = next(c for c in report.checks if c.name == "guide")
    assert guide.passed and report.ok, report.errors
