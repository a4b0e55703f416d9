"""Hostile 835 input (issue 9, sections 5 and 5b): clean errors, short messages, no crash.

An absurd element must be refused by its length before it is parsed (an amount of a
million digits once overflowed ``decimal`` into an internal error, and 40,000 digits
followed by an ``X`` made a backtracking regex take 13.7 s); a message quotes at most
~60 characters of a bad value. The fuzz test mutates a valid generated file and
requires the reader and ``validate_file`` either to succeed or to raise recon's own
error, never anything else. Nothing here times anything: a linear reader is shown by
these tests finishing at all.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.cli import main
from recon.errors import ReconError
from recon.remit.era835 import read_835
from recon.remit.generate import generate_835
from recon.remit.validate import validate_file
from recon.remit.x12 import MAX_SEGMENT_CHARS, X12Error, X12Reader
from tests.conftest import PRACTICE, write_practice

ISA = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*PRACTICE       *240101*1200*^*00501*000000042*0*P*:"
GS = "GS*HP*S*R*20240101*1200*7*X*005010X221A1"
HEADER = [
    "BPR*I*100*C*ACH*CCP*01*011000015*DA*123*1512345678**01*021000021*DA*456*20240315",
    "TRN*1*EFT123*1512345678",
    "N1*PR*ACME HEALTH*XV*99999",
    "N1*PE*GOOD THERAPY*XX*1922164458",
    "LX*1",
]
CLAIM = [
    "CLP*INV-1*1*150*100*20*12*PCN1",
    "NM1*QC*1*DOE*JANE****MI*M1",
    "SVC*HC:90837*150*100**1",
    "DTM*472*20240210",
    "CAS*CO*45*30",
    "CAS*PR*2*20",
]
LONGEST_MESSAGE = 300


def interchange(body: list[str], *, isa: str = ISA, gs: str = GS, control: str = "000000042") -> list[str]:
    isa = isa.replace("000000042", control)
    return [isa, gs, "ST*835*0001", *body, f"SE*{len(body) + 2}*0001", "GE*1*7", f"IEA*1*{control}"]


def write(tmp_path: Path, segments: list[str], name: str = "hostile.835", end: str = "~\n") -> Path:
    path = tmp_path / name
    path.write_text(end.join(segments) + end, encoding="utf-8")
    return path


def claim_with(position: int, element: int, value: str) -> list[str]:
    """CLAIM with element ``element`` of its segment ``position`` replaced by ``value``."""
    segments = list(CLAIM)
    e = segments[position].split("*")
    e[element] = value
    segments[position] = "*".join(e)
    return HEADER + segments


def validate_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out + err


def only_problem(path: Path) -> str:
    report = validate_file(path)
    assert not report.ok
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


def test_the_valid_base_file_passes(tmp_path: Path) -> None:
    assert validate_file(write(tmp_path, interchange(HEADER + CLAIM))).ok


@pytest.mark.parametrize("digits", [40_000, 1_000_001])
def test_an_absurdly_long_amount_is_refused_by_its_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], digits: int
) -> None:
    """40,000 digits + X once took 13.7 s; 1,000,001 digits raised decimal.Overflow (exit 3)."""
    tail = "X" if digits == 40_000 else ""
    path = write(tmp_path, interchange(claim_with(0, 3, "1" * digits + tail)))
    code, out = validate_cli(path, capsys)
    assert code == 1 and "internal error" not in out
    problem = f"hostile.835: segment 9 (CLP) element 3: '{'1' * 60}'… ({digits + len(tail):,} characters)"
    assert problem in out and "at most 18 digits" in out
    assert max(len(line) for line in out.splitlines()) < LONGEST_MESSAGE


@pytest.mark.parametrize(
    "position, element, value, expected",
    [
        (0, 4, "9" * 19, "is too long for an amount: X12 allows at most 18 digits"),
        (2, 5, "1" * 16, "is too long for a quantity: X12 allows at most 15 digits"),
        (0, 1, "C" * 39, "is too long for the patient control number: X12 allows at most 38 characters"),
        (1, 3, "D" * 5000, "is too long for a last or organization name: X12 allows at most 60"),
        (2, 1, "HC:" + "9" * 49, "is too long: X12 allows at most 48 characters for that component"),
        (4, 2, "4" * 6, "is too long for an adjustment reason code: X12 allows at most 5"),
        (2, 2, "1" * 50_000 + ".", "is too long for an amount"),
        (2, 5, "1" * 50_000 + "X", "is too long for a quantity"),
    ],
)
def test_elements_are_checked_against_their_x12_length(
    tmp_path: Path, position: int, element: int, value: str, expected: str
) -> None:
    problem = only_problem(write(tmp_path, interchange(claim_with(position, element, value))))
    assert f"segment {9 + position} (" in problem and f"element {element}:" in problem
    assert expected in problem and len(problem) < LONGEST_MESSAGE


def test_an_amount_at_the_x12_limit_is_still_an_amount(tmp_path: Path) -> None:
    """18 digits with a sign and a point are within X12's R 1/18; the money limit then speaks."""
    problem = only_problem(write(tmp_path, interchange(claim_with(0, 4, "-99999999999999999.9"))))
    assert "segment 9 (CLP) element 4" in problem and "below 10,000,000,000,000,000" in problem


def test_non_ascii_digits_are_no_amount(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, interchange(claim_with(2, 5, "\u0663"))))
    assert "segment 11 (SVC) element 5: '\u0663' is not a quantity" in problem


def test_fractional_quantities_are_read_exactly(tmp_path: Path) -> None:
    """SVC05 and CAS04 are quantities (X12 type R), not money: 0.125 and 9.999 are valid."""
    body = claim_with(2, 5, "0.125")
    body[-1] = "CAS*PR*2*20*9.999"
    path = write(tmp_path, interchange(body))
    report = validate_file(path)
    assert report.ok, report.errors
    (rem,) = read_835(path)
    (line,) = rem.claims[0].lines
    assert line.units == Decimal("0.125") and str(line.units) == "0.125"
    assert line.adjustments[1].quantity == Decimal("9.999")
    assert line.adjustments[1].amount == Decimal("20.00")


def test_money_still_has_at_most_two_decimals(tmp_path: Path) -> None:
    """A quantity read first must not make the same text pass as money (separate caches)."""
    body = claim_with(2, 5, "0.125")
    body[-1] = "CAS*PR*2*0.125"
    problem = only_problem(write(tmp_path, interchange(body)))
    assert "segment 14 (CAS) element 3: '0.125' is not valid: at most two decimal places" in problem


def test_indented_segments_are_named_as_such(tmp_path: Path) -> None:
    segments = [s if s.startswith("ISA") else "  " + s for s in interchange(HEADER + CLAIM)]
    problem = only_problem(write(tmp_path, segments))
    assert problem.startswith("hostile.835: segment 2: starts with 2 blanks before 'GS*'")


def test_an_indented_segment_inside_a_transaction_is_found_in_file_order(tmp_path: Path) -> None:
    body = claim_with(0, 3, "abc")  # an error at segment 9, before the indented one
    body[-1] = "\t" + body[-1]
    problem = only_problem(write(tmp_path, interchange(body), end="~"))
    assert "segment 9 (CLP) element 3: 'abc' is not an amount" in problem
    body = HEADER + CLAIM[:-1] + ["\t" + CLAIM[-1]]
    problem = only_problem(write(tmp_path, interchange(body), end="~"))
    assert problem.startswith("hostile.835: segment 14: starts with a tab before 'CAS'")


def test_an_indented_isa_is_named_as_such(tmp_path: Path) -> None:
    segments = interchange(HEADER + CLAIM)
    segments[0] = " " + segments[0]
    problem = only_problem(write(tmp_path, segments))
    assert problem.startswith("hostile.835: segment 1: starts with a blank before 'ISA'")


def test_a_105_character_isa_names_its_length_and_isa16(tmp_path: Path) -> None:
    """Once read with ISA16 as terminator and reported as a bad SVC amount ('1~')."""
    short = ISA.replace("PAYER          ", "PAYER         ")
    assert len(short) + 1 == 105
    problem = only_problem(write(tmp_path, interchange(HEADER + CLAIM, isa=short)))
    assert problem.startswith("hostile.835: segment 1 (ISA) element 16: the ISA is 105 characters long")
    assert "ISA06 has 14 characters, not 15" in problem and "SVC" not in problem


def test_a_107_character_isa_names_its_length(tmp_path: Path) -> None:
    long = ISA.replace("PRACTICE       ", "PRACTICE        ")
    problem = only_problem(write(tmp_path, interchange(HEADER + CLAIM, isa=long)))
    assert "the ISA is 107 characters long" in problem and "ISA08 has 16 characters" in problem


def test_an_835_needs_gs01_hp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, interchange(HEADER + CLAIM, gs=GS.replace("GS*HP", "GS*HC")))
    code, out = validate_cli(path, capsys)
    assert code == 1
    assert "segment 2 (GS) element 1: 'HC': an 835 travels in a functional group with GS01 = HP" in out


def test_interchange_control_numbers_must_be_unique(tmp_path: Path) -> None:
    one = interchange(HEADER + CLAIM)
    problem = only_problem(write(tmp_path, one + one + one))
    assert problem == (
        "hostile.835: segment 18 (ISA) element 13: control number '000000042' was already used by the "
        "interchange at segment 1: each interchange in a file needs its own"
    )
    other = interchange(HEADER + CLAIM, control="000000043")
    assert validate_file(write(tmp_path, one + other, name="two.835")).ok


def test_a_missing_terminator_is_refused_before_memory_fills(tmp_path: Path) -> None:
    path = tmp_path / "runaway.835"
    path.write_text(ISA + "~GS*HP*" + "A" * (MAX_SEGMENT_CHARS + 10), encoding="utf-8")
    with pytest.raises(X12Error) as info:
        list(X12Reader(path, chunk_chars=1 << 16))
    assert str(info.value).startswith("runaway.835: segment 2: 'GS*HP*AAAAAAAAAAAAAA'")
    assert "without the segment terminator '~'" in str(info.value)


def test_many_small_interchanges_with_changing_separators(tmp_path: Path) -> None:
    """Each interchange names its own separators; none are re-split (linear in the file)."""
    text = []
    for k in range(1, 1501):
        segments = interchange(HEADER + CLAIM, control=f"{k:09d}")
        if k % 2:
            text.append("~".join(segments) + "~")
        else:
            text.append("\n".join(s.replace("*", "|") for s in segments) + "\n")
    path = tmp_path / "many.835"
    path.write_text("".join(text), encoding="utf-8")
    report = validate_file(path)
    assert report.ok and report.transactions == 1500 and report.claims == 1500


def test_every_message_is_short_whatever_the_value(tmp_path: Path) -> None:
    """The value is cut even when it is made of characters repr() spells long."""
    value = "\u2028\x00" * 5000
    for position, element in ((0, 3), (0, 1), (2, 1), (2, 5), (3, 2), (1, 3)):
        problem = only_problem(write(tmp_path, interchange(claim_with(position, element, value))))
        assert len(problem) < LONGEST_MESSAGE, problem
        assert "(10,000 characters)" in problem


def test_posting_a_hostile_file_is_refused_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``recon era`` reads with the same reader: exit 1, one short line, nothing posted."""
    db = tmp_path / "ledger.duckdb"
    assert main(["load", str(write_practice(tmp_path / "practice", PRACTICE)), "--db", str(db)]) == 0
    huge = write(tmp_path, interchange(claim_with(0, 3, "1" * 1_000_001)), name="huge.835")
    indented = write(tmp_path, [" " + s for s in interchange(HEADER + CLAIM)], name="indented.835")
    capsys.readouterr()
    for path in (huge, indented):
        assert main(["era", str(path), "--db", str(db), "--user", "ana"]) == 1
        out, err = capsys.readouterr()
        assert "internal error" not in out + err and path.name in out + err
        assert max(len(line) for line in (out + err).splitlines()) < LONGEST_MESSAGE
    assert main(["remittances", "--db", str(db), "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip().count("\n") == 0  # the header only


# -- fuzzing ------------------------------------------------------------------------------

ALPHABET = "*:~^|>\n\r \t0123456789.-ABCDEFGHIJKLMNOPQRSTUVWXYZ\ufeff\u0663\u2028\x00é"


@pytest.fixture(scope="module")
def base_835(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("fuzz") / "base.835"
    generate_835(path, n_claims=12, seed=9, transactions=2)
    return path.read_text(encoding="utf-8")


def mutate(text: str, rng: random.Random, rounds: int) -> str:
    """A few random edits of the kinds a careless export, a bad transfer or an attacker makes."""
    for _ in range(rounds):
        at = rng.randrange(len(text) + 1)
        size = rng.choice((1, 1, 2, 5, 20, 200))
        kind = rng.randrange(8)
        if kind == 0:  # delete
            text = text[:at] + text[at + size :]
        elif kind == 1:  # insert random characters
            text = text[:at] + "".join(rng.choice(ALPHABET) for _ in range(size)) + text[at:]
        elif kind == 2:  # replace one character
            text = text[:at] + rng.choice(ALPHABET) + text[at + 1 :]
        elif kind == 3:  # duplicate a stretch
            text = text[:at] + text[at : at + size * 10] + text[at:]
        elif kind == 4:  # a long run of one character (digits mostly)
            run = rng.choice("1111119.*~ ") * rng.choice((100, 5000, 40_000))
            text = text[:at] + run + text[at:]
        elif kind == 5:  # move a stretch elsewhere
            piece = text[at : at + size * 5]
            rest = text[:at] + text[at + size * 5 :]
            to = rng.randrange(len(rest) + 1)
            text = rest[:to] + piece + rest[to:]
        elif kind == 6:  # truncate
            text = text[: max(at, 1)]
        else:  # swap two segments
            segs = text.split("~")
            i, j = rng.randrange(len(segs)), rng.randrange(len(segs))
            segs[i], segs[j] = segs[j], segs[i]
            text = "~".join(segs)
    return text


def check_mutant(path: Path) -> None:
    """The contract under test: a report, or recon's own error; short messages either way."""
    report = validate_file(path)  # never raises for bad content
    for message in report.errors:
        assert len(message) < 1000, message[:200]
    try:
        for _ in read_835(path):
            pass
    except ReconError as exc:
        assert len(str(exc)) < 1000
        assert not report.ok
    # anything else propagates and fails the test


@settings(
    max_examples=200,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), rounds=st.integers(min_value=1, max_value=6))
def test_mutated_835_gives_a_report_or_recons_error(tmp_path: Path, base_835: str, seed: int, rounds: int) -> None:
    path = tmp_path / "mutant.835"
    path.write_text(mutate(base_835, random.Random(seed), rounds), encoding="utf-8")
    check_mutant(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_give_a_report_or_recons_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bytes.835"
    path.write_bytes(ISA.encode() + b"~" + data)
    check_mutant(path)
