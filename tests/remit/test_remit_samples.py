"""Every public sample 835 through validate_file, judged against its MANIFEST row.

The MANIFEST marks all 16 samples as balancing. Four LinuxForHealth copies carry
defects their originals do not: BPR16 shifted into BPR15 (cob, secondary, tertiary),
an impossible date 20002316 (managed-care), SVC01 written with '>' while ISA16 says
':' (cob, secondary), and an SVC whose code slid from SVC01 into SVC02, pushing the
amounts one element right (tertiary). Each has one sensible reading, so the reader
recovers it and says so in a warning; the files pass. Copies of the samples with
edited amounts must still fail, naming the level, the ST, the claim and the numbers.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon.remit.era835 import read_835
from recon.remit.validate import format_report, validate_file

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "835"
MANIFEST = SAMPLES / "MANIFEST.tsv"


def manifest() -> list[dict[str, str]]:
    with MANIFEST.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = manifest()

# The warnings validation must give for the samples that needed a repair.
WARNINGS: dict[str, list[str]] = {
    "lfh__cob-contractural-adjustment.835": [
        "segment 4 (BPR) element 16: missing; the payment date 20050318 found in BPR15 "
        "was used",
        "segment 21 (SVC) element 1: 'HC>55669' uses '>', not the component separator ':' "
        "declared in ISA16; read as 'HC:55669'",
    ],
    "lfh__managed-care.835": [
        "segment 4 (BPR) element 16: '20002316' is not a date; the production date 20020314 "
        "from DTM*405 (segment 6) was used as the payment date",
    ],
    "lfh__secondary-payment.835": [
        "segment 4 (BPR) element 16: missing; the payment date 20050412 found in BPR15",
        "segment 29 (SVC) element 1: 'HC>12345>26' uses '>'",
        "segment 34 (SVC) element 1: 'HC>66543>26' uses '>'",
    ],
    "lfh__tertiary-payment.835": [
        "segment 4 (BPR) element 16: missing; the payment date 20050412 found in BPR15",
        "segment 20 (SVC) element 1: 'HC' is a bare qualifier and SVC02 '24599.00' its code",
    ],
}


def test_manifest_lists_every_sample() -> None:
    names = {r["file"] for r in ROWS}
    on_disk = {p.name for p in SAMPLES.iterdir() if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md")}
    assert names == on_disk and set(WARNINGS) <= names


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["file"])
def test_sample(row: dict[str, str]) -> None:
    path = SAMPLES / row["file"]
    report = validate_file(path)
    counts = {"ST": report.transactions, "CLP": report.claims, "SVC": report.service_lines}
    assert counts == {k: int(row[k]) for k in counts}
    rems = list(read_835(path))
    assert sum(len(r.provider_adjustments) for r in rems) >= int(row["PLB"])
    assert sum(c.denied for r in rems for c in r.claims) == int(row["denied(4)"])
    assert sum(c.reversal for r in rems for c in r.claims) == int(row["reversal(22)"])
    statuses = {c.status for r in rems for c in r.claims}
    assert statuses == set(row["CLP02 set"].split(","))
    file_check = next(c for c in report.checks if c.name == "file")
    assert file_check.passed is (row["balances(BPR02==sumCLP04-sumPLB per ST)"] == "Y")
    assert report.total_paid == report.claims_paid - report.plb_total
    assert report.ok, format_report(report)
    assert report.errors == () and all(c.passed for c in report.checks)
    assert all(r.payment_date is not None for r in rems)
    expected = WARNINGS.get(row["file"], [])
    assert len(report.warnings) == len(expected)
    assert report.warnings == tuple(w for r in rems for w in r.warnings)
    for message, wanted in zip(report.warnings, expected, strict=True):
        assert message.startswith(f"{row['file']}: ")
        assert wanted in message
    text = format_report(report)
    head = f"{row['file']}: OK" + (f" with {len(expected)} warning" if expected else "")
    assert text.startswith(head)
    for message in report.warnings:
        assert message in text


def test_repaired_samples_read_as_the_payer_meant() -> None:
    (cob,) = read_835(SAMPLES / "lfh__cob-contractural-adjustment.835")
    assert cob.payment_date == date(2005, 3, 18)
    assert [(x.qualifier, x.procedure_code) for x in cob.claims[0].lines] == [("HC", "55669")]
    (managed,) = read_835(SAMPLES / "lfh__managed-care.835")
    assert managed.payment_date == date(2002, 3, 14)
    (secondary,) = read_835(SAMPLES / "lfh__secondary-payment.835")
    assert [(x.procedure_code, x.modifiers) for c in secondary.claims for x in c.lines] == [
        ("12345", ("26",)), ("66543", ("26",))]
    (tertiary,) = read_835(SAMPLES / "lfh__tertiary-payment.835")
    (line,) = tertiary.claims[0].lines
    assert (line.qualifier, line.procedure_code, line.charge, line.paid, line.units,
            line.service_date) == ("HC", "24599.00", Decimal("1766.50"), Decimal("187.50"),
                                   Decimal("1.00"), date(2005, 1, 20))


def _edited(tmp_path: Path, sample: str, old: str, new: str) -> Path:
    """A copy of a sample with the first occurrence of ``old`` replaced."""
    text = (SAMPLES / sample).read_text(encoding="utf-8")
    assert old in text, old
    f = tmp_path / sample
    f.write_text(text.replace(old, new, 1), encoding="utf-8")
    return f


MULTI = "badx12__X221-multiple-claims-single-check.edi"


@pytest.mark.parametrize("old, new, expected", [
    # SVC03 25 → 26: the line fails; the claim (CLP03 − CAS) and the file still hold
    ("SVC*AD:D0120*46*25~", "SVC*AD:D0120*46*26~",
     [("line", "35681", "7722337", "SVC02 46.00 − line CAS 21.00 = 25.00, but the file "
       "says 26.00 (off by -1.00)")]),
    # CLP03 226 → 227: the claim fails alone
    ("CLP*7722337*1*226*", "CLP*7722337*1*227*",
     [("claim", "35681", "7722337", "CLP03 227.00 − claim + line CAS 94.00 = 133.00, but "
       "the file says 132.00 (off by 1.00)")]),
    # BPR02 810.8 → 810.80 + 1: the file fails alone
    ("BPR*I*810.8*", "BPR*I*811.8*",
     [("file", "35681", None, "Σ CLP04 810.80 − Σ PLB 0.00 = 810.80, but the file says "
       "811.80 (off by -1.00)")]),
])
def test_edited_sample_fails_naming_level_and_numbers(tmp_path: Path, old: str, new: str,
                                                      expected: list) -> None:
    report = validate_file(_edited(tmp_path, MULTI, old, new))
    assert not report.ok and report.warnings == ()
    got = [(p.level, p.transaction, p.claim_id, p.message.split("does not balance: ")[1])
           for p in report.problems]
    assert got == expected
    assert report.errors == tuple(p.message for p in report.problems)
    level = expected[0][0]
    assert [c.name for c in report.checks if not c.passed] == [level]
    text = format_report(report)
    assert text.startswith(f"{MULTI}: REJECTED (1 problem)")
    assert f"{MULTI}: ST 35681" in text and f"{level} does not balance" in text


def test_repaired_sample_with_edited_amount_still_fails(tmp_path: Path) -> None:
    """A warning never hides an imbalance: the repaired tertiary line, paid 1.00 more."""
    f = _edited(tmp_path, "lfh__tertiary-payment.835", "24599.00*1766.50*187.50*", "24599.00*1766.50*188.50*")
    report = validate_file(f)
    assert not report.ok and len(report.warnings) == 2
    (problem,) = report.problems
    assert (problem.level, problem.claim_id, problem.line, problem.stated,
            problem.computed) == ("line", "0001000054", 1, Decimal("188.50"), Decimal("187.50"))


def test_repeated_cas_triplet_in_uhc_sample_counts() -> None:
    """CAS*PR*2*5.13**1*110: the second triplet (PR-1 110.00) is what makes it balance."""
    (rem,) = read_835(SAMPLES / "edi835__united_healthcare_legacy_sample.txt")
    line = rem.claims[1].lines[2]
    assert [(a.group, a.reason, str(a.amount)) for a in line.adjustments] == [
        ("PR", "2", "5.13"), ("PR", "1", "110.00"), ("CO", "45", "184.32")]
    assert rem.payer_id == "87726" and rem.payer_n1_id == "87726"


def test_plb_sample_balances_through_negative_interest() -> None:
    (rem,) = read_835(SAMPLES / "badx12__X221-dollars-and-data-sent-together.edi")
    (plb,) = rem.provider_adjustments
    assert (plb.reason, plb.reference, str(plb.amount)) == ("CV", "CP", "-1.27")
    assert rem.claims[0].lines == () and str(rem.amount) == "150000.00"


def test_denied_sample_is_a_notification() -> None:
    (rem,) = read_835(SAMPLES / "pyx12__835_mult_loops.txt")
    assert rem.notification_only and rem.method == "NON"
    assert rem.claims[0].denied and str(rem.claims[0].paid) == "0.00"
