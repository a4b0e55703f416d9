"""Every public sample 835 through validate_file, judged against its MANIFEST row.

The MANIFEST only records file-level balance (BPR02 = Σ CLP04 − Σ PLB). Reading every
sample showed four LinuxForHealth copies carry defects their originals do not: BPR16
shifted into BPR15 (cob, secondary, tertiary), an impossible date 20002316
(managed-care), SVC01 written with '>' while ISA16 says ':' (cob, secondary), and an
SVC that lost its component separator so charge and paid moved one element right
(tertiary: the line no longer balances). Those files must be refused, naming why.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recon.remit.era835 import read_835
from recon.remit.validate import format_report, validate_file

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "835"
MANIFEST = SAMPLES / "MANIFEST.tsv"


def manifest() -> list[dict[str, str]]:
    if not MANIFEST.exists():
        return []
    with MANIFEST.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = manifest()
needs_samples = pytest.mark.skipif(not ROWS, reason=f"no public samples at {SAMPLES}")

# What validation must say about the samples that are not clean.
DEFECTS: dict[str, list[str]] = {
    "lfh__cob-contractural-adjustment.835": [
        "segment 4 (BPR) element 16: missing; expected the payment date",
        "segment 21 (SVC) element 1: 'HC>55669' has no procedure code",
    ],
    "lfh__managed-care.835": [
        "segment 4 (BPR) element 16: '20002316' is not a date",
    ],
    "lfh__secondary-payment.835": [
        "segment 4 (BPR) element 16: missing",
        "segment 29 (SVC) element 1: 'HC>12345>26' has no procedure code",
        "segment 34 (SVC) element 1: 'HC>66543>26' has no procedure code",
    ],
    "lfh__tertiary-payment.835": [
        "segment 4 (BPR) element 16: missing",
        "segment 20 (SVC) element 1: 'HC' has no procedure code",
        "ST 0001 claim 0001000054 (segment 16) line 1 (segment 20): line does not balance: "
        "SVC02 24599.00 − line CAS 1579.00 = 23020.00, but the file says 1766.50 "
        "(off by 21253.50)",
    ],
}


@needs_samples
def test_manifest_lists_every_sample() -> None:
    names = {r["file"] for r in ROWS}
    on_disk = {p.name for p in SAMPLES.iterdir() if p.name != "MANIFEST.tsv"}
    assert names == on_disk and set(DEFECTS) <= names


@needs_samples
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
    expected = DEFECTS.get(row["file"], [])
    assert report.ok is (not expected), format_report(report)
    assert len(report.errors) == len(expected)
    for message, wanted in zip(report.errors, expected, strict=True):
        assert message.startswith(f"{row['file']}: ")
        assert wanted in message
    text = format_report(report)
    assert text.startswith(f"{row['file']}: {'OK' if not expected else 'REJECTED'}")


@needs_samples
def test_repeated_cas_triplet_in_uhc_sample_counts() -> None:
    """CAS*PR*2*5.13**1*110: the second triplet (PR-1 110.00) is what makes it balance."""
    (rem,) = read_835(SAMPLES / "edi835__united_healthcare_legacy_sample.txt")
    line = rem.claims[1].lines[2]
    assert [(a.group, a.reason, str(a.amount)) for a in line.adjustments] == [
        ("PR", "2", "5.13"), ("PR", "1", "110.00"), ("CO", "45", "184.32")]
    assert rem.payer_id == "87726" and rem.payer_n1_id == "87726"


@needs_samples
def test_plb_sample_balances_through_negative_interest() -> None:
    (rem,) = read_835(SAMPLES / "badx12__X221-dollars-and-data-sent-together.edi")
    (plb,) = rem.provider_adjustments
    assert (plb.reason, plb.reference, str(plb.amount)) == ("CV", "CP", "-1.27")
    assert rem.claims[0].lines == () and str(rem.amount) == "150000.00"


@needs_samples
def test_denied_sample_is_a_notification() -> None:
    (rem,) = read_835(SAMPLES / "pyx12__835_mult_loops.txt")
    assert rem.notification_only and rem.method == "NON"
    assert rem.claims[0].denied and str(rem.claims[0].paid) == "0.00"
