"""Balancing failures are data that name the ST, claim, line and both numbers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import RemittanceError
from recon.remit.balance import (
    UnbalancedRemittance,
    check_remittance,
    raise_if_unbalanced,
)
from recon.remit.era835 import read_835

ISA = ("ISA*00*          *00*          *ZZ*PAYER          *ZZ*PRACTICE       *240101*1200*^*00501"
       "*000000042*0*P*:")


def remittance_file(tmp_path: Path, body: list[str]) -> Path:
    segments = [ISA, "GS*HP*S*R*20240101*1200*7*X*005010X221A1", "ST*835*0009",
                "BPR*I*{paid}*C*CHK************20240315", "TRN*1*CHK1*1512345678", *body]
    segments.append(f"SE*{len(segments) - 1}*0009")
    segments += ["GE*1*7", "IEA*1*000000042"]
    f = tmp_path / "b.835"
    f.write_text("~".join(segments) + "~")
    return f


def problems_of(tmp_path: Path, body: list[str], paid: str) -> list:
    f = remittance_file(tmp_path, body)
    f.write_text(f.read_text().replace("{paid}", paid))
    (rem,) = read_835(f)
    return check_remittance(rem)


BALANCED = [
    "CLP*A*1*300*200*50*12", "SVC*HC:90837*300*200", "CAS*CO*45*50", "CAS*PR*3*50",
    "CLP*B*4*120*0**12", "SVC*HC:90834*120*0", "CAS*CO*50*120",
    "CLP*C*22*-80*-60**12", "SVC*HC:90834*-80*-60", "CAS*CO*45*-20",
    "CLP*C*1*80*70*10*12", "SVC*HC:90834*80*70", "CAS*PR*1*10",
    "CLP*D*1*500*400**13", "CAS*CO*45*100",  # no lines: claim CAS alone
    "PLB*1922164458*20241231*L6*-1.50*WO:PCN1*20",
]


def test_denials_reversals_claims_without_lines_and_plb_balance(tmp_path: Path) -> None:
    # 200 + 0 - 60 + 70 + 400 = 610; minus PLB (-1.50 + 20) = 591.50
    assert problems_of(tmp_path, BALANCED, "591.5") == []


def test_line_level_failure(tmp_path: Path) -> None:
    body = ["CLP*A*1*300*200*50*12", "SVC*HC:90837*300*210", "CAS*CO*45*50",
            "CAS*PR*3*50"]
    (line,) = problems_of(tmp_path, body, "200")  # the claim itself still balances
    assert (line.level, line.transaction, line.claim_id, line.line, line.segment) == (
        "line", "0009", "A", 1, 7)
    assert (line.stated, line.computed, line.difference) == (
        Decimal("210.00"), Decimal("200.00"), Decimal("-10.00"))
    assert line.message == (
        "b.835: ST 0009 claim A (segment 6) line 1 (segment 7): line does not balance: "
        "SVC02 300.00 − line CAS 100.00 = 200.00, but the file says 210.00 "
        "(off by -10.00)")


def test_claim_level_failure_counts_claim_and_line_cas(tmp_path: Path) -> None:
    body = ["CLP*A*1*300*190*50*12", "CAS*OA*23*5", "SVC*HC:90837*300*200", "CAS*CO*45*50",
            "CAS*PR*3*50"]
    (claim,) = problems_of(tmp_path, body, "190")
    assert claim.level == "claim" and claim.line is None
    assert claim.message == (
        "b.835: ST 0009 claim A (segment 6): claim does not balance: CLP03 300.00 − "
        "claim + line CAS 105.00 = 195.00, but the file says 190.00 (off by 5.00)")


def test_claim_without_lines_counts_claim_cas_only(tmp_path: Path) -> None:
    (claim,) = problems_of(tmp_path, ["CLP*D*1*500*400**13", "CAS*CO*45*90"], "400")
    assert "CLP03 500.00 − claim CAS 90.00 = 410.00, but the file says 400.00" in claim.message


def test_file_level_failure(tmp_path: Path) -> None:
    (file_problem,) = problems_of(tmp_path, BALANCED, "610")
    assert file_problem.level == "file" and file_problem.claim_id is None
    assert file_problem.message == (
        "b.835: ST 0009: file does not balance: Σ CLP04 610.00 − Σ PLB 18.50 = 591.50, but "
        "the file says 610.00 (off by -18.50)")


def test_raise_if_unbalanced(tmp_path: Path) -> None:
    raise_if_unbalanced([])
    problems = problems_of(tmp_path, BALANCED, "1")
    with pytest.raises(UnbalancedRemittance) as info:
        raise_if_unbalanced(problems)
    assert isinstance(info.value, RemittanceError)
    assert info.value.problems == problems
    assert str(info.value).startswith("b.835: ST 0009: file does not balance")


def _mutations(text: str, seed: int) -> list[str]:
    """Copies of ``text`` with one amount of one CLP/SVC/CAS/BPR/PLB segment changed."""
    import random

    rng = random.Random(seed)
    parts = text.split("~")
    money = [(i, k) for i, seg in enumerate(parts)
             for k in {"CLP": (3, 4), "SVC": (2, 3), "CAS": (3,), "BPR": (2,),
                       "PLB": (4,)}.get(seg.split("*")[0].strip(), ())]
    out = []
    for i, k in rng.sample(money, 25):
        e = parts[i].split("*")
        if len(e) <= k:
            continue
        e[k] = str(Decimal(e[k]) + Decimal(rng.choice(["0.01", "-1", "7.5"])))
        copy = list(parts)
        copy[i] = "*".join(e)
        out.append("~".join(copy))
    return out


def test_read_balanced_equals_check_remittance(tmp_path: Path) -> None:
    """The single-pass balancing gives exactly check_remittance's problems, in order."""
    from recon.remit.balance import read_balanced
    from recon.remit.generate import generate_835

    text = generate_835(tmp_path / "g.835", n_claims=60, seed=3, transactions=2).path.read_text()
    variants = [text, *_mutations(text, 1)]
    failing = 0
    for k, variant in enumerate(variants):
        f = tmp_path / f"m{k}.835"
        f.write_text(variant)
        pairs = list(read_balanced(f))
        assert [rem for rem, _ in pairs] == list(read_835(f))
        for rem, found in pairs:
            assert found == check_remittance(rem)
            failing += bool(found)
    assert failing >= 20  # the mutations really unbalance something
